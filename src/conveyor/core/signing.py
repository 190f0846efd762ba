"""HMAC request signing shared by the HTTP endpoints and their clients.

The signed string is ``"{timestamp}\\n{METHOD}\\n{path}\\n{sha256(body) hex}"`` and the
signature header is ``X-Signature: v1=<hex HMAC-SHA256>``. The path is the request's
whole path, ids included; the endpoints take no query string, so none is signed. A
timestamp may be up to ``MAX_AGE_S`` old but only ``MAX_FUTURE_S`` ahead: the future
bound allows for clock skew, not for a replay window. A client may hold several active
secrets at once so that a secret can be rotated without downtime.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

CLIENT_ID_HEADER = "X-Client-Id"
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"
SIGNATURE_VERSION = "v1"
MAX_AGE_S = 300
"""How old a signed request may be when it arrives."""
MAX_FUTURE_S = 30
"""How far ahead of the server's clock a client's may run."""
SECURITY_HEADERS = (CLIENT_ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
MIN_SECRET_LENGTH = 16
"""Shorter secrets in the client-secrets document are ignored: they could be guessed."""

# Compared against when the client is unknown, so that an unknown client costs the
# same HMAC work as a known one and timing does not reveal which client ids exist.
_DECOY_SECRET = "conveyor-decoy-secret-for-unknown-clients"  # noqa: S105 - not a credential


class AuthenticationError(Exception):
    """The request is not authentic. ``reason`` is for logs only, never for the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str
    body: bytes
    headers: Mapping[str, str]


def canonical_string(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{timestamp}\n{method.upper()}\n{path}\n{body_hash}".encode()


def signature(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """The value of the ``X-Signature`` header for this request."""
    digest = hmac.new(
        secret.encode(), canonical_string(timestamp, method, path, body), hashlib.sha256
    ).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def sign(
    client_id: str, secret: str, method: str, path: str, body: bytes, now: float
) -> dict[str, str]:
    """Headers that authenticate one request made at unix time ``now``."""
    timestamp = str(int(now))
    return {
        CLIENT_ID_HEADER: client_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, method, path, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    # HTTP header names are case-insensitive; ALB delivers them lower-cased.
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    raise AuthenticationError(f"missing header {name}")


def verify(
    request: SignedRequest,
    secrets_for: Callable[[str], Sequence[str]],
    now: float,
) -> str:
    """Return the authenticated client id, or raise :class:`AuthenticationError`.

    ``secrets_for`` returns the client's active secrets (empty when the client is
    unknown). Every active secret is compared in constant time, and an unknown client
    is compared against a decoy, so the time taken does not depend on which check fails.
    """
    client_id = _header(request.headers, CLIENT_ID_HEADER)
    timestamp = _header(request.headers, TIMESTAMP_HEADER)
    presented = _header(request.headers, SIGNATURE_HEADER)
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise AuthenticationError("timestamp is not unix seconds")
    age = now - int(timestamp)
    if age > MAX_AGE_S:
        raise AuthenticationError("timestamp too old")
    if -age > MAX_FUTURE_S:
        raise AuthenticationError("timestamp in the future")

    secrets = list(secrets_for(client_id))
    candidates = secrets or [_DECOY_SECRET]
    presented_bytes = presented.encode("utf-8", "surrogateescape")
    matched = False
    for secret in candidates:
        expected = signature(secret, timestamp, request.method, request.path, request.body)
        matched |= hmac.compare_digest(expected.encode(), presented_bytes)
    if not secrets:
        raise AuthenticationError("unknown client")
    if not matched:
        raise AuthenticationError("signature mismatch")
    return client_id
