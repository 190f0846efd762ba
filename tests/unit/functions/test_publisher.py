"""The publisher function on the events of both edges (ALB and HTTP API), with AWS mocked
in process."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from conveyor.core.orders import AcceptedOrder
from conveyor.functions import http_edge, publisher
from conveyor.local.provision import Resources
from tests.unit.conftest import (
    answer_of,
    context,
    drain,
    http_event,
    order_json,
    set_header,
    signed_event,
    use_function_env,
)

pytestmark = pytest.mark.usefixtures("publisher_env", "edge")


@pytest.fixture
def publisher_env(resources: Resources, monkeypatch: pytest.MonkeyPatch) -> None:
    use_function_env(monkeypatch, resources, "publisher")


def call(event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    answer = answer_of(publisher.handler(event, context("publisher")))
    return answer.status, json.loads(answer.body), dict(answer.headers)


def test_a_signed_valid_order_is_accepted_and_published_with_its_attributes(
    resources: Resources,
) -> None:
    status, body, headers = call(
        signed_event(order_json(order_id="o-1"), extra={"x-request-id": "trace-42"})
    )
    assert (status, body) == (202, {"order_id": "o-1", "status": "accepted"})
    assert headers["X-Request-Id"] == "trace-42"
    [message] = drain(resources.queues["billing"])
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    # The order's trace goes with it: the answer names it, the message continues it.
    traceparent = attributes.pop("traceparent")
    assert traceparent.split("-")[1] == headers["X-Trace-Id"]
    assert attributes == {
        "event_type": "order.accepted",
        "order_id": "o-1",
        "correlation_id": "trace-42",
    }
    accepted = AcceptedOrder.model_validate_json(message["Body"])
    assert accepted.client_id == "dev"
    assert str(accepted.items[0].unit_price) == "19.95"


def test_an_order_without_an_id_gets_one() -> None:
    status, body, _ = call(signed_event(order_json()))
    assert status == 202
    assert len(body["order_id"]) == 32


def test_a_base64_encoded_body_is_verified_on_its_raw_bytes() -> None:
    event = signed_event(order_json())
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    assert call(event)[0] == 202


def test_an_invalid_order_is_a_400_naming_the_fields() -> None:
    status, body, _ = call(signed_event(order_json(currency="EURO", items=[])))
    assert status == 400
    assert body["error"] == "invalid_order"
    assert {f["field"] for f in body["fields"]} == {"currency", "items"}


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(lambda: signed_event(order_json(), secret="wrong"), id="wrong-secret"),
        pytest.param(lambda: signed_event(order_json(), client_id="nobody"), id="unknown"),
        pytest.param(lambda: signed_event(order_json(), at=time.time() - 301), id="stale"),
        pytest.param(lambda: signed_event(order_json(), at=time.time() + 301), id="future"),
        pytest.param(
            lambda: http_event(
                "POST", "/orders", {"content-type": "application/json"}, order_json(), "1.2.3.4"
            ),
            id="unsigned",
        ),
    ],
)
def test_every_authentication_failure_is_the_same_401(event: Any, resources: Resources) -> None:
    status, body, _ = call(event())
    assert status == 401
    assert body == {"error": "unauthorized", "reason": "request signature is missing or invalid"}
    assert drain(resources.queues["billing"]) == [], "nothing is published"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_are_a_405_with_allow(method: str) -> None:
    status, body, headers = call(signed_event(b"", method=method))
    assert status == 405
    assert body["error"] == "method_not_allowed"
    assert headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("event", "status"),
    [
        pytest.param(lambda: signed_event(order_json(), secret="wrong"), 401, id="401"),
        pytest.param(lambda: signed_event(order_json(currency="X")), 400, id="400"),
        pytest.param(lambda: signed_event(b"", method="PUT"), 405, id="405"),
        pytest.param(lambda: signed_event(order_json(), path="/nope"), 404, id="404"),
        pytest.param(lambda: signed_event(order_json(), content_type="text/plain"), 415),
        pytest.param(lambda: signed_event(b" " * (65 * 1024)), 413, id="413"),
    ],
)
def test_every_error_answer_carries_the_request_id_the_logs_use(
    event: Any, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Powertools' handler keeps the stream it was made with; point it here for this test.
    lines = io.StringIO()
    for handler in logging.getLogger(http_edge.logger.name).handlers:
        monkeypatch.setattr(handler, "stream", lines)
    sent = event()
    set_header(sent, "x-request-id", "trace-err-1")
    assert call(sent)[0] == status
    assert call(sent)[2]["X-Request-Id"] == "trace-err-1"
    anonymous = event()
    set_header(anonymous, "x-request-id", None)
    given = call(anonymous)[2]["X-Request-Id"]
    logged = [json.loads(line) for line in lines.getvalue().splitlines() if "level" in line]
    assert len(given) == 32, "a generated id when the caller sent none"
    assert any(entry.get("correlation_id") == given for entry in logged), "the same id is logged"


def test_every_log_line_names_the_callers_address_as_the_edge_saw_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = io.StringIO()
    for handler in logging.getLogger(http_edge.logger.name).handlers:
        monkeypatch.setattr(handler, "stream", lines)
    spoofed = {"x-forwarded-for": "6.6.6.6", "cloudfront-viewer-address": "6.6.6.6:1"}
    event = signed_event(order_json(), extra=spoofed, client_ip="203.0.113.9")
    assert call(event)[0] == 202
    logged = [json.loads(line) for line in lines.getvalue().splitlines() if "level" in line]
    assert logged
    assert {entry["caller"] for entry in logged} == {"203.0.113.9"}


@pytest.mark.parametrize(
    ("event", "caller"),
    [
        (
            {"multiValueHeaders": {"cloudfront-viewer-address": ["[2001:db8::1]:443"]}},
            "2001:db8::1",
        ),
        ({"multiValueHeaders": {"x-forwarded-for": ["6.6.6.6, 10.0.1.7"]}}, "10.0.1.7"),
        ({"multiValueHeaders": {}}, "unknown"),
        (
            {
                "version": "2.0",
                "headers": {"cloudfront-viewer-address": "6.6.6.6:1", "x-forwarded-for": "6.6.6.6"},
                "requestContext": {"http": {"sourceIp": "198.51.100.7"}},
            },
            "198.51.100.7",
        ),
        ({"version": "2.0", "headers": {}, "requestContext": {"http": {}}}, "unknown"),
    ],
    ids=["alb-viewer", "alb-forwarded", "alb-none", "http-api-source-ip", "http-api-none"],
)
def test_the_callers_address_is_never_what_the_caller_wrote_first(
    event: dict[str, Any], caller: str
) -> None:
    assert http_edge.caller_address(event) == caller


def test_a_body_over_64_kib_is_a_413_before_any_signature_work() -> None:
    big = order_json(metadata={"pad": "x" * 500}) + b" " * (64 * 1024)
    status, body, _ = call(signed_event(big))
    assert status == 413
    assert body["error"] == "payload_too_large"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/json; charset=latin-1", ""]
)
def test_a_non_json_content_type_is_a_415(content_type: str) -> None:
    status, body, _ = call(signed_event(order_json(), content_type=content_type))
    assert status == 415
    assert body["error"] == "unsupported_media_type"


def test_when_publishing_fails_the_client_is_told_to_retry_with_the_same_id(
    resources: Resources,
) -> None:
    boto3.client("sns").delete_topic(TopicArn=resources.topics["orders"])
    status, body, _ = call(signed_event(order_json(order_id="o-retry")))
    assert status == 503
    assert body["order_id"] == "o-retry"
    assert "retry" in body["reason"]


def test_client_secrets_are_cached_and_a_rotated_secret_works_after_refresh(
    resources: Resources,
) -> None:
    assert call(signed_event(order_json()))[0] == 202
    boto3.client("secretsmanager").put_secret_value(
        SecretId=resources.secrets["client-secrets"],
        SecretString=json.dumps({"dev": ["unit-test-secret", "rotated-in-secret-0001"]}),
    )
    rotated = "rotated-in-secret-0001"
    assert call(signed_event(order_json(), secret=rotated))[0] == 401, "still cached"
    parameters.clear_caches()  # what max_age does after 5 minutes
    assert call(signed_event(order_json(), secret=rotated))[0] == 202
    assert call(signed_event(order_json()))[0] == 202, "the old secret works during rotation"


@pytest.mark.parametrize(
    "table",
    [{"dev": "a-single-string-not-a-list"}, {"dev": ["short"]}, {"dev": None}, ["dev"]],
    ids=["string", "too-short", "null", "not-a-table"],
)
def test_malformed_secret_entries_authenticate_nobody(resources: Resources, table: object) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=resources.secrets["client-secrets"], SecretString=json.dumps(table)
    )
    parameters.clear_caches()
    for secret in ("a", "short", "a-single-string-not-a-list", "unit-test-secret"):
        assert call(signed_event(order_json(), secret=secret))[0] == 401


def test_when_client_secrets_cannot_be_read_the_client_is_told_to_retry(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIENT_SECRETS_ID", "no-such-secret")
    status, body, _ = call(signed_event(order_json()))
    assert status == 503
    assert body["error"] == "unavailable"
