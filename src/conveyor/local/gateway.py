"""The local load balancer: HTTP requests in, ALB events to the functions, responses out.

It behaves like the ALB in front of the functions in the cloud: requests for a route's
path go to its function (which answers 405 for methods it does not take), everything else
gets a fixed JSON 404, a function error is a 502 and a timeout a 504, and request bodies
over ALB's 1 MB Lambda limit are refused before any function runs.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from conveyor.local.workers import Invocation

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
DISCARD_MAX_BYTES = 64 * 1024 * 1024
"""Refused bodies up to this size are read and dropped; larger ones get a bare close."""
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


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


Invoke = Callable[[dict[str, Any]], Invocation]
Handler = Callable[[str, str, Mapping[str, str], bytes], HttpResponse]
"""A gateway-served route: (method, path with query, headers, body) -> response."""


def alb_event(
    method: str, target: str, headers: Mapping[str, str], body: bytes, client_ip: str
) -> dict[str, Any]:
    parts = urlsplit(target)
    lowered = {k.lower(): v for k, v in headers.items()}
    textual = lowered.get("content-type", "").startswith(_TEXT_TYPES) or not body
    try:
        text = body.decode("utf-8") if textual else None
    except UnicodeDecodeError:
        text = None
    lowered.setdefault("x-forwarded-for", client_ip)
    lowered.setdefault("x-forwarded-proto", "http")
    lowered.setdefault("x-amzn-trace-id", f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}")
    return {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:local"}},
        "httpMethod": method,
        "path": parts.path,
        "queryStringParameters": dict(parse_qsl(parts.query, keep_blank_values=True)),
        "headers": lowered,
        "body": text if text is not None else base64.b64encode(body).decode(),
        "isBase64Encoded": text is None,
    }


def from_alb_response(invocation: Invocation) -> HttpResponse:
    if invocation.error_type == "Timeout":
        return json_error(504, "gateway_timeout", "the function timed out")
    result = invocation.result
    if invocation.failed or not isinstance(result, Mapping) or "statusCode" not in result:
        return json_error(502, "bad_gateway", "the function failed to answer")
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name)] = ", ".join(str(v) for v in values)
    return HttpResponse(int(result["statusCode"]), body, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: in a burst of new connections the kernel
    # drops the rest, and each of those clients waits a second for its SYN to be resent.
    request_queue_size = 128


class Gateway:
    def __init__(
        self,
        functions: Mapping[str, Invoke] | None,
        served: Mapping[str, Handler] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        served_max_body: int = MAX_BODY_BYTES,
    ) -> None:
        """``functions``: exact path -> function; ``served``: path prefix -> handler.

        A gateway made with ``functions=None`` is starting: it serves ``served`` and
        answers 503 to everything else until ``open`` gives it the functions."""
        self.functions = dict(functions) if functions is not None else None
        self.served = dict(served or {})
        self.served_max_body = served_max_body
        self._server = _Server((host, port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def open(self, functions: Mapping[str, Invoke], served: Mapping[str, Handler]) -> None:
        self.served = {**self.served, **served}  # replaced whole: requests may be reading it
        self.functions = dict(functions)

    def max_body(self, target: str) -> int:
        """ALB's limit for function routes; ``served_max_body`` for the gateway's own."""
        path = urlsplit(target).path
        if self.functions is not None and path in self.functions:
            return MAX_BODY_BYTES
        served = any(path.startswith(prefix) for prefix in self.served)
        return self.served_max_body if served else MAX_BODY_BYTES

    def dispatch(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        client_ip: str = "127.0.0.1",
    ) -> HttpResponse:
        path = urlsplit(target).path
        invoke = self.functions.get(path) if self.functions is not None else None
        if invoke is not None:
            return from_alb_response(invoke(alb_event(method, target, headers, body, client_ip)))
        for prefix, handler in self.served.items():
            if path.startswith(prefix):
                return handler(method, target, headers, body)
        if self.functions is None:
            return json_error(503, "starting", "the local stack is starting; retry shortly")
        return json_error(404, "not_found", f"no route for {path}")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "conveyor-gateway"
            # Headers and body are separate writes: without this, the body waits for
            # the client's delayed ACK, ~40 ms per response.
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                response = self._read_and_dispatch(headers)
                self.send_response(response.status)
                for name, value in response.headers.items():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                if self.close_connection:
                    # Said out loud, or a client reuses the connection it is about to lose.
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            def _read_and_dispatch(self, headers: dict[str, str]) -> HttpResponse:
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    self.close_connection = True
                    return json_error(411, "length_required", "send a Content-Length")
                try:
                    length = int(headers.get("content-length", "0"))
                except ValueError:
                    self.close_connection = True
                    return json_error(400, "bad_request", "Content-Length is not a number")
                limit = gateway.max_body(self.path)
                if length < 0 or length > limit:
                    self.close_connection = True
                    self._discard(length)
                    return json_error(
                        413, "payload_too_large", f"bodies over {limit} bytes are refused"
                    )
                body = self.rfile.read(length) if length else b""
                try:
                    return gateway.dispatch(
                        self.command, self.path, headers, body, self.client_address[0]
                    )
                except Exception:
                    log.exception("gateway failed on %s %s", self.command, self.path)
                    return json_error(500, "internal_error", "the gateway failed")

            def _discard(self, length: int) -> None:
                """Read a refused body, unparsed, so that the client gets to read the
                refusal: closing on unread data makes the kernel reset the connection,
                and the client sees a dropped connection instead of the 413."""
                if not 0 < length <= DISCARD_MAX_BYTES:
                    return
                while length > 0:
                    chunk = self.rfile.read(min(length, 1 << 16))
                    if not chunk:
                        return
                    length -= len(chunk)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s - %s", self.address_string(), format % args)

        return RequestHandler

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="conveyor-gateway", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
