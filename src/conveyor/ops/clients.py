"""The HTTP API's clients: the client-secrets document the functions read, edited.

The document is one Secrets Manager secret, ``{client_id: [secret, ...]}``; the newest
secret is last. Rotation without downtime: ``rotate`` adds a secret beside the old one,
the client switches, and ``retire`` drops all but the newest once the functions' cache
time has passed. Secrets are generated here from 32 random bytes unless given, and are
shown once by the caller, never logged.

Two operators may edit at once, and Secrets Manager has no conditional put, so an edit is
a compare-and-swap on the version the ``AWSCURRENT`` label points at: the new document is
written as a version of its own under :data:`EDIT_STAGE`, then ``AWSCURRENT`` is moved to
it *from the version that was read*. Secrets Manager refuses that move once the label has
moved on, so an edit made on a stale read never lands; :func:`edit` then reads the
document again and applies the change anew, and gives up with :class:`ConcurrentEditError`
only after several such collisions in a row.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import ClientError

from conveyor.aws.clients import has_code
from conveyor.core.signing import MIN_SECRET_LENGTH

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

SECRET_BYTES = 32
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

Document = dict[str, list[str]]
Outcome = TypeVar("Outcome")

CURRENT_STAGE = "AWSCURRENT"
EDIT_STAGE = "conveyor-edit"
"""The label a written document carries until ``AWSCURRENT`` is moved to it (a label of
its own: ``AWSPENDING`` belongs to rotation functions)."""
EDIT_ATTEMPTS = 5


class ClientsError(ValueError):
    """A change the document cannot take, with the reason."""


class ConcurrentEditError(ClientsError):
    """Other edits kept landing between this edit's read and its write."""


@dataclass(frozen=True)
class ClientSummary:
    client_id: str
    secrets: int


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def _checked_id(client_id: str) -> str:
    if not _CLIENT_ID.fullmatch(client_id):
        raise ClientsError(
            f"{client_id!r} is not a client id: 1-64 of A-Z a-z 0-9 _ . -, starting with a "
            "letter or digit"
        )
    return client_id


def _checked_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET_LENGTH or not secret.isprintable() or secret != secret.strip():
        raise ClientsError(
            f"a secret needs at least {MIN_SECRET_LENGTH} printable characters, without "
            "surrounding spaces (the functions ignore shorter ones)"
        )
    return secret


def summaries(document: Document) -> list[ClientSummary]:
    return [ClientSummary(name, len(values)) for name, values in sorted(document.items())]


def add(document: Document, client_id: str, secret: str | None = None) -> str:
    """Add a client; its secret (generated unless given)."""
    if _checked_id(client_id) in document:
        raise ClientsError(f"client {client_id} exists; use rotate to give it a new secret")
    chosen = _checked_secret(secret) if secret is not None else new_secret()
    document[client_id] = [chosen]
    return chosen


def rotate(document: Document, client_id: str, secret: str | None = None) -> str:
    """Add a newest secret beside the client's others; that secret."""
    chosen = _checked_secret(secret) if secret is not None else new_secret()
    _existing(document, client_id).append(chosen)
    return chosen


def retire(document: Document, client_id: str) -> int:
    """Keep only the client's newest secret; how many were dropped."""
    held = _existing(document, client_id)
    dropped = len(held) - 1
    del held[:-1]
    return dropped


def remove(document: Document, client_id: str) -> None:
    _existing(document, client_id)
    del document[client_id]


def _existing(document: Document, client_id: str) -> list[str]:
    if client_id not in document:
        known = ", ".join(sorted(document)) or "none"
        raise ClientsError(f"no client {client_id!r}; the clients are: {known}")
    return document[client_id]


def read(secretsmanager: SecretsManagerClient, secret_id: str) -> Document:
    return _read_version(secretsmanager, secret_id)[0]


def _read_version(secretsmanager: SecretsManagerClient, secret_id: str) -> tuple[Document, str]:
    """The current document, and the id of the version it was read from."""
    current = secretsmanager.get_secret_value(SecretId=secret_id, VersionStage=CURRENT_STAGE)
    document = json.loads(current["SecretString"])
    if not isinstance(document, dict) or not all(
        isinstance(v, list) and all(isinstance(s, str) for s in v) for v in document.values()
    ):
        raise ClientsError(f"{secret_id} does not hold a {{client_id: [secret, ...]}} document")
    return document, current["VersionId"]


def _swap(
    secretsmanager: SecretsManagerClient, secret_id: str, document: Document, read_from: str
) -> bool:
    """Make ``document`` current if ``read_from`` still is; whether it did."""
    written = str(uuid.uuid4())
    secretsmanager.put_secret_value(
        SecretId=secret_id,
        SecretString=json.dumps(document),
        ClientRequestToken=written,
        VersionStages=[EDIT_STAGE],
    )
    try:
        secretsmanager.update_secret_version_stage(
            SecretId=secret_id,
            VersionStage=CURRENT_STAGE,
            RemoveFromVersionId=read_from,
            MoveToVersionId=written,
        )
    except ClientError as exc:
        # The label is no longer on the version that was read: another edit landed.
        if has_code(exc, "InvalidParameterException"):
            return False
        raise
    return True


def edit(
    secretsmanager: SecretsManagerClient,
    secret_id: str,
    change: Callable[[Document], Outcome],
    attempts: int = EDIT_ATTEMPTS,
) -> Outcome:
    """Apply ``change`` to the document and make the result current, unless another edit
    landed since it was read: then read again and apply ``change`` to that. What
    ``change`` returns for the edit that landed."""
    for _ in range(attempts):
        document, version = _read_version(secretsmanager, secret_id)
        outcome = change(document)
        if _swap(secretsmanager, secret_id, document, version):
            return outcome
    raise ConcurrentEditError(
        f"{secret_id} was changed by someone else {attempts} times while this edit was "
        "being made, and this edit was not applied; run it again"
    )
