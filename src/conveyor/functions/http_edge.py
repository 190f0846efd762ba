"""What the HTTP-facing functions share: the request as either edge delivers it, JSON
errors, authentication.

Two edges call these functions, one per deploy profile: an Application Load Balancer
(``private``; its target groups send multi-value headers) and an API Gateway HTTP API
(``lean``; payload format 2.0). Each function declares its routes once, on an
:class:`HttpEdge`, and answers both shapes through Powertools' resolver for each; every
check below reads the event's own fields for its shape, so signatures, idempotency,
tenancy, errors and ``X-Request-Id`` are the same on both.

Every error a caller sees is JSON: ``{"error": <code>, "reason": <sentence>}``, with more
fields where they help (``fields`` for validation errors).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import ALBResolver, APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Router
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from conveyor.aws import client_secrets, metrics, tracing
from conveyor.aws.clients import has_code
from conveyor.core.request_ids import request_id_from
from conveyor.core.signing import (
    SECURITY_HEADERS,
    SIGNATURE_HEADER,
    AuthenticationError,
    SignedRequest,
    verify,
)
from conveyor.core.validation import field_errors, strict_json

RETRYABLE_CODES = (
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalServerError",
)
"""AWS errors that say "not now" rather than "never": the caller is told to retry (503)."""

_METHODS = ("GET", "PUT", "PATCH", "DELETE", "POST", "HEAD", "OPTIONS")


REQUEST_ID = "request_id"
"""The key of the request's correlation id in the resolver's context."""

_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$")

logger = Logger()


class HttpError(Exception):
    """Raised anywhere in a route to answer with a JSON error."""

    def __init__(
        self,
        status: int,
        error: str,
        reason: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = headers or {}
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


def error_response(exc: HttpError) -> Response[str]:
    body = {"error": exc.error, "reason": exc.reason, **exc.extra}
    return json_response(exc.status, body, exc.headers)


HTTP_API_VERSION = "2.0"


def is_http_api(event: Mapping[str, Any]) -> bool:
    """Whether the event is an HTTP API's (payload format 2.0) rather than an ALB's."""
    return event.get("version") == HTTP_API_VERSION


def raw_body(event: dict[str, Any]) -> bytes:
    """The request body exactly as the client sent it (both edges base64-encode binary
    bodies)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HttpError(400, "bad_request", "body is not valid base64") from exc
    return body.encode("utf-8", "surrogateescape")


def header_values(event: dict[str, Any], name: str) -> list[str]:
    """Every value the request sent for a header. The target groups deliver
    ``multiValueHeaders``, so a repeated header is seen as repeated, not as its last; the
    HTTP API joins a repeated header's values with commas, so there they are split again
    (none of the headers read here has a comma in a single value)."""
    wanted = name.lower()
    if is_http_api(event):
        return [
            part.strip()
            for key, value in (event.get("headers") or {}).items()
            if key.lower() == wanted
            for part in str(value).split(",")
        ]
    multi = event.get("multiValueHeaders")
    if multi is not None:
        return [str(v) for key, values in multi.items() if key.lower() == wanted for v in values]
    return [str(v) for key, v in (event.get("headers") or {}).items() if key.lower() == wanted]


def header(event: dict[str, Any], name: str) -> str | None:
    values = header_values(event, name)
    return values[-1] if values else None


VIEWER_ADDRESS_HEADER = "CloudFront-Viewer-Address"
"""Set by the API's CloudFront distribution (and the local gateway): the caller's
``address:port``, which no caller can supply itself."""


def request_line(event: dict[str, Any]) -> tuple[str, str]:
    """The request's method and path, from the fields each shape keeps them in."""
    if is_http_api(event):
        http = (event.get("requestContext") or {}).get("http") or {}
        return str(http.get("method", "")), str(event.get("rawPath", ""))
    return str(event.get("httpMethod", "")), str(event.get("path", ""))


