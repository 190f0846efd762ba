"""A stack stopped cleanly starts again with everything it held: dead letters with their
receive counts, clients, secrets, tables and objects (the e2e tests stop one mid-traffic,
by Ctrl-C and by a kill)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.local.runtime import LocalRuntime, RuntimeOptions
from conveyor.local.traces import TRACES_FILE
from conveyor.ops import clients as documents
from conveyor.ops import traces
from conveyor.topology import ARCHIVE_BUCKET, CLIENT_SECRETS, ORDERS_TABLE
from tests.integration.conftest import eventually, local_runtime

pytestmark = pytest.mark.integration


def test_a_clean_stop_keeps_dead_letters_with_their_receive_counts_and_the_clients(
    tmp_path: Path,
) -> None:
    with local_runtime(tmp_path) as first:
        aws, resources = first.clients, first.info.resources
        sqs = aws("sqs")
        dlq = resources.queues["billing-dlq"]
        sqs.send_message(QueueUrl=dlq, MessageBody='{"kept": true}')
        for _ in range(2):  # received twice, handed back at once
            [message] = sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0)["Messages"]
        secret = documents.edit(
            aws("secretsmanager"),
            resources.secrets[CLIENT_SECRETS],
            lambda d: documents.add(d, "kept-client"),
        )
        aws("s3").put_object(Bucket=resources.buckets[ARCHIVE_BUCKET], Key="kept.json", Body=b"{}")
        with first.client() as http:
            traced = http.send_order(ORDER).headers["X-Trace-Id"]
        eventually(lambda: billed_trace(tmp_path, traced))
        aws("dynamodb").put_item(
            TableName=resources.tables[ORDERS_TABLE],
            Item={
                "client_id": {"S": "kept"},
                "order_id": {"S": "o-1"},
                "status": {"S": "accepted"},
            },
        )
    with local_runtime(tmp_path) as again:
        aws, resources = again.clients, again.info.resources
        assert "snapshot of" in again.restored
        [kept] = aws("sqs").receive_message(
            QueueUrl=resources.queues["billing-dlq"],
            AttributeNames=["ApproximateReceiveCount"],
            WaitTimeSeconds=1,
        )["Messages"]
        assert kept["MessageId"] == message["MessageId"]
        assert kept["Attributes"]["ApproximateReceiveCount"] == "3", "2 before the stop, and this"
        stored = documents.read(aws("secretsmanager"), resources.secrets[CLIENT_SECRETS])
        assert stored["kept-client"] == [secret]
        assert again.credentials.client_id in stored, "the dev client too"
        body = aws("s3").get_object(Bucket=resources.buckets[ARCHIVE_BUCKET], Key="kept.json")
        assert body["Body"].read() == b"{}"
        item = aws("dynamodb").get_item(
            TableName=resources.tables[ORDERS_TABLE],
            Key={"client_id": {"S": "kept"}, "order_id": {"S": "o-1"}},
        )
        assert item["Item"]["status"] == {"S": "accepted"}
        assert billed_trace(tmp_path, traced), "the traces are kept too"
    fresh = RuntimeOptions(state_dir=tmp_path, port=0, endpoint_url=None, fresh=True)
    with LocalRuntime(fresh):
        assert traces.traces_of(traces.load(tmp_path / TRACES_FILE), traced) == []


ORDER = {
    "order_id": "kept-order",
    "customer_id": "c",
    "currency": "EUR",
    "items": [{"sku": "A", "quantity": 1, "unit_price": "1.00"}],
}


def billed_trace(directory: Path, trace_id: str) -> bool:
    try:
        found = traces.find(directory / TRACES_FILE, trace_id)
    except traces.TraceNotFoundError:
        return False
    return any(hop.name.endswith("billing process") for hop in found.hops)
