"""What the local gateway hands the functions and how it reads their answers, per profile.

Each deploy profile has its own edge in front of the functions: an Application Load
Balancer (``private``) or an API Gateway HTTP API (``lean``). An edge here builds the
event that edge sends, key for key, reads the function's answer as that edge would, and
holds that edge's limits, so that the local stack is never laxer than the deployed one.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from conveyor.local.workers import Invocation
from conveyor.topology import GREEDY_PATH_PARAMETER, HttpRoute, Profile

HeaderLines = Mapping[str, str] | Sequence[tuple[str, str]]
"""A request's headers: a mapping, or every line as sent, repeats included."""

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
LOCAL_ACCOUNT = "123456789012"
"""The emulator's account id (moto's default)."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def json_error(
    status: int, error: str, reason: str, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    body = json.dumps({"error": error, "reason": reason}).encode()
    return HttpResponse(status, body, {"Content-Type": "application/json", **(headers or {})})


@dataclass(frozen=True)
class Request:
    """One HTTP request as the gateway read it."""

    method: str
    target: str
    """The path with its query string, as sent."""
    headers: HeaderLines
    body: bytes
    client_ip: str
    client_port: int = 0

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def header_lines(self) -> list[tuple[str, str]]:
        lines = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        return [(name.lower(), value) for name, value in lines]

    def text_body(self) -> tuple[str, bool]:
        """The body as the event carries it, and whether that is base64: both edges pass
        text as text and everything else (or text that is not UTF-8) as base64."""
        content_type = next(
            (v for k, v in reversed(self.header_lines()) if k == "content-type"), ""
        )
        if content_type.startswith(_TEXT_TYPES) or not self.body:
            try:
                return self.body.decode("utf-8"), False
            except UnicodeDecodeError:
                pass
        return base64.b64encode(self.body).decode(), True


def _trace_id() -> str:
    return f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"


class Edge(Protocol):
    """What stands in front of the functions in one profile."""

    @property
    def name(self) -> str: ...

    @property
    def max_body_bytes(self) -> int:
        """Request bodies over this are refused before any function runs (413)."""
        ...

    @property
    def max_header_bytes(self) -> int:
        """The request line and headers together; more is a 431."""
        ...

    @property
    def sends_unmatched(self) -> bool:
        """Whether a request no route matches goes to the topology's catch-all function
        (the HTTP API's ``$default`` route) rather than the edge's own 404."""
        ...

    def event(self, request: Request, route: HttpRoute | None) -> dict[str, Any]:
        """The event for ``request``, matched to ``route`` (``None``: to no route)."""
        ...

    def response(self, invocation: Invocation) -> HttpResponse: ...


@dataclass(frozen=True)
class AlbEdge:
    """The API's CloudFront distribution and internal load balancer, whose target groups
    have multi-value headers enabled (as the stacks configure them)."""

    name: str = "Application Load Balancer"
    max_body_bytes: int = 1024 * 1024
    """ALB's limit for a Lambda target's request body."""
    max_header_bytes: int = 16 * 1024
    sends_unmatched: bool = False
    """The listener's default action answers them: a fixed JSON 404."""

    def event(self, request: Request, route: HttpRoute | None) -> dict[str, Any]:
        multi: dict[str, list[str]] = {}
        for name, value in request.header_lines():
            multi.setdefault(name, []).append(value)
        # As the API's CloudFront distribution and load balancer do: the edge states the
        # caller's address (replacing any the caller sent) and appends it to
        # X-Forwarded-For.
        multi["cloudfront-viewer-address"] = [f"{request.client_ip}:{request.client_port}"]
        forwarded = ",".join(multi.pop("x-forwarded-for", []))
        ip = request.client_ip
        multi["x-forwarded-for"] = [f"{forwarded}, {ip}" if forwarded else ip]
        multi.setdefault("x-forwarded-proto", ["http"])
        multi.setdefault("x-amzn-trace-id", [_trace_id()])
        query: dict[str, list[str]] = {}
        for name, value in parse_qsl(request.query, keep_blank_values=True):
            query.setdefault(name, []).append(value)
        body, encoded = request.text_body()
        return {
            "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:local"}},
            "httpMethod": request.method,
            "path": request.path,
            "multiValueQueryStringParameters": query,
            "multiValueHeaders": multi,
            "body": body,
            "isBase64Encoded": encoded,
        }

    def response(self, invocation: Invocation) -> HttpResponse:
        if invocation.error_type == "Timeout":
            return json_error(504, "gateway_timeout", "the function timed out")
        result = invocation.result
        if invocation.failed or not isinstance(result, Mapping) or "statusCode" not in result:
            return json_error(502, "bad_gateway", "the function failed to answer")
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[str(name)] = ", ".join(str(v) for v in values)
        return HttpResponse(int(result["statusCode"]), _body(result), headers)


