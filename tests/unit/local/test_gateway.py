"""The local gateway: HTTP in, each edge's events out, and the load balancer's events."""

from __future__ import annotations

import base64
import json
import logging
import re
import select
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from conveyor.functions.http_edge import request_line
from conveyor.local.edges import EDGES, AlbEdge, Edge, HeaderLines, HttpResponse, Request
from conveyor.local.gateway import Gateway, Limits
from conveyor.local.workers import Invocation
from conveyor.topology import HttpRoute, Profile

ALB = AlbEdge()
MAX_BODY_BYTES = ALB.max_body_bytes


def alb_event(
    method: str, target: str, headers: HeaderLines, body: bytes, ip: str, port: int = 0
) -> dict[str, Any]:
    return ALB.event(Request(method, target, headers, body, ip, port), HttpRoute("/orders"))


def from_alb_response(invocation: Invocation) -> HttpResponse:
    return ALB.response(invocation)


def test_a_json_body_is_passed_as_text_and_headers_are_lowercased() -> None:
    event = alb_event(
        "POST",
        "/orders?x=1&y=&x=2",
        [("Content-Type", "application/json"), ("X-Client-Id", "c"), ("x-client-id", "d")],
        b'{"a":1}',
        "10.0.0.1",
    )
    assert event["body"] == '{"a":1}'
    assert event["isBase64Encoded"] is False
    assert event["path"] == "/orders"
    # Multi-value, as the stacks' target groups deliver: a repeat is seen as a repeat.
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
    assert event["multiValueHeaders"]["x-client-id"] == ["c", "d"]
    assert event["multiValueHeaders"]["x-forwarded-for"] == ["10.0.0.1"]
    assert "headers" not in event


def test_the_edge_states_the_callers_address_whatever_the_caller_claims() -> None:
    spoofed = [("X-Forwarded-For", "1.2.3.4"), ("CloudFront-Viewer-Address", "1.2.3.4:1")]
    event = alb_event("GET", "/orders/x", spoofed, b"", "10.0.0.1", 50123)
    headers = event["multiValueHeaders"]
    assert headers["cloudfront-viewer-address"] == ["10.0.0.1:50123"]
    assert headers["x-forwarded-for"] == ["1.2.3.4, 10.0.0.1"], "appended, as the ALB does"


def test_a_binary_body_is_base64_encoded_as_alb_does() -> None:
    raw = b"\x89PNG\r\n\x1a\n\x00"
    event = alb_event("POST", "/u", {"content-type": "image/png"}, raw, "127.0.0.1")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_invalid_utf8_under_a_text_type_is_still_delivered_exactly() -> None:
    event = alb_event("POST", "/o", {"content-type": "application/json"}, b"\xff{", "127.0.0.1")
    assert base64.b64decode(event["body"]) == b"\xff{"


