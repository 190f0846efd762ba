"""In-process AWS (moto's mock) provisioned from the real topology, for function tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from moto.secretsmanager.models import SecretsManagerBackend

from conveyor.aws import clients
from conveyor.core.signing import sign
from conveyor.local.edges import EDGES, Edge, HttpResponse, Request
from conveyor.local.emulator import behave_as_aws
from conveyor.local.mapping import sqs_event
from conveyor.local.provision import Provisioner, Resources
from conveyor.local.workers import Invocation, LambdaContext
from conveyor.topology import DEFAULT_PROFILE, TOPOLOGY, HttpRoute, Profile

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

CLIENT_SECRET = "unit-test-secret"


@pytest.fixture
def aws_faithful(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto answering as AWS does where the local emulator is made to
    (:func:`conveyor.local.emulator.behave_as_aws`), undone after the test."""
    for name in ("update_secret_version_stage", "put_secret_value"):
        monkeypatch.setattr(SecretsManagerBackend, name, getattr(SecretsManagerBackend, name))
    behave_as_aws()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and a region for moto, and no endpoint of a real emulator."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def resources(aws_env: None, aws_faithful: None) -> Iterator[Resources]:
    """Every topology resource in moto's in-process mock, and each grant's env var set."""
    with mock_aws():
        clients.clear_cache()
        parameters.clear_caches()
        provisioned = Provisioner(TOPOLOGY, clients.client).run(client_secret=CLIENT_SECRET)
        yield provisioned
    clients.clear_cache()
    parameters.clear_caches()


def use_function_env(monkeypatch: pytest.MonkeyPatch, resources: Resources, name: str) -> None:
    """The function's environment as the deployment sets it: grants and settings."""
    function = TOPOLOGY.function(name)
    for grant in function.grants:
        if grant.env:
            monkeypatch.setenv(grant.env, resources.identifier(grant.kind, grant.resource))
    for setting, value in TOPOLOGY.settings(function).items():
        monkeypatch.setenv(setting, value)


def context(name: str = "test") -> Any:
    """A stand-in for Lambda's context object (typed Any: handlers declare Powertools' type)."""
    return LambdaContext(
        name,
        256,
        f"arn:aws:lambda:us-east-1:1:function:{name}",
        "req-1",
        deadline=time.monotonic() + 10,
    )


_EDGE: list[Edge] = [EDGES[DEFAULT_PROFILE]]
"""The edge whose events the helpers below build: the default profile's, or the one the
``edge`` fixture chose for the test."""


@pytest.fixture(params=list(Profile), ids=str)
def edge(request: pytest.FixtureRequest) -> Iterator[Edge]:
    """Run the test once per deploy profile, on the events of that profile's edge."""
    chosen = EDGES[request.param]
    _EDGE.append(chosen)
    yield chosen
    _EDGE.pop()


def http_event(
    method: str, path: str, headers: dict[str, str], body: bytes, client_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """The event the current edge sends a function for this request."""
    route = HttpRoute("/" + path.lstrip("/").split("/", 1)[0].split("?", 1)[0])
    return _EDGE[-1].event(Request(method, path, headers, body, client_ip), route)


def set_header(event: dict[str, Any], name: str, value: str | None) -> None:
    """Set (or with None, remove) one request header in an event of either shape."""
    key = name.lower()
    if "multiValueHeaders" in event:
        event["multiValueHeaders"].pop(key, None)
        if value is not None:
            event["multiValueHeaders"][key] = [value]
    else:
        event["headers"].pop(key, None)
        if value is not None:
            event["headers"][key] = value


def answer_of(response: dict[str, Any]) -> HttpResponse:
    """A function's answer as the current edge hands it to the caller."""
    return _EDGE[-1].response(Invocation(result=response))


def signed_event(
    body: bytes,
    *,
    method: str = "POST",
    path: str = "/orders",
    content_type: str = "application/json",
    secret: str = CLIENT_SECRET,
    client_id: str = "dev",
    at: float | None = None,
    extra: dict[str, str] | None = None,
    client_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    headers = {"content-type": content_type, **(extra or {})}
    headers.update(sign(client_id, secret, method, path, body, time.time() if at is None else at))
    return http_event(method, path, headers, body, client_ip)


def sqs_records(bodies: list[str], attributes: dict[str, str] | None = None) -> dict[str, Any]:
    messages = [
        {
            "MessageId": f"msg-{n}",
            "ReceiptHandle": f"rh-{n}",
            "Body": body,
            "Attributes": {"ApproximateReceiveCount": "1"},
            "MessageAttributes": {
                k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()
            },
        }
        for n, body in enumerate(bodies)
    ]
    return sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:conveyor-billing", "us-east-1")


def drain(queue_url: str) -> list[MessageTypeDef]:
    sqs = boto3.client("sqs")
    found: list[MessageTypeDef] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return found
        found.extend(batch)
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def order_json(**overrides: Any) -> bytes:
    order = {
        "customer_id": "cust-1",
        "currency": "EUR",
        "items": [{"sku": "KB-1", "quantity": 2, "unit_price": "19.95"}],
        **overrides,
    }
    return json.dumps(order).encode()


def modules_loaded_by(module: str) -> list[str]:
    """Every module a fresh interpreter has loaded after importing ``module``: what a
    cold start of that function pays for."""
    return subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print(*sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