def caller_address(event: dict[str, Any]) -> str:
    """Where the request came from, as the edge saw it. On an HTTP API, the address API
    Gateway states in the request context. Behind the load balancer, the API's
    CloudFront header, or without it the last ``X-Forwarded-For`` entry, the one the load
    balancer added (earlier ones are whatever the caller sent)."""
    if is_http_api(event):
        http = (event.get("requestContext") or {}).get("http") or {}
        return str(http.get("sourceIp") or "unknown")
    viewer = header(event, VIEWER_ADDRESS_HEADER)
    if viewer:
        return viewer.rsplit(":", 1)[0].strip("[]")
    forwarded = ",".join(header_values(event, "X-Forwarded-For")).split(",")
    return forwarded[-1].strip() or "unknown"


def check_unambiguous(event: dict[str, Any]) -> None:
    """Refuse what the signature could not vouch for: a repeated security header or Host
    (which copy was signed?) and a query string (the signed string has none)."""
    for name in (*SECURITY_HEADERS, "Host"):
        if len(header_values(event, name)) > 1:
            raise HttpError(400, "bad_request", f"the {name} header is repeated")
    if (
        event.get("multiValueQueryStringParameters")
        or event.get("queryStringParameters")
        or event.get("rawQueryString")
    ):
        raise HttpError(
            400, "query_not_allowed", "this API takes no query string (it would not be signed)"
        )


def check_size(body: bytes, limit: int) -> None:
    if len(body) > limit:
        raise HttpError(413, "payload_too_large", f"body is larger than {limit} bytes")


def check_json(event: dict[str, Any]) -> None:
    content_type = header(event, "Content-Type") or ""
    media_type, _, params = content_type.partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"') if params else "utf-8"
    if not _JSON_TYPE.match(media_type.strip().lower()) or charset not in ("utf-8", "utf8"):
        raise HttpError(415, "unsupported_media_type", "send the body as application/json in UTF-8")


def authenticate(event: dict[str, Any], body: bytes) -> str:
    """The verified client id; a 401 that does not say which check failed otherwise."""
    present = {name: header(event, name) for name in SECURITY_HEADERS}
    method, path = request_line(event)
    request = SignedRequest(
        method=method,
        path=path,
        body=body,
        headers={name: value for name, value in present.items() if value is not None},
    )
    try:
        return verify(request, client_secrets.secrets_of, now=time.time())
    except client_secrets.Unavailable as exc:
        logger.exception("client secrets unavailable")
        raise HttpError(503, "unavailable", "authentication is unavailable; retry shortly") from exc
    except AuthenticationError as exc:
        logger.warning("request not authenticated", extra={"auth_failure": exc.reason})
        raise HttpError(401, "unauthorized", "request signature is missing or invalid") from exc


Payload = TypeVar("Payload", bound=BaseModel)


@dataclass(frozen=True)
class Caller:
    """Who sent a request that passed the signature check, and its correlation id."""

    request_id: str
    client_id: str
    signature: str
    """The request's X-Signature: the same for an exact replay, and for nothing else."""


@dataclass(frozen=True)
class Verified(Generic[Payload]):
    """A request that passed every check: size, signature, content type, schema."""

    caller: Caller
    payload: Payload


def verified_caller(app: HttpEdge, body: bytes) -> Caller:
    """The unambiguous-request and signature checks every endpoint runs."""
    event = app.current_event.raw_event
    check_unambiguous(event)
    client_id = authenticate(event, body)
    return Caller(str(app.context[REQUEST_ID]), client_id, header(event, SIGNATURE_HEADER) or "")


def verified_get(app: HttpEdge) -> Caller:
    """A signed GET: its body, signed as such, must be empty."""
    body = raw_body(app.current_event.raw_event)
    check_size(body, 0)
    return verified_caller(app, body)


def verified_json(
    app: HttpEdge, model: type[Payload], *, max_bytes: int, error: str, what: str
) -> Verified[Payload]:
    """Run the checks every signed JSON endpoint runs, in the order that does the least
    work for a bad request: size, then signature, then content type, then the model."""
    body = raw_body(app.current_event.raw_event)
    check_size(body, max_bytes)
    caller = verified_caller(app, body)
    check_json(app.current_event.raw_event)
    try:
        strict_json(body)  # what the model's own parser lets by: duplicate keys, NaN
    except ValueError as exc:
        fields = [{"field": "body", "message": str(exc)}]
        raise HttpError(400, error, f"the body is not valid JSON: {exc}", fields=fields) from exc
    try:
        payload = model.model_validate_json(body)
    except ValidationError as exc:
        raise HttpError(400, error, f"the {what} is not valid", fields=field_errors(exc)) from exc
    return Verified(caller, payload)


