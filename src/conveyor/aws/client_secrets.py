"""The client secrets as the functions read them: the document named by
``CLIENT_SECRETS_ID``, through Powertools' parameters cache (``secrets_max_age_s``), so
that a client added or rotated counts everywhere once the cache has passed."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

from conveyor.aws.config import required, secrets_max_age_s
from conveyor.core.signing import MIN_SECRET_LENGTH

Unavailable = parameters.exceptions.GetParameterError
"""The document could not be read (the caller may retry)."""


def secrets_of(client_id: str) -> list[str]:
    """The client's usable secrets, oldest first; none for an unknown client or a
    malformed entry."""
    table = parameters.get_secret(
        required("CLIENT_SECRETS_ID"), transform="json", max_age=secrets_max_age_s()
    )
    secrets = table.get(client_id) if isinstance(table, dict) else None
    # Only a list of secrets counts: a bare string would otherwise be iterated as
    # one-character secrets.
    if not isinstance(secrets, list):
        return []
    return [s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH]
