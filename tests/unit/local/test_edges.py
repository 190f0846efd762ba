"""The HTTP API edge (the lean profile's): its events, key for key as API Gateway sends
them, its answers to a function's failures, and its limits."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from conveyor.local.edges import AlbEdge, Edge, HttpApiEdge, Request
from conveyor.local.gateway import Gateway
from conveyor.local.workers import Invocation
from conveyor.topology import GREEDY_PATH_PARAMETER, HttpRoute

EDGE = HttpApiEdge()
ORDERS = HttpRoute("/orders")
SAM_EVENT = Path(__file__).resolve().parents[3] / "build" / "sam-cli" / "http-api-proxy.json"
"""``sam local generate-event apigateway http-api-proxy``, written by ``make test``."""

NOT_SENT_HERE = {
    "requestContext.authentication": "only with mutual TLS, which the API does not use",
    "requestContext.authorizer": "only with an authorizer: requests are signed, not tokened",
    "stageVariables": "only when the stage has variables; $default has none",
}
"""Keys of SAM's sample that API Gateway sends only for features the API does not use."""


def event(
    method: str = "POST",
    target: str = "/orders",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    ip: str = "198.51.100.7",
) -> dict[str, Any]:
    return EDGE.event(Request(method, target, headers or [], body, ip, 50123), ORDERS)


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key of a JSON document, as dotted paths (the keys of maps of names, such as
    the headers, are data, not shape, and are left out)."""
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, item in value.items():
        path = f"{prefix}{key}"
        found.add(path)
        if key not in ("headers", "queryStringParameters", "pathParameters", "claims"):
            found |= key_paths(item, path + ".")
    return found


def test_the_event_has_the_shape_sam_generates_key_for_key() -> None:
    assert SAM_EVENT.exists(), f"{SAM_EVENT} is missing: `make test` writes it with the SAM CLI"
    sample = json.loads(SAM_EVENT.read_text())
    ours = event(
        "POST",
        "/orders/o-1?a=1",
        [("Cookie", "c=1"), ("Content-Type", "application/json")],
        b"{}",
    )
    expected = {
        key for key in key_paths(sample) if not any(key.startswith(n) for n in NOT_SENT_HERE)
    }
    assert key_paths(ours) == expected
    for path in ("routeKey", "rawPath", "version", "isBase64Encoded"):
        assert type(ours[path]) is type(sample[path]), path
    assert ours["requestContext"]["stage"] == sample["requestContext"]["stage"] == "$default"
    assert set(ours["requestContext"]["http"]) == set(sample["requestContext"]["http"])


def test_repeated_headers_are_joined_with_commas_and_cookies_are_their_own_list() -> None:
    sent = event(
        headers=[
            ("X-Signature", "a"),
            ("x-signature", "b"),
            ("Cookie", "one=1; two=2"),
            ("X-Forwarded-For", "6.6.6.6"),
        ]
    )
    assert sent["headers"]["x-signature"] == "a,b"
    assert sent["cookies"] == ["one=1", "two=2"]
    assert "cookie" not in sent["headers"]
    assert sent["headers"]["x-forwarded-for"] == "6.6.6.6, 198.51.100.7", "appended"
    assert sent["requestContext"]["http"]["sourceIp"] == "198.51.100.7"


def test_routes_queries_and_bodies_arrive_as_the_http_api_delivers_them() -> None:
    item = event("GET", "/orders/o-9?x=1&x=2&y=")
    assert (item["routeKey"], item["rawPath"]) == ("ANY /orders/{proxy+}", "/orders/o-9")
    assert item["pathParameters"] == {GREEDY_PATH_PARAMETER: "o-9"}
    assert item["rawQueryString"] == "x=1&x=2&y="
    assert item["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert "body" not in item, "a request without a body has none in its event"
    collection = event("POST", "/orders", [("Content-Type", "application/json")], b'{"a":1}')
    assert collection["routeKey"] == "ANY /orders"
    assert "pathParameters" not in collection
    assert "queryStringParameters" not in collection
    assert (collection["body"], collection["isBase64Encoded"]) == ('{"a":1}', False)
    binary = event("POST", "/orders", [("Content-Type", "image/png")], b"\x89PNG")
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x89PNG"


def test_a_functions_failure_is_the_http_apis_own_answer() -> None:
    crashed = EDGE.response(Invocation(error="boom", error_type="ValueError"))
    assert (crashed.status, json.loads(crashed.body)) == (500, {"message": "Internal Server Error"})
    slow = EDGE.response(Invocation(error="slow", error_type="Timeout"))
    assert (slow.status, json.loads(slow.body)) == (503, {"message": "Service Unavailable"})
    unreadable = EDGE.response(Invocation(result={"statusCode": "two hundred"}))
    assert unreadable.status == 500


def test_an_answer_is_read_with_its_headers_cookies_and_encoding() -> None:
    answer = EDGE.response(
        Invocation(
            result={
                "statusCode": 202,
                "body": base64.b64encode(b"hi").decode(),
                "isBase64Encoded": True,
                "headers": {"X-Request-Id": "r-1"},
                "cookies": ["a=1", "b=2"],
            }
        )
    )
    assert (answer.status, answer.body) == (202, b"hi")
    assert answer.headers["X-Request-Id"] == "r-1"
    assert answer.headers["Set-Cookie"] == "a=1, b=2"
    inferred = EDGE.response(Invocation(result={"order_id": "o-1"}))
    assert (inferred.status, json.loads(inferred.body)) == (200, {"order_id": "o-1"})


@pytest.mark.parametrize(
    ("extra", "status"),
    [(b"x" * (9 * 1024), None), (b"x" * (11 * 1024), 431)],
    ids=["under-10-KiB", "over-10-KiB"],
)
def test_headers_over_the_http_apis_quota_are_refused_before_any_function(
    extra: bytes, status: int | None
) -> None:
    seen: list[dict[str, Any]] = []

    def echo(sent: dict[str, Any]) -> Invocation:
        seen.append(sent)
        return Invocation(result={"statusCode": 204, "body": ""})

    gateway = Gateway({"/orders": echo}, {}, edge=EDGE)
    gateway.start()
    try:
        address = urlsplit(gateway.url)
        with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
            sock.sendall(b"GET /orders HTTP/1.1\r\nHost: a\r\nX-Big: " + extra + b"\r\n\r\n")
            head = sock.recv(65536)
    finally:
        gateway.stop()
    if status is None:
        assert head.startswith(b"HTTP/1.1 204 "), head[:40]
        assert len(seen) == 1
    else:
        assert head.startswith(f"HTTP/1.1 {status} ".encode()), head[:40]
        assert seen == [], "a refused request never reaches the function"


@pytest.mark.parametrize("edge", [HttpApiEdge(), AlbEdge()], ids=["http-api", "alb"])
def test_a_path_no_route_matches_goes_where_the_edge_sends_it(edge: Edge) -> None:
    routed: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []

    def answering(seen: list[dict[str, Any]]) -> Callable[[dict[str, Any]], Invocation]:
        def invoke(sent: dict[str, Any]) -> Invocation:
            seen.append(sent)
            return Invocation(result={"statusCode": 404, "body": '{"error":"not_found"}'})

        return invoke

    gateway = Gateway(None, {}, edge=edge)
    gateway.open({"/orders": answering(routed)}, {}, answering(unmatched))
    answer = gateway.dispatch("GET", "/elsewhere/x?y=1", {"Host": "a"}, b"", "198.51.100.7")
    assert answer.status == 404
    assert json.loads(answer.body)["error"] == "not_found"
    assert routed == []
    if edge.sends_unmatched:
        [sent] = unmatched
        assert (sent["routeKey"], sent["rawPath"]) == ("$default", "/elsewhere/x")
        assert "pathParameters" not in sent
    else:
        assert unmatched == [], "the load balancer answers with its fixed response"
        assert json.loads(answer.body) == {"error": "not_found", "reason": "no such route"}