class HttpEdge(Router):
    """A function's routes, declared once and answered on either edge's event shape.

    Routes are registered on this router as on any Powertools resolver; the resolver for
    a shape (ALB or HTTP API) is made the first time an event of that shape arrives, and
    takes the routes then. A Lambda execution environment serves one request at a time,
    so pointing the router at the resolver of the event in hand is safe."""

    def __init__(self, routes: Mapping[str, Sequence[str]], rejected_metric: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Powertools leaves it untyped
        self.rejected_metric = rejected_metric
        self._resolvers: dict[bool, ApiGatewayResolver] = {}
        for path, allowed in routes.items():
            other = [m for m in _METHODS if m not in allowed]
            allow = ", ".join(allowed)
            self.route(path, method=other)(
                lambda allow=allow, **_: self.reject(
                    HttpError(405, "method_not_allowed", f"use {allow} here", {"Allow": allow})
                )
            )

    def reject(self, exc: HttpError) -> Response[str]:
        # The line a caller's quoted X-Request-Id leads to.
        logger.info("request refused", extra={"status": exc.status, "error": exc.error})
        metrics.count(self.rejected_metric, reason=exc.error)
        return error_response(exc)

    def resolver_for(self, event: Mapping[str, Any]) -> ApiGatewayResolver:
        http_api = is_http_api(event)
        resolver = self._resolvers.get(http_api)
        if resolver is None:
            resolver = APIGatewayHttpResolver() if http_api else ALBResolver()
            self._answer_errors(resolver)
            resolver.include_router(self)
            self._resolvers[http_api] = resolver
        self.api_resolver = resolver
        return resolver

    def _answer_errors(self, app: ApiGatewayResolver) -> None:
        """The JSON 404 and error answers every endpoint gives, on ``app``."""

        @app.not_found
        def not_found(_: Exception) -> Response[str]:
            return self.reject(HttpError(404, "not_found", "no such route"))

        @app.exception_handler(HttpError)  # type: ignore[untyped-decorator]
        def http_error(exc: HttpError) -> Response[str]:
            return self.reject(exc)

        @app.exception_handler(ClientError)  # type: ignore[untyped-decorator]
        def aws_error(exc: ClientError) -> Response[str]:
            logger.exception("AWS call failed")
            if has_code(exc, *RETRYABLE_CODES):
                return self.reject(
                    HttpError(503, "unavailable", "a dependency is busy; retry shortly")
                )
            return self.reject(
                HttpError(500, "internal_error", "the request failed; it is safe to retry")
            )

        @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
        def unexpected(exc: Exception) -> Response[str]:
            logger.exception("unhandled error")
            return self.reject(
                HttpError(500, "internal_error", "the request failed; it is safe to retry")
            )


def trace_carrier(event: dict[str, Any]) -> dict[str, str]:
    """The caller's W3C trace context, which the request's trace then continues."""
    value = header(event, tracing.TRACEPARENT)
    return {tracing.TRACEPARENT: value} if value else {}


def answer(app: HttpEdge, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Resolve one request under its correlation id. Every answer carries the id back as
    ``X-Request-Id``, and its trace's as ``X-Trace-Id``, errors included, so that a
    caller always has an id to quote."""
    request_id = request_id_from(header(event, "X-Request-Id"))
    logger.set_correlation_id(request_id)
    logger.append_keys(caller=caller_address(event))
    resolver = app.resolver_for(event)
    resolver.context[REQUEST_ID] = request_id  # cleared by resolve() when it returns
    response = resolver.resolve(event, context)
    ids = {"X-Request-Id": request_id, tracing.TRACE_ID_HEADER: tracing.current_trace_id()}
    for name, value in ids.items():
        if "multiValueHeaders" in response:
            response["multiValueHeaders"][name] = [value]
        else:
            response.setdefault("headers", {})[name] = value
    return response
