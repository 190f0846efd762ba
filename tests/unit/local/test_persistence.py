"""The emulator's kept state: what is journaled, how a journal cut off mid-write or
damaged is read, the snapshot that replaces the journal, and the lock that lets a
snapshot take the state alone without waiting out a long poll."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import Client

from conveyor.local.persistence import (
    JOURNAL_PREFIX,
    SNAPSHOT,
    JournaledApp,
    Request,
    Restored,
    StateError,
    StateLock,
    Store,
    changes_state,
    read_journal,
    replayer,
)


@pytest.mark.parametrize(
    ("method", "headers", "body", "journaled"),
    [
        ("POST", {"x-amz-target": "DynamoDB_20120810.PutItem"}, b"{}", True),
        ("POST", {"x-amz-target": "DynamoDB_20120810.Query"}, b"{}", False),
        ("POST", {"x-amz-target": "DynamoDB_20120810.TransactGetItems"}, b"{}", False),
        ("POST", {"x-amz-target": "AmazonSQS.SendMessage"}, b"{}", True),
        ("POST", {"x-amz-target": "AmazonSQS.ReceiveMessage"}, b"{}", False),
        ("POST", {"x-amz-target": "AmazonSQS.DeleteMessageBatch"}, b"{}", False),
        ("POST", {"x-amz-target": "secretsmanager.PutSecretValue"}, b"{}", True),
        ("POST", {"x-amz-target": "secretsmanager.GetSecretValue"}, b"{}", False),
        (
            "POST",
            {"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
            b"Action=Publish&TopicArn=x",
            True,
        ),
        (
            "POST",
            {"content-type": "application/x-www-form-urlencoded"},
            b"Action=ListSubscriptions",
            False,
        ),
        ("PUT", {}, b"bytes", True),
        ("DELETE", {}, b"", True),
        ("GET", {}, b"", False),
        ("HEAD", {}, b"", False),
    ],
)
def test_what_changes_state_is_journaled_and_queue_traffic_is_not(
    method: str, headers: dict[str, str], body: bytes, journaled: bool
) -> None:
    assert changes_state(method, headers, body) is journaled


def request(n: int) -> Request:
    return Request("PUT", f"/bucket/key-{n}", "", [("host", "localhost")], b"x" * n)


def write(path: Path, *requests: Request, tail: bytes = b"") -> None:
    path.write_bytes(b"".join(r.encode() for r in requests) + tail)


def test_a_record_cut_off_at_the_end_is_dropped_and_counted(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    whole = request(3).encode()
    write(journal, request(1), request(2), tail=whole[:-2])
    read = read_journal(journal)
    assert read.requests == [request(1), request(2)]
    assert read.torn_bytes == len(whole) - 2


def test_damage_before_the_end_refuses_to_load(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    write(journal, request(1), request(2))
    data = bytearray(journal.read_bytes())
    data[12] ^= 0xFF  # inside the first record
    journal.write_bytes(bytes(data))
    with pytest.raises(StateError, match="damaged at byte 0"):
        read_journal(journal)


def test_a_shared_hold_keeps_a_snapshot_waiting_until_released() -> None:
    lock = StateLock()
    order: list[str] = []
    shared_in = threading.Event()
    let_go = threading.Event()

    def request_thread() -> None:
        with lock.shared():
            shared_in.set()
            let_go.wait(5)
            order.append("request done")

    def snapshot_thread() -> None:
        with lock.alone():
            order.append("snapshot")

    worker = threading.Thread(target=request_thread)
    worker.start()
    shared_in.wait(5)
    snapshot = threading.Thread(target=snapshot_thread)
    snapshot.start()
    snapshot.join(0.2)
    assert snapshot.is_alive(), "it waits for the request"
    let_go.set()
    worker.join(5)
    snapshot.join(5)
    assert order == ["request done", "snapshot"]


def test_a_long_poll_gives_its_share_back_while_it_waits() -> None:
    lock = StateLock()
    polling = threading.Event()
    snapshot_taken = threading.Event()

    def long_poll() -> None:
        with lock.shared(), lock.released():
            polling.set()
            snapshot_taken.wait(5)

    poller = threading.Thread(target=long_poll)
    poller.start()
    polling.wait(5)
    with lock.alone():
        snapshot_taken.set()
    poller.join(5)
    assert not poller.is_alive()


@pytest.fixture
def fresh_moto(aws_env: None) -> Iterator[None]:
    """moto's backends empty for the test, and emptied after it."""
    with mock_aws():
        yield


def moto_app() -> Any:
    return DomainDispatcherApplication(create_backend_app)


