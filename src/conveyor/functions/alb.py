"""What the HTTP-facing functions share: ALB request bodies, JSON errors, authentication.

Every error a caller sees is JSON: ``{"error": <code>, "reason": <sentence>}``, with more
fields where they help (``fields`` for validation errors).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import ALBResolver, Response
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from conveyor.aws import metrics
from conveyor.aws.config import required
from conveyor.core.request_ids import request_id_from
from conveyor.core.signing import AuthenticationError, SignedRequest, verify
from conveyor.core.validation import field_errors

SECRETS_MAX_AGE_S = 300
"""How long a function trusts its cached copy of the client secrets. A rotated-in secret
works everywhere after this long; retire the old one only after that."""

MIN_SECRET_LENGTH = 16
"""Shorter secrets in the table are ignored: they could be guessed."""

REQUEST_ID = "request_id"
"""The key of the request's correlation id in the resolver's context."""

_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$")

logger = Logger()


class HttpError(Exception):
    """Raised anywhere in a route to answer with a JSON error."""

    def __init__(self, status: int, error: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason
        self.extra = extra


def json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(payload, separators=(",", ":")),
        headers=headers or {},
    )


def error_response(exc: HttpError, headers: dict[str, str] | None = None) -> Response[str]:
    return json_response(
        exc.status, {"error": exc.error, "reason": exc.reason, **exc.extra}, headers
    )


def raw_body(event: dict[str, Any]) -> bytes:
    """The request body exactly as the client sent it (ALB base64-encodes binary bodies)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HttpError(400, "bad_request", "body is not valid base64") from exc
    return body.encode("utf-8", "surrogateescape")


def header(event: dict[str, Any], name: str) -> str | None:
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted:
            return str(value)
    return None


def check_size(body: bytes, limit: int) -> None:
    if len(body) > limit:
        raise HttpError(413, "payload_too_large", f"body is larger than {limit} bytes")


def check_json(event: dict[str, Any]) -> None:
    content_type = header(event, "Content-Type") or ""
    media_type, _, params = content_type.partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"') if params else "utf-8"
    if not _JSON_TYPE.match(media_type.strip().lower()) or charset not in ("utf-8", "utf8"):
        raise HttpError(415, "unsupported_media_type", "send the body as application/json in UTF-8")


def _client_secrets(client_id: str) -> Sequence[str]:
    table = parameters.get_secret(
        required("CLIENT_SECRETS_ID"), transform="json", max_age=SECRETS_MAX_AGE_S
    )
    secrets = table.get(client_id) if isinstance(table, dict) else None
    # Only a list of secrets counts: a bare string would otherwise be iterated as
    # one-character secrets.
    if not isinstance(secrets, list):
        return []
    return [s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH]


def authenticate(event: dict[str, Any], body: bytes) -> str:
    """The verified client id; a 401 that does not say which check failed otherwise."""
    request = SignedRequest(
        method=str(event.get("httpMethod", "")),
        path=str(event.get("path", "")),
        body=body,
        headers=event.get("headers") or {},
    )
    try:
        return verify(request, _client_secrets, now=time.time())
    except parameters.exceptions.GetParameterError as exc:
        logger.exception("client secrets unavailable")
        raise HttpError(503, "unavailable", "authentication is unavailable; retry shortly") from exc
    except AuthenticationError as exc:
        logger.warning("request not authenticated", extra={"auth_failure": exc.reason})
        raise HttpError(401, "unauthorized", "request signature is missing or invalid") from exc


Payload = TypeVar("Payload", bound=BaseModel)


@dataclass(frozen=True)
class Verified(Generic[Payload]):
    """A request that passed every check: size, signature, content type, schema."""

    request_id: str
    client_id: str
    payload: Payload


def verified_json(
    app: ALBResolver, model: type[Payload], *, max_bytes: int, error: str, what: str
) -> Verified[Payload]:
    """Run the checks every signed JSON endpoint runs, in the order that does the least
    work for a bad request: size, then signature, then content type, then the model."""
    event = app.current_event.raw_event
    request_id = str(app.context[REQUEST_ID])
    body = raw_body(event)
    check_size(body, max_bytes)
    client_id = authenticate(event, body)
    check_json(event)
    try:
        payload = model.model_validate_json(body)
    except ValidationError as exc:
        raise HttpError(400, error, f"the {what} is not valid", fields=field_errors(exc)) from exc
    return Verified(request_id, client_id, payload)


def resolver(path: str, allowed: Sequence[str], rejected_metric: str) -> ALBResolver:
    """An ALB resolver with the JSON 404/405/500 answers every endpoint gives; each
    error answer counts one ``rejected_metric`` with its error code as the reason."""
    app = ALBResolver()
    other = [
        m for m in ("GET", "PUT", "PATCH", "DELETE", "POST", "HEAD", "OPTIONS") if m not in allowed
    ]

    def reject(exc: HttpError, headers: dict[str, str] | None = None) -> Response[str]:
        # The line a caller's quoted X-Request-Id leads to.
        logger.info("request refused", extra={"status": exc.status, "error": exc.error})
        metrics.count(rejected_metric, reason=exc.error)
        return error_response(exc, headers)

    @app.route(path, method=other)
    def method_not_allowed() -> Response[str]:
        return reject(
            HttpError(405, "method_not_allowed", f"use {', '.join(allowed)} on {path}"),
            {"Allow": ", ".join(allowed)},
        )

    @app.not_found
    def not_found(_: Exception) -> Response[str]:
        return reject(HttpError(404, "not_found", "no such route"))

    @app.exception_handler(HttpError)  # type: ignore[untyped-decorator]
    def http_error(exc: HttpError) -> Response[str]:
        return reject(exc)

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def unexpected(exc: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return reject(HttpError(500, "internal_error", "the request failed; it is safe to retry"))

    return app


def answer(app: ALBResolver, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Resolve one request under its correlation id. Every answer carries the id back as
    ``X-Request-Id``, errors included, so that a caller always has an id to quote."""
    request_id = request_id_from(header(event, "X-Request-Id"))
    logger.set_correlation_id(request_id)
    app.context[REQUEST_ID] = request_id  # cleared by resolve() when it returns
    response = app.resolve(event, context)
    if "multiValueHeaders" in response:
        response["multiValueHeaders"]["X-Request-Id"] = [request_id]
    else:
        response.setdefault("headers", {})["X-Request-Id"] = request_id
    return response
