"""The orders pipeline over real HTTP against the emulator, through the local runtime."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conveyor.aws import orders_table
from conveyor.client import ConveyorClient
from conveyor.core.orders import AcceptedOrder, Order, accept
from conveyor.infra.layers import runtime_requirements
from conveyor.local.mapping import sqs_event
from conveyor.local.runtime import LocalRuntime, Started
from conveyor.local.state import EmulatorClients
from conveyor.local.status import read_status
from conveyor.ops.redrive import dead_letters, peek
from conveyor.topology import LAMBDA_PYTHON, TOPOLOGY, Profile
from tests.integration.conftest import (
    DEAD_LETTER_WAIT_S,
    eventually,
    faulty_stack_receives,
    log_lines,
)
from tests.tables import orders_of_customer

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

pytestmark = pytest.mark.integration


def new_order(**fields: Any) -> dict[str, Any]:
    return {
        "order_id": f"it-{uuid.uuid4().hex[:12]}",
        "customer_id": "cust-it",
        "currency": "EUR",
        "items": [{"sku": "KB-1", "quantity": 3, "unit_price": "10.10"}],
        **fields,
    }


def accepted(order: dict[str, Any], correlation_id: str) -> AcceptedOrder:
    """The order as the publisher would put it on the topic for the dev client."""
    return accept(
        Order.model_validate_json(json.dumps(order)),
        order_id="-",
        client_id="dev",
        correlation_id=correlation_id,
        now=datetime.now(UTC),
    )


def billed(
    stack: Started, aws: EmulatorClients, order_id: str, client_id: str = "dev"
) -> dict[str, Any] | None:
    table = stack.info.resources.tables["orders"]
    item = orders_table.get(aws("dynamodb"), table, client_id, order_id)
    return item if item and item["status"] == orders_table.STATUS_BILLED else None


def archived_versions(stack: Started, aws: EmulatorClients, order_id: str) -> list[Any]:
    response = aws("s3").list_object_versions(
        Bucket=stack.info.resources.buckets["archive"], Prefix="archive/orders/"
    )
    return [v for v in response.get("Versions", []) if v["Key"].endswith(f"/{order_id}.json")]


def drained(stack: Started, aws: EmulatorClients) -> bool:
    return read_status(aws, stack.info.resources, TOPOLOGY).pending == 0


def test_a_signed_order_is_billed_once_and_archived_once(
    stack: Started, aws: EmulatorClients, client: ConveyorClient
) -> None:
    order = new_order()
    response = client.send_order(order, headers={"X-Request-Id": "it-trace-1"})
    assert response.status_code == 202, response.text
    assert response.json() == {"order_id": order["order_id"], "status": "accepted"}

    item = eventually(lambda: billed(stack, aws, order["order_id"]))
    assert str(item["total"]) == "30.30"
    assert item["correlation_id"] == "it-trace-1"
    [version] = eventually(lambda: archived_versions(stack, aws, order["order_id"]))
    assert version["Key"].startswith(f"archive/orders/dev/{datetime.now(UTC):%Y/%m/}")
    eventually(lambda: drained(stack, aws))
    assert len(archived_versions(stack, aws, order["order_id"])) == 1


def test_an_identical_resubmission_gets_the_first_answer_replayed_and_is_published_once(
    stack: Started, aws: EmulatorClients, client: ConveyorClient
) -> None:
    order = new_order()
    first = client.send_order(order)
    assert first.status_code == 202
    assert "Idempotent-Replayed" not in first.headers
    again = client.send_order(order)
    assert (again.status_code, again.json()) == (202, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    eventually(lambda: billed(stack, aws, order["order_id"]))
    eventually(lambda: drained(stack, aws))
    accepted = [
        line
        for line in log_lines(stack, "publisher")
        if line.get("order_id") == order["order_id"] and line["message"] == "order accepted"
    ]
    assert len(accepted) == 1, "published once"
    assert len(archived_versions(stack, aws, order["order_id"])) == 1


def test_a_redelivered_sqs_message_does_not_bill_twice(
    stack: Started, aws: EmulatorClients
) -> None:
    message = accepted(new_order(), correlation_id="redelivery")
    queue = stack.info.resources.queues["billing"]
    for _ in range(2):  # the same message, delivered twice
        aws("sqs").send_message(QueueUrl=queue, MessageBody=message.model_dump_json())
    first = eventually(lambda: billed(stack, aws, message.order_id))
    eventually(lambda: drained(stack, aws))
    assert billed(stack, aws, message.order_id) == first
    dynamodb = aws("dynamodb")
    assert (
        orders_of_customer(
            dynamodb, stack.info.resources.tables["orders"], "cust-it", limit=100
        ).count(first)
        == 1
    )


def test_the_gateway_answers_bad_requests_with_json_reasons(client: ConveyorClient) -> None:
    unsigned = client.request("POST", "/orders", json.dumps(new_order()).encode(), signed=False)
    assert (unsigned.status_code, unsigned.json()["error"]) == (401, "unauthorized")
    invalid = client.send_order(new_order(currency="XYZ"))
    assert invalid.status_code == 400
    assert invalid.json()["fields"][0]["field"] == "currency"
    assert client.request("GET", "/orders").status_code == 405
    assert client.request("GET", "/elsewhere").json()["error"] == "not_found"


def test_a_request_for_no_route_is_the_same_json_404_behind_either_edge(
    stack: Started, client: ConveyorClient
) -> None:
    answer = client.request("POST", "/elsewhere/x", b"{}")
    assert answer.status_code == 404
    assert answer.json() == {"error": "not_found", "reason": "no such route"}
    if stack.profile is Profile.PRIVATE:
        return  # the load balancer's fixed response
    # The HTTP API's $default route: the catch-all function answered, under its own id.
    request_id = answer.headers["X-Request-Id"]
    refused = eventually(
        lambda: [
            e
            for e in log_lines(stack, str(TOPOLOGY.catch_all))
            if e.get("correlation_id") == request_id and e["message"] == "request refused"
        ]
    )
    assert refused[0]["status"] == 404


def test_one_raising_message_fails_alone_and_ends_in_the_dlq_with_its_reason(
    faulty_stack: Started,
) -> None:
    """Whatever batches the ten messages arrive in (neither SQS nor Lambda promises one
    batch of ten), the poisoned one fails on its own and every other one is billed once."""
    resources = faulty_stack.info.resources
    aws = faulty_stack.clients
    orders = [new_order(customer_id="poison" if n == 6 else "cust-batch") for n in range(10)]
    entries: list[SendMessageBatchRequestEntryTypeDef] = [
        {
            "Id": str(n),
            "MessageBody": accepted(o, correlation_id=f"c{n}").model_dump_json(),
        }
        for n, o in enumerate(orders)
    ]
    aws("sqs").send_message_batch(QueueUrl=resources.queues["billing"], Entries=entries)

    dlq = resources.queues["billing-dlq"]
    [dead] = eventually(lambda: peek(aws("sqs"), dlq), timeout_s=DEAD_LETTER_WAIT_S)
    assert json.loads(dead["Body"])["customer_id"] == "poison"
    [letter] = dead_letters(aws("sqs"), dlq, [faulty_stack.logs_dir / "billing.log"])
    assert letter.reason == "RuntimeError: poisoned order"

    good = [o["order_id"] for o in orders if o["customer_id"] != "poison"]
    eventually(lambda: all(billed(faulty_stack, aws, order_id) for order_id in good))
    eventually(lambda: drained(faulty_stack, aws))
    assert billed(faulty_stack, aws, orders[6]["order_id"]) is None
    lines = log_lines(faulty_stack, "billing")
    billings = Counter(line["order_id"] for line in lines if line.get("message") == "order billed")
    assert billings == dict.fromkeys(good, 1), "each good order billed exactly once"
    failed = [line for line in lines if line.get("message") == "record failed"]
    assert {line["message_id"] for line in failed} == {letter.message_id}, "it failed alone"
    attempts = [int(line["poisoned_attempt"]) for line in lines if "poisoned_attempt" in line]
    allowed = faulty_stack_receives("billing")
    assert attempts == list(range(1, allowed + 1)), "every receive, then the redrive policy"


def test_duplicates_of_one_order_in_concurrent_invocations_are_billed_once(
    stack: Started, aws: EmulatorClients, runtime: LocalRuntime
) -> None:
    """SQS may deliver a message twice, and Lambda may hand the copies to two invocations
    running at once: the conditional write lets one bill it and tells the other."""
    order = accepted(new_order(), correlation_id="concurrent-duplicates")
    copies = [
        sqs_event(
            [
                {
                    "MessageId": f"copy-{n}-{uuid.uuid4().hex[:6]}",
                    "ReceiptHandle": "-",
                    "Body": order.model_dump_json(),
                    "MD5OfBody": "-",
                    "Attributes": {"ApproximateReceiveCount": "1"},
                }
            ],
            "arn:aws:sqs:us-east-1:000000000000:billing",
            "us-east-1",
        )
        for n in range(2)
    ]
    billing = runtime.pools["billing"]
    assert billing.function.concurrency == 2, "two workers: the copies run at once"
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(billing.invoke, copies))
    assert [o.result for o in outcomes] == [{"batchItemFailures": []}] * 2
    messages = [
        line["message"]
        for line in log_lines(stack, "billing")
        if line.get("order_id") == order.order_id
    ]
    assert sorted(messages) == ["order already billed; duplicate delivery", "order billed"]
    assert billed(stack, aws, order.order_id)


def test_the_functions_run_on_lambdas_python_with_only_the_layers_packages(
    stack: Started, runtime: LocalRuntime
) -> None:
    # `make lambda-python` prepares it; the tests hold the local stack to Lambda's runtime.
    assert stack.interpreter.deployed, stack.interpreter.describe()
    for pool in runtime.pools.values():
        for pid in pool.pids():
            executable = Path(f"/proc/{pid}/exe").resolve().name
            assert executable == f"python{LAMBDA_PYTHON}", (pool.function.name, executable)
    packages = subprocess.run(
        [stack.interpreter.path, "-m", "pip", "list", "--format=freeze", "--exclude", "pip"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    installed = {p.lower().replace("_", "-") for p in packages}
    # What the layers pin (and boto3) plus only what those pull in: nothing of the host's.
    assert set(runtime_requirements()) <= installed
    assert not {"moto", "pytest", "requests", "typer"} & {p.split("==")[0] for p in installed}
