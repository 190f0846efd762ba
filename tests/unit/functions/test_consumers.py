"""The billing and archive functions on SQS batches, with AWS mocked in process."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from conveyor.aws import orders_table
from conveyor.aws.dynamo import count_in_status
from conveyor.core.orders import Order, accept
from conveyor.functions import archive, billing
from conveyor.functions.consumer import FAILURE_REASON
from conveyor.local.provision import Resources
from tests.tables import orders_of_customer
from tests.unit.conftest import (
    context,
    drain,
    modules_loaded_by,
    order_json,
    sqs_records,
    use_function_env,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def accepted_json(order_id: str, customer: str = "cust-1", day: int = 5, **fields: object) -> str:
    order = Order.model_validate_json(order_json(order_id=order_id, customer_id=customer, **fields))
    return accept(
        order,
        order_id="unused",
        client_id="dev",
        correlation_id=f"corr-{order_id}",
        now=datetime(2026, 11, day, 12, 0, tzinfo=UTC),
    ).model_dump_json()


@pytest.fixture
def billing_env(resources: Resources, monkeypatch: pytest.MonkeyPatch) -> Resources:
    use_function_env(monkeypatch, resources, "billing")
    return resources


@pytest.fixture
def archive_env(resources: Resources, monkeypatch: pytest.MonkeyPatch) -> Resources:
    use_function_env(monkeypatch, resources, "archive")
    return resources


def test_billing_records_each_order_with_an_exact_total(billing_env: Resources) -> None:
    body = accepted_json("o-1", items=[{"sku": "A", "quantity": 3, "unit_price": "0.10"}])
    assert billing.handler(sqs_records([body]), context()) == {"batchItemFailures": []}
    item = orders_table.get(boto3.client("dynamodb"), billing_env.tables["orders"], "dev", "o-1")
    assert item is not None
    assert item["total"] == Decimal("0.30")
    assert item["status"] == "billed"
    assert item["correlation_id"] == "corr-o-1"


def test_a_redelivered_order_is_billed_once(billing_env: Resources) -> None:
    dynamodb, table = boto3.client("dynamodb"), billing_env.tables["orders"]
    billing.handler(sqs_records([accepted_json("o-dup")]), context())
    first = orders_table.get(dynamodb, table, "dev", "o-dup")
    response = billing.handler(
        sqs_records([accepted_json("o-dup"), accepted_json("o-dup")]), context()
    )
    assert response == {"batchItemFailures": []}
    assert orders_table.get(dynamodb, table, "dev", "o-dup") == first, "billed_at is not rewritten"
    assert count_in_status(dynamodb, table, "billed") == 1


def test_a_malformed_message_goes_to_the_dlq_with_its_reason_without_retries(
    billing_env: Resources,
) -> None:
    batch = sqs_records(
        [accepted_json("o-good"), '{"not": "an order"}'],
        # A redriven message still carries its earlier failure; the new one replaces it.
        attributes={"correlation_id": "c-9", "failure_reason": "an earlier failure"},
    )
    assert billing.handler(batch, context()) == {"batchItemFailures": []}
    [dead] = drain(billing_env.queues["billing-dlq"])
    assert dead["Body"] == '{"not": "an order"}'
    reason = dead["MessageAttributes"][FAILURE_REASON]["StringValue"]
    assert reason.startswith("invalid order message: ")
    assert "order_id: Field required" in reason, "it names each field and what failed"
    assert "items: Field required" in reason
    assert dead["MessageAttributes"]["correlation_id"]["StringValue"] == "c-9"
    failed_at = datetime.fromisoformat(dead["MessageAttributes"]["failed_at"]["StringValue"])
    assert abs((datetime.now(UTC) - failed_at).total_seconds()) < 60
    assert orders_table.get(boto3.client("dynamodb"), billing_env.tables["orders"], "dev", "o-good")


def test_a_transient_failure_is_reported_for_retry_alone(
    billing_env: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put = orders_table.record_billed

    def throttled_for_o2(
        dynamodb: DynamoDBClient, table: str, item: dict[str, Any]
    ) -> orders_table.Written:
        if item["order_id"] == "o-2":
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "PutItem")
        return real_put(dynamodb, table, item)

    monkeypatch.setattr(orders_table, "record_billed", throttled_for_o2)
    response = billing.handler(sqs_records([accepted_json("o-1"), accepted_json("o-2")]), context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}


def test_when_every_record_fails_the_invocation_fails_so_the_batch_is_retried(
    billing_env: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_TABLE", "no-such-table")
    with pytest.raises(BatchProcessingError):
        billing.handler(sqs_records([accepted_json("o-1"), accepted_json("o-2")]), context())


def test_the_table_serves_a_customers_orders_newest_first(billing_env: Resources) -> None:
    bodies = [accepted_json(f"o-{day}", customer="cust-7", day=day) for day in (3, 9, 6)]
    bodies.append(accepted_json("o-other", customer="cust-8"))
    billing.handler(sqs_records(bodies), context())
    found = orders_of_customer(boto3.client("dynamodb"), billing_env.tables["orders"], "cust-7")
    assert [o["order_id"] for o in found] == ["o-9", "o-6", "o-3"]


def test_archive_writes_the_order_once_under_its_dated_key_encrypted(
    archive_env: Resources,
) -> None:
    s3, bucket = boto3.client("s3"), archive_env.buckets["archive"]
    body = accepted_json("o-arch", day=7)
    assert archive.handler(sqs_records([body]), context()) == {"batchItemFailures": []}
    archive.handler(sqs_records([body]), context())  # redelivered
    key = "archive/orders/dev/2026/11/07/o-arch.json"
    stored = s3.get_object(Bucket=bucket, Key=key)
    assert json.loads(stored["Body"].read()) == json.loads(body)
    assert stored["ServerSideEncryption"] == "AES256"
    assert stored["Metadata"]["correlation-id"] == "corr-o-arch"
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    assert len(versions) == 1, "a redelivery adds no version"


def test_archive_failures_are_reported_and_malformed_messages_dead_lettered(
    archive_env: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = archive.handler(sqs_records(["[]"]), context())
    assert response == {"batchItemFailures": []}
    assert len(drain(archive_env.queues["archive-dlq"])) == 1
    monkeypatch.setenv("ARCHIVE_BUCKET", "no-such-bucket")
    with pytest.raises(BatchProcessingError, match="All records failed"):
        archive.handler(sqs_records([accepted_json("o-x")]), context())


@pytest.mark.parametrize("module", ["conveyor.functions.billing", "conveyor.functions.archive"])
def test_consumers_cold_start_without_powertools_parser_models(module: str) -> None:
    # Powertools' batch utility builds every one of its parser models at import when
    # pydantic is already loaded (+0.2x a bare boto3 import); the consumers must load
    # it before anything loads pydantic.
    loaded = modules_loaded_by(module)
    assert module in loaded
    assert "aws_lambda_powertools.utilities.batch" in loaded
    assert "pydantic" in loaded
    assert not [
        name for name in loaded if name.startswith("aws_lambda_powertools.utilities.parser")
    ]


def test_billing_dead_letters_another_order_under_a_billed_key_instead_of_dropping_it(
    billing_env: Resources,
) -> None:
    dynamodb, table = boto3.client("dynamodb"), billing_env.tables["orders"]
    billing.handler(sqs_records([accepted_json("o-same")]), context())
    first = orders_table.get(dynamodb, table, "dev", "o-same")
    other = accepted_json("o-same", items=[{"sku": "Z", "quantity": 200, "unit_price": "999.99"}])
    assert billing.handler(sqs_records([other]), context()) == {"batchItemFailures": []}
    [dead] = drain(billing_env.queues["billing-dlq"])
    assert dead["MessageAttributes"][FAILURE_REASON]["StringValue"] == "conflicting_duplicate"
    assert json.loads(dead["Body"]) == json.loads(other)
    assert orders_table.get(dynamodb, table, "dev", "o-same") == first, "the bill stands"


def test_the_same_order_id_from_two_clients_is_two_orders(billing_env: Resources) -> None:
    dynamodb, table = boto3.client("dynamodb"), billing_env.tables["orders"]
    mine = accepted_json("o-shared")
    theirs = json.dumps({**json.loads(mine), "client_id": "other-shop"})
    assert billing.handler(sqs_records([mine, theirs]), context()) == {"batchItemFailures": []}
    assert orders_table.get(dynamodb, table, "dev", "o-shared")
    assert orders_table.get(dynamodb, table, "other-shop", "o-shared")
    assert drain(billing_env.queues["billing-dlq"]) == []


def test_archive_dead_letters_another_order_under_an_archived_key(archive_env: Resources) -> None:
    archive.handler(sqs_records([accepted_json("o-arc2", day=8)]), context())
    other = accepted_json("o-arc2", day=8, customer="someone-else")
    assert archive.handler(sqs_records([other]), context()) == {"batchItemFailures": []}
    [dead] = drain(archive_env.queues["archive-dlq"])
    assert dead["MessageAttributes"][FAILURE_REASON]["StringValue"] == "conflicting_duplicate"
