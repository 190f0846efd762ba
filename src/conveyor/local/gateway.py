"""The local edge: HTTP requests in, events to the functions, responses out.

It behaves like the edge of the profile it runs (:mod:`conveyor.local.edges`): the load
balancer, or the HTTP API. Requests for a route's path go to its function (which answers
405 for methods it does not take), everything else gets the API distribution's fixed JSON
404, a function's failure is answered as that edge answers it, and request bodies and
headers over that edge's limits are refused before any function runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import h11

from conveyor.core.request_ids import request_id_from
from conveyor.local.edges import EDGES, Edge, HeaderLines, HttpResponse, Request, json_error
from conveyor.local.workers import Invocation
from conveyor.topology import DEFAULT_PROFILE, HttpRoute

log = logging.getLogger(__name__)

DISCARD_MAX_BYTES = 64 * 1024 * 1024
"""Refused bodies up to this size are read and dropped; larger ones get a bare close."""
RECV_BYTES = 64 * 1024
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class Limits:
    """How long a client may take; a slower one is disconnected, without a response."""

    idle_s: float = 60.0
    """A kept-alive connection waiting for its next request (ALB's idle timeout)."""
    header_s: float = 10.0
    """A started request sending its request line and headers."""
    body_s: float = 30.0
    """A request sending its body."""


Invoke = Callable[[dict[str, Any]], Invocation]
Handler = Callable[[str, str, Mapping[str, str], bytes], HttpResponse]
"""A gateway-served route: (method, path with query, headers, body) -> response."""


class Gateway:
    def __init__(
        self,
        functions: Mapping[str, Invoke] | None,
        served: Mapping[str, Handler] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        served_max_body: int | None = None,
        limits: Limits = Limits(),
        edge: Edge = EDGES[DEFAULT_PROFILE],
    ) -> None:
        """``functions``: route path -> function; ``served``: path prefix -> handler;
        ``edge``: what the functions' events and limits are modelled on.

        A gateway made with ``functions=None`` is starting: it serves ``served`` and
        answers 503 to everything else until ``open`` gives it the functions."""
        self.functions = dict(functions) if functions is not None else None
        self.served = dict(served or {})
        self.catch_all: Invoke | None = None
        self.edge = edge
        self.served_max_body = edge.max_body_bytes if served_max_body is None else served_max_body
        self.limits = limits
        # socketserver's backlog of 5 dropped connections in a burst, and each of those
        # clients waited a second for its SYN to be resent.
        self._listener = socket.create_server((host, port), backlog=128)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        """Connections being served: a stopped gateway closes them, kept-alive ones too,
        so that nothing answers once it has stopped."""
        self._open_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host!s}:{port}"

    def open(
        self,
        functions: Mapping[str, Invoke],
        served: Mapping[str, Handler],
        catch_all: Invoke | None = None,
    ) -> None:
        """Serve ``functions`` by route path, and ``served`` by path prefix; where the
        edge sends a request no route matches to a function, ``catch_all`` answers it."""
        self.served = {**self.served, **served}  # replaced whole: requests may be reading it
        self.catch_all = catch_all if self.edge.sends_unmatched else None
        self.functions = dict(functions)

    def function_for(self, path: str) -> tuple[HttpRoute, Invoke] | None:
        """The route whose rule covers ``path`` (``/orders`` and ``/orders/{id}``), and
        its function."""
        for path_rule, invoke in (self.functions or {}).items():
            route = HttpRoute(path_rule)
            if route.matches(path):
                return route, invoke
        return None

    def max_body(self, target: str) -> int:
        """The edge's limit for function routes; ``served_max_body`` for the gateway's
        own."""
        path = urlsplit(target).path
        if self.function_for(path) is not None:
            return self.edge.max_body_bytes
        served = any(path.startswith(prefix) for prefix in self.served)
        return self.served_max_body if served else self.edge.max_body_bytes

    def dispatch(
        self,
        method: str,
        target: str,
        headers: HeaderLines,
        body: bytes,
        client_ip: str = "127.0.0.1",
        client_port: int = 0,
    ) -> HttpResponse:
        path = urlsplit(target).path
        found = self.function_for(path)
        if found is not None:
            route, invoke = found
            request = Request(method, target, headers, body, client_ip, client_port)
            return self.edge.response(invoke(self.edge.event(request, route)))
        for prefix, handler in self.served.items():
            if path.startswith(prefix):
                lines = headers.items() if isinstance(headers, Mapping) else headers
                return handler(method, target, {k.lower(): v for k, v in lines}, body)
        if self.functions is None:
            return json_error(503, "starting", "the local stack is starting; retry shortly")
        if self.catch_all is not None:
            request = Request(method, target, headers, body, client_ip, client_port)
            return self.edge.response(self.catch_all(self.edge.event(request, None)))
        return json_error(404, "not_found", "no such route")

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, address = self._listener.accept()
            except OSError:
                return  # the listener was closed: the gateway is stopping
            with self._open_lock:
                if self._stopping.is_set():
                    sock.close()
                    return
                self._open.add(sock)
            threading.Thread(
                target=_Connection(self, sock, address).serve,
                name="conveyor-gateway-connection",
                daemon=True,
            ).start()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._accept, name="conveyor-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        # shutdown() wakes an accept() that is waiting; close() alone does not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._open_lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the thread waiting in recv()
        if self._thread:
            self._thread.join(timeout=5)

    def connection_closed(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.close()


class _ClientGone(Exception):
    """The client closed the connection or stopped sending within the time limits."""


class _Connection:
    """One client connection: HTTP/1.1 parsed by h11 (strict: malformed request lines,
    header lines, Content-Length values and oversized headers are protocol errors), with
    time limits on the idle wait, the headers and the body."""

    def __init__(self, gateway: Gateway, sock: socket.socket, address: tuple[str, int]) -> None:
        self.gateway = gateway
        self.sock = sock
        self.client_ip, self.client_port = address[0], int(address[1])
        self.max_header_bytes = gateway.edge.max_header_bytes
        self.http = h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_header_bytes)
        self._head: bytearray | None = None
        """The bytes of the request being read, up to its headers' end."""
        # Headers and body are separate writes: without this, the body waits for the
        # client's delayed ACK, ~40 ms per response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def serve(self) -> None:
        try:
            while self._one_exchange():
                self.http.start_next_cycle()
        except _ClientGone:
            log.debug("client %s left or was too slow", self.client_ip)
        except h11.RemoteProtocolError as exc:
            self._refuse_malformed(exc)
        except OSError as exc:
            log.debug("connection from %s failed: %s", self.client_ip, exc)
        finally:
            self.gateway.connection_closed(self.sock)

    def _one_exchange(self) -> bool:
        """Read one request, answer it; False when the connection is to be closed."""
        limits = self.gateway.limits
        self._head = bytearray()
        request = self._next_event(limits.idle_s, limits.header_s)
        if request is None:
            return False
        assert isinstance(request, h11.Request)
        method, target = request.method.decode("ascii"), request.target.decode("ascii")
        lines = [(name.decode("ascii"), value.decode("latin-1")) for name, value in request.headers]
        headers = dict(lines)
        # h11 folds identical repeated Content-Length lines into one; ALB refuses them.
        head = bytes(self._head or b"").partition(b"\r\n\r\n")[0]
        self._head = None  # the head is read: the body is not kept twice
        names = [
            line.split(b":", 1)[0].strip().lower().decode("latin-1")
            for line in head.split(b"\r\n")[1:]
        ]
        refused = _refused(method, names, headers, len(head), self.max_header_bytes)
        if refused is None:
            length = int(headers.get("content-length", "0"))
            limit = self.gateway.max_body(target)
            if length > limit:
                refused = json_error(
                    413, "payload_too_large", f"bodies over {limit} bytes are refused"
                )
                self._discard(length)
        given_id = headers.get("x-request-id")
        if refused is not None:
            self._respond(method, refused, close=True, request_id=given_id)
            return False
        body = self._read_body()
        try:
            response = self.gateway.dispatch(
                method, target, lines, body, self.client_ip, self.client_port
            )
        except Exception:
            log.exception("gateway failed on %s %s", method, target)
            response = json_error(500, "internal_error", "the gateway failed")
        self._respond(method, response, close=False, request_id=given_id)
        return self.http.our_state is h11.DONE and self.http.their_state is h11.DONE

    def _next_event(self, first_byte_s: float, complete_s: float) -> h11.Event | None:
        """The next event, waiting ``first_byte_s`` for the start of it and ``complete_s``
        for the rest; None when the client closed between requests."""
        deadline: float | None = None
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                wait = first_byte_s if deadline is None else deadline - time.monotonic()
                data = self._recv(wait)
                if self._head is not None and len(self._head) <= self.max_header_bytes:
                    self._head += data
                if deadline is None:
                    deadline = time.monotonic() + complete_s
                self.http.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed) or not isinstance(event, h11.Event):
                return None  # closed, or PAUSED: nothing more is read on this connection
            return event

    def _recv(self, wait_s: float) -> bytes:
        if wait_s <= 0:
            raise _ClientGone
        self.sock.settimeout(wait_s)
        try:
            return self.sock.recv(RECV_BYTES)
        except TimeoutError as exc:
            raise _ClientGone from exc

    def _read_body(self) -> bytes:
        chunks = []
        body_s = self.gateway.limits.body_s
        deadline = time.monotonic() + body_s
        while True:
            event = self._next_event(deadline - time.monotonic(), body_s)
            if isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                raise _ClientGone

    def _discard(self, length: int) -> None:
        """Read a refused body, unparsed, so that the client gets to read the refusal:
        closing on unread data makes the kernel reset the connection, and the client
        sees a dropped connection instead of the 413."""
        deadline = time.monotonic() + self.gateway.limits.body_s
        length -= len(self.http.trailing_data[0])  # what h11 already read past the headers
        with contextlib.suppress(_ClientGone, OSError):
            while 0 < length <= DISCARD_MAX_BYTES:
                chunk = self._recv(deadline - time.monotonic())
                if not chunk:
                    return
                length -= len(chunk)

    def _respond(
        self, method: str, response: HttpResponse, close: bool, request_id: str | None = None
    ) -> None:
        headers = [
            (name, value)
            for name, value in response.headers.items()
            if name.lower() not in ("content-length", "connection", "transfer-encoding")
        ]
        if not any(name.lower() == "x-request-id" for name, _ in headers):
            # The gateway's own answers (refusals, 404s, 5XXs) carry an id too.
            headers.append(("X-Request-Id", request_id_from(request_id)))
        headers.append(("Content-Length", str(len(response.body))))
        headers.append(("Server", "conveyor-gateway"))
        if close:
            # Said out loud, or a client reuses the connection it is about to lose.
            headers.append(("Connection", "close"))
        data = self.http.send(h11.Response(status_code=response.status, headers=headers))
        if method != "HEAD":
            data += self.http.send(h11.Data(data=response.body)) or b""
        data += self.http.send(h11.EndOfMessage()) or b""
        self.sock.sendall(data or b"")

    def _refuse_malformed(self, error: h11.RemoteProtocolError) -> None:
        """A JSON error for a request h11 could not parse, then close."""
        status = error.error_status_hint
        reason = {414: "uri_too_long", 431: "headers_too_large", 505: "http_version"}.get(
            status, "bad_request"
        )
        body = json.dumps({"error": reason, "reason": f"malformed request: {error}"}).encode()
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Request-Id: {request_id_from(None)}\r\n"
            "Connection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            self.sock.sendall(head.encode("ascii") + body)


def _refused(
    method: str, names: list[str], headers: Mapping[str, str], head_bytes: int, max_head: int
) -> HttpResponse | None:
    """What the edge refuses before any function sees the request."""
    if head_bytes > max_head:
        return json_error(431, "headers_too_large", f"headers over {max_head} bytes")
    if names.count("content-length") > 1:
        return json_error(400, "bad_request", "Content-Length is repeated")
    if names.count("host") > 1:
        return json_error(400, "bad_request", "Host is repeated")
    if "transfer-encoding" in headers:
        return json_error(411, "length_required", "send a Content-Length")
    if method not in METHODS:
        return json_error(501, "not_implemented", f"{method} is not an HTTP method served here")
    return None