def test_function_failures_become_502_and_timeouts_504() -> None:
    assert from_alb_response(Invocation(error="boom", error_type="ValueError")).status == 502
    assert from_alb_response(Invocation(result={"no": "status"})).status == 502
    assert from_alb_response(Invocation(error="slow", error_type="Timeout")).status == 504
    ok = from_alb_response(
        Invocation(
            result={
                "statusCode": 202,
                "body": base64.b64encode(b"hi").decode(),
                "isBase64Encoded": True,
                "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            }
        )
    )
    assert (ok.status, ok.body, ok.headers["Set-Cookie"]) == (202, b"hi", "a=1, b=2")


@pytest.mark.parametrize("edge", [EDGES[p] for p in Profile], ids=[str(p) for p in Profile])
def test_over_http_routes_go_to_functions_and_everything_else_is_a_json_404(edge: Edge) -> None:
    seen: list[dict[str, Any]] = []

    def echo(event: dict[str, Any]) -> Invocation:
        seen.append(event)
        return Invocation(
            result={
                "statusCode": 200,
                "body": event["body"],
                "headers": {"Content-Type": "application/json"},
            }
        )

    def served(method: str, target: str, headers: Any, body: bytes) -> HttpResponse:
        return HttpResponse(200, b"static", {"Content-Type": "text/plain"})

    gateway = Gateway({"/orders": echo}, {"/media/": served}, edge=edge)
    gateway.start()
    try:
        with requests.Session() as http:
            answer = http.post(
                gateway.url + "/orders",
                data=b'{"k":"v"}',
                headers={"Content-Type": "application/json"},
            )
            assert (answer.status_code, answer.json()) == (200, {"k": "v"})
            assert request_line(seen[0]) == ("POST", "/orders"), "in the edge's own fields"
            assert http.get(gateway.url + "/media/x").text == "static"
            missing = http.get(gateway.url + "/nowhere")
            assert missing.status_code == 404
            assert missing.json()["error"] == "not_found"
            huge = http.post(gateway.url + "/orders", data=b"x" * (edge.max_body_bytes + 1))
            assert huge.status_code == 413
            assert json.loads(huge.content)["error"] == "payload_too_large"
            assert huge.headers["Connection"] == "close", "the client must not reuse it"
            assert len(seen) == 1, "an oversized body never reaches the function"
    finally:
        gateway.stop()


def test_a_stopped_gateway_closes_kept_alive_connections_too() -> None:
    gateway = Gateway({}, {})
    gateway.start()
    address = urlsplit(gateway.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 404 ")
        gateway.stop()
        try:
            sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n")
            after = sock.recv(65536)
        except OSError:
            after = b""
        assert after == b"", "nothing answers once the gateway has stopped"


def test_a_starting_gateway_serves_its_own_pages_and_503s_the_rest_until_opened() -> None:
    def served(method: str, target: str, headers: Any, body: bytes) -> HttpResponse:
        return HttpResponse(200, str(len(body)).encode(), {"Content-Type": "text/plain"})

    def echo(event: dict[str, Any]) -> Invocation:
        return Invocation(result={"statusCode": 204, "body": ""})

    gateway = Gateway(None, {"/console": served}, served_max_body=3 * MAX_BODY_BYTES)
    gateway.start()
    try:
        with requests.Session() as http:
            assert http.get(gateway.url + "/console").status_code == 200
            starting = http.post(gateway.url + "/orders", data=b"{}")
            assert (starting.status_code, starting.json()["error"]) == (503, "starting")
            big = b"x" * (2 * MAX_BODY_BYTES)
            assert http.post(gateway.url + "/console/api/uploads", data=big).text == str(len(big))
            gateway.open({"/orders": echo}, {"/media/": served})
            assert http.post(gateway.url + "/orders", data=b"{}").status_code == 204
            assert http.post(gateway.url + "/orders", data=big).status_code == 413
            assert http.get(gateway.url + "/media/x").status_code == 200
            assert http.get(gateway.url + "/nowhere").status_code == 404
    finally:
        gateway.stop()


def test_a_burst_of_new_connections_is_queued_for_the_gateway_not_dropped() -> None:
    gateway = Gateway({}, {})  # not started yet: nothing accepts, the kernel queues them
    address = urlsplit(gateway.url)
    clients = [socket.socket() for _ in range(64)]
    try:
        for client in clients:
            client.setblocking(False)
            client.connect_ex((address.hostname, address.port))
        _, connected, _ = select.select([], clients, [], 2)
        assert len(connected) == len(clients)
        assert all(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for c in connected)
    finally:
        for client in clients:
            client.close()
        gateway.start()
        gateway.stop()


def exchange(gateway: Gateway, raw: bytes) -> tuple[int, dict[str, Any], bytes]:
    """Send ``raw`` as it is; (status, JSON body or {}, everything the gateway sent)."""
    address = urlsplit(gateway.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body.startswith(b"{") else {}, received


@pytest.fixture
def strict_gateway() -> Iterator[Gateway]:
    def echo(event: dict[str, Any]) -> Invocation:
        return Invocation(result={"statusCode": 200, "body": event["body"] or ""})

    gateway = Gateway({"/orders": echo}, {}, limits=Limits(idle_s=5, header_s=0.5, body_s=0.5))
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (
            b"POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
            400,
        ),
        (
            b"POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\nab",
            400,
        ),
        (b"POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: +2\r\n\r\nab", 400),
        (b"POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 1_0\r\n\r\nab", 400),
        (b"POST /orders HTTP/1.1\r\nHost: a\r\nno colon here\r\nContent-Length: 2\r\n\r\nab", 400),
        (b"GET /orders HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"NOT A REQUEST LINE\r\n\r\n", 400),
        (b"GET /orders HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 20_000 + b"\r\n\r\n", 431),
        (b"BREW /orders HTTP/1.1\r\nHost: a\r\n\r\n", 501),
        (b"POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
    ],
    ids=[
        "repeated-content-length",
        "conflicting-content-length",
        "signed-content-length",
        "underscored-content-length",
        "header-without-colon",
        "repeated-host",
        "garbage-request-line",
        "oversized-headers",
        "unknown-method",
        "chunked",
    ],
)
def test_requests_an_alb_refuses_get_a_json_error_and_reach_no_function(
    strict_gateway: Gateway, raw: bytes, status: int
) -> None:
    answered, body, received = exchange(strict_gateway, raw)
    assert answered == status, received[:300]
    assert body["error"], "every error is JSON"
    assert body["reason"], "with a reason"
    assert b"Connection: close" in received
    assert re.search(rb"\r\nX-Request-Id: [0-9a-f]{32}\r\n", received), "an id to quote"


def test_the_gateways_own_answers_echo_the_callers_request_id(strict_gateway: Gateway) -> None:
    _, body, received = exchange(
        strict_gateway, b"GET /nowhere HTTP/1.1\r\nHost: a\r\nX-Request-Id: trace-9\r\n\r\n"
    )
    assert body["error"] == "not_found"
    assert b"\r\nX-Request-Id: trace-9\r\n" in received


def test_a_body_cannot_smuggle_a_second_request(strict_gateway: Gateway) -> None:
    smuggled = b"GET /orders HTTP/1.1\r\nHost: a\r\n\r\n"
    raw = (
        b"POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
        b"Content-Length: " + str(len(smuggled)).encode() + b"\r\n\r\n" + smuggled
    )
    _, _, received = exchange(strict_gateway, raw)
    assert received.count(b"HTTP/1.1 ") == 1, "one answer: the refusal"


def test_a_slow_client_is_disconnected_quietly(
    strict_gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    address = urlsplit(strict_gateway.url)
    slow = [socket.create_connection((address.hostname, address.port)) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(b"POST /orders HTTP/1.1\r\nHost: a\r\n")  # and then nothing more
        for sock in slow:
            sock.settimeout(10)
            assert sock.recv(100) == b"", "closed without an answer once headers time out"
    finally:
        for sock in slow:
            sock.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    status, _, _ = exchange(strict_gateway, b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status == 404, "the gateway still answers"