def call(app: Any, target: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A JSON-protocol call, as boto3 makes it."""
    response = Client(app).post(
        "/",
        data=json.dumps(payload),
        headers={
            "X-Amz-Target": target,
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/"
            "dynamodb/aws4_request, SignedHeaders=host, Signature=x",
        },
    )
    assert response.status_code < 400, response.get_data(as_text=True)
    answer: dict[str, Any] = json.loads(response.get_data() or b"{}")
    return answer


def dynamodb(app: Any, action: str, **payload: Any) -> dict[str, Any]:
    return call(app, f"DynamoDB_20120810.{action}", payload)


TABLE = {
    "TableName": "t",
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
}


def items(app: Any) -> list[str]:
    scanned = dynamodb(app, "Scan", TableName="t")["Items"]
    return sorted(item["id"]["S"] for item in scanned)


@pytest.mark.usefixtures("fresh_moto")
def test_the_state_comes_back_from_snapshot_and_journal_and_says_from_what(
    tmp_path: Path,
) -> None:
    from moto.backends import get_backend

    store = Store(tmp_path, StateLock())
    app = moto_app()
    assert store.load(replayer(app)).describe() == "empty"
    journaled = JournaledApp(app, store)
    dynamodb(journaled, "CreateTable", **TABLE)
    dynamodb(journaled, "PutItem", TableName="t", Item={"id": {"S": "before-snapshot"}})
    store.snapshot()
    assert (tmp_path / SNAPSHOT).exists()
    assert len(list(tmp_path.glob(f"{JOURNAL_PREFIX}*"))) == 1, "the journal so far is gone"
    dynamodb(journaled, "PutItem", TableName="t", Item={"id": {"S": "after-snapshot"}})
    dynamodb(journaled, "Scan", TableName="t")  # a read: not journaled
    assert store.appended == 1
    store.close()

    get_backend("dynamodb").clear()
    again = Store(tmp_path, StateLock())
    restored = again.load(replayer(moto_app()))
    assert restored.replayed == 1
    assert restored.snapshot_taken_at is not None
    assert time.time() - restored.snapshot_taken_at < 60
    assert items(moto_app()) == ["after-snapshot", "before-snapshot"]
    assert "1 request(s) replayed after it" in restored.describe()
    again.close()


@pytest.mark.usefixtures("fresh_moto")
def test_a_snapshot_that_cannot_be_read_refuses_to_load_and_says_so(tmp_path: Path) -> None:
    (tmp_path / SNAPSHOT).write_bytes(b"not a pickle")
    with pytest.raises(StateError, match="cannot be loaded"):
        Store(tmp_path, StateLock()).load(replayer(moto_app()))


def test_what_was_lost_to_a_write_cut_off_is_said() -> None:
    said = Restored(snapshot_taken_at=None, replayed=4, torn_bytes=17).describe()
    assert "4 request(s) replayed from the journal" in said
    assert "lost: the last request, cut off mid-write (17 bytes)" in said


@pytest.mark.usefixtures("fresh_moto")
def test_boto3_requests_through_the_journal_replay_to_the_same_objects(tmp_path: Path) -> None:
    """S3's REST calls, keys that need quoting included, journaled from real HTTP."""
    from moto.s3.models import s3_backends
    from werkzeug.serving import make_server

    store = Store(tmp_path, StateLock())
    app = moto_app()
    store.load(replayer(app))
    server = make_server("127.0.0.1", 0, JournaledApp(app, store), threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{server.server_address[1]}")
        s3.create_bucket(Bucket="kept")
        for key in ("plain.txt", "with space/ünïcode+plus.txt"):
            s3.put_object(Bucket="kept", Key=key, Body=key.encode())
        s3.delete_object(Bucket="kept", Key="plain.txt")
    finally:
        server.shutdown()
        store.close()
    s3_backends.clear()
    s3_backends.bucket_accounts.clear()
    Store(tmp_path, StateLock()).load(replayer(moto_app()))
    bucket = s3_backends["123456789012"]["global"].buckets["kept"]
    assert sorted(bucket.keys.keys()) == ["with space/ünïcode+plus.txt"]
    assert (
        bucket.keys["with space/ünïcode+plus.txt"].value == "with space/ünïcode+plus.txt".encode()
    )


@pytest.mark.usefixtures("fresh_moto")
def test_a_write_cut_off_is_said_once_and_the_next_start_loads_cleanly(tmp_path: Path) -> None:
    store = Store(tmp_path, StateLock())
    app = moto_app()
    store.load(replayer(app))
    dynamodb(JournaledApp(app, store), "CreateTable", **TABLE)
    store.close()
    journal = next(tmp_path.glob(f"{JOURNAL_PREFIX}*"))
    with journal.open("ab") as handle:
        handle.write(request(5).encode()[:-3])  # a kill in the middle of this write
    first = Store(tmp_path, StateLock())
    said = first.load(replayer(moto_app()))
    first.close()
    assert said.replayed == 1
    assert said.torn_bytes > 0
    again = Store(tmp_path, StateLock()).load(replayer(moto_app()))
    assert (again.replayed, again.torn_bytes) == (1, 0)