DEFAULT_ROUTE_KEY = "$default"
HTTP_API_ERROR = {"message": "Internal Server Error"}
HTTP_API_UNAVAILABLE = {"message": "Service Unavailable"}


@dataclass(frozen=True)
class HttpApiEdge:
    """The API's CloudFront distribution and an API Gateway HTTP API with a Lambda proxy
    integration, payload format 2.0, on its ``$default`` stage."""

    name: str = "API Gateway HTTP API"
    max_body_bytes: int = 6 * 1024 * 1024 - 64 * 1024
    """Lambda's 6 MB limit on a synchronous invocation's payload, less room for the rest
    of the event (the HTTP API itself takes up to 10 MB)."""
    max_header_bytes: int = 10 * 1024
    """The HTTP API's quota on the request line and headers together."""
    api_id: str = "local"
    sends_unmatched: bool = True
    """An HTTP API has no fixed responses: its ``$default`` route takes them."""

    def event(self, request: Request, route: HttpRoute | None) -> dict[str, Any]:
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in request.header_lines():
            if name == "cookie":
                cookies.extend(part.strip() for part in value.split(";") if part.strip())
            else:
                # A repeated header reaches the function as one, its values comma-joined.
                headers[name] = f"{headers[name]},{value}" if name in headers else value
        ip = request.client_ip
        forwarded = headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{forwarded}, {ip}" if forwarded else ip
        headers.setdefault("x-forwarded-proto", "https")
        headers.setdefault("x-forwarded-port", "443")
        headers.setdefault("x-amzn-trace-id", _trace_id())
        now = time.time()
        route_key = route.route_key(request.path) if route else DEFAULT_ROUTE_KEY
        domain = f"{self.api_id}.execute-api.localhost"
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": request.path,
            "rawQueryString": request.query,
        }
        if cookies:
            event["cookies"] = cookies
        event["headers"] = headers
        query: dict[str, str] = {}
        for name, value in parse_qsl(request.query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        if query:
            event["queryStringParameters"] = query
        event["requestContext"] = {
            "accountId": LOCAL_ACCOUNT,
            "apiId": self.api_id,
            "domainName": domain,
            "domainPrefix": self.api_id,
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route_key,
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        }
        if route and request.path != route.path:
            event["pathParameters"] = {
                GREEDY_PATH_PARAMETER: request.path.removeprefix(route.path + "/")
            }
        body, encoded = request.text_body()
        if request.body:
            event["body"] = body
        event["isBase64Encoded"] = encoded
        return event

    def response(self, invocation: Invocation) -> HttpResponse:
        """As the HTTP API reads a 2.0 answer: a function error or an answer it cannot
        read is its bare 500, a timeout its 503; a result without ``statusCode`` is
        taken as a JSON body with 200."""
        if invocation.error_type == "Timeout":
            return _json(503, HTTP_API_UNAVAILABLE)
        result = invocation.result
        if invocation.failed:
            return _json(500, HTTP_API_ERROR)
        if not isinstance(result, Mapping) or "statusCode" not in result:
            body = result if isinstance(result, str) else json.dumps(result)
            return HttpResponse(200, body.encode(), {"Content-Type": "application/json"})
        try:
            status = int(result["statusCode"])
        except (TypeError, ValueError):
            return _json(500, HTTP_API_ERROR)
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        cookies = [str(c) for c in result.get("cookies") or []]
        if cookies:
            headers["Set-Cookie"] = ", ".join(cookies)
        return HttpResponse(status, _body(result), headers)


def _body(result: Mapping[str, Any]) -> bytes:
    raw = result.get("body") or ""
    return base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()


def _json(status: int, payload: Mapping[str, str]) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


EDGES: Mapping[Profile, Edge] = {Profile.PRIVATE: AlbEdge(), Profile.LEAN: HttpApiEdge()}
"""The edge each profile puts in front of the functions."""
