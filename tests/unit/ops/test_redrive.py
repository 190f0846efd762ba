"""Listing dead letters with their reasons, and moving them back without loss or duplicates."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from conveyor.ops.redrive import REDRIVEN_FROM, QueuePair, dead_letters, redrive

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    with mock_aws():
        sqs = boto3.client("sqs")
        found = {}
        for name in ("source", "dlq"):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            found[name] = url
            found[f"{name}_arn"] = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
        yield found


def fill(dlq: str, count: int) -> list[str]:
    sqs = boto3.client("sqs")
    ids = []
    for n in range(count):
        ids.append(
            sqs.send_message(
                QueueUrl=dlq,
                MessageBody=json.dumps({"order_id": f"o-{n}"}),
                MessageAttributes={
                    "correlation_id": {"DataType": "String", "StringValue": f"c{n}"},
                    "failure_reason": {"DataType": "String", "StringValue": "bad"},
                },
            )["MessageId"]
        )
    return ids


def drain(url: str) -> list[MessageTypeDef]:
    sqs = boto3.client("sqs")
    found: list[MessageTypeDef] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        found += batch
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def move(queues: dict[str, str], tmp_path: Path, sqs: Any = None, **options: Any) -> Any:
    pair = QueuePair(
        name="source",
        source_url=queues["source"],
        source_arn=queues["source_arn"],
        dlq_url=queues["dlq"],
        dlq_arn=queues["dlq_arn"],
    )
    return redrive(sqs or boto3.client("sqs"), pair, tmp_path, **options)


def test_dead_letters_show_receive_counts_and_the_last_error(
    queues: dict[str, str], tmp_path: Path
) -> None:
    sqs = boto3.client("sqs")
    with_reason = fill(queues["dlq"], 1)[0]
    silent = sqs.send_message(QueueUrl=queues["dlq"], MessageBody=json.dumps({"order_id": "o-x"}))[
        "MessageId"
    ]
    crashed = sqs.send_message(QueueUrl=queues["dlq"], MessageBody="{}")["MessageId"]
    timed_out = sqs.send_message(QueueUrl=queues["dlq"], MessageBody="{}")["MessageId"]
    log = tmp_path / "billing.log"
    log.write_text(
        "\n".join(
            json.dumps(e)
            for e in [
                {
                    "message": "record failed",
                    "message_id": silent,
                    "error": "old",
                    "timestamp": "2026-01-01T00:00:00",
                },
                {
                    "message": "record failed",
                    "message_id": silent,
                    "error": "ThrottlingException",
                    "timestamp": "2026-01-01T00:00:05",
                },
                {  # the functions' own lines, all there is in CloudWatch
                    "message": "batch started",
                    "service": "billing",
                    "message_ids": [silent, timed_out],
                    "timestamp": "2026-01-01T00:00:04",
                },
                {
                    "message": "batch failed",
                    "message_ids": [crashed],
                    "function": "billing",
                    "error_type": "WorkerDied",
                    "error": "the worker process died",
                    "timestamp": "2026-01-01T00:00:06",
                },
            ]
        )
        + "\nTraceback (not json)\n"
    )
    letters = {d.message_id: d for d in dead_letters(sqs, queues["dlq"], [log])}
    assert letters[with_reason].reason == "bad"
    assert letters[silent].reason == "ThrottlingException"
    assert letters[silent].subject == "order o-x"
    assert "WorkerDied" in letters[crashed].reason
    assert letters[timed_out].reason == (
        "billing: the invocation that received it last ended without a result "
        "(a timeout or a crash)"
    )
    assert {d.receive_count for d in letters.values()} == {0}, "never received before"
    again = dead_letters(sqs, queues["dlq"], [log])
    assert len(again) == 4, "listing leaves every message in place"
    assert {d.receive_count for d in again} == {1}, "the first look counted; this one not"


def test_the_emulator_path_moves_everything_back_with_clean_attributes(
    queues: dict[str, str], tmp_path: Path
) -> None:
    ids = fill(queues["dlq"], 23)
    result = move(queues, tmp_path)
    assert result.method == "receive, send, delete"
    assert result.moved == 23
    assert drain(queues["dlq"]) == []
    moved = drain(queues["source"])
    assert sorted(m["MessageAttributes"][REDRIVEN_FROM]["StringValue"] for m in moved) == sorted(
        ids
    )
    assert all("failure_reason" not in m["MessageAttributes"] for m in moved)
    assert {m["MessageAttributes"]["correlation_id"]["StringValue"] for m in moved} == {
        f"c{n}" for n in range(23)
    }


def test_max_moves_only_that_many(queues: dict[str, str], tmp_path: Path) -> None:
    fill(queues["dlq"], 15)
    assert move(queues, tmp_path, max_messages=4).moved == 4
    assert len(drain(queues["source"])) == 4
    assert len(drain(queues["dlq"])) == 11


def test_an_interrupted_run_neither_loses_nor_duplicates(
    queues: dict[str, str], tmp_path: Path
) -> None:
    fill(queues["dlq"], 12)
    real = boto3.client("sqs")

    class DiesAfterTheThirdSend:
        """Stops the process between a send and its delete, like a kill -9 would."""

        def __init__(self) -> None:
            self.sends = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def delete_message(self, **kwargs: Any) -> Any:
            if self.sends == 3:
                raise KeyboardInterrupt
            return real.delete_message(**kwargs)

        def send_message(self, **kwargs: Any) -> Any:
            self.sends += 1
            return real.send_message(**kwargs)

    with pytest.raises(KeyboardInterrupt):
        move(queues, tmp_path, sqs=DiesAfterTheThirdSend(), hide_for_s=1)
    time.sleep(1.2)  # the interrupted message becomes visible in the DLQ again
    result = move(queues, tmp_path, hide_for_s=1)
    assert result.finished_interrupted == 1
    assert result.moved == 9
    bodies = Counter(m["Body"] for m in drain(queues["source"]))
    assert len(bodies) == 12
    assert set(bodies.values()) == {1}, "each message exactly once"
    assert drain(queues["dlq"]) == []


def test_ctrl_c_finishes_the_current_message_and_leaves_the_rest(
    queues: dict[str, str], tmp_path: Path
) -> None:
    fill(queues["dlq"], 8)
    real, stop = boto3.client("sqs"), threading.Event()

    class StopAfterTwo:
        def __init__(self) -> None:
            self.sends = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def send_message(self, **kwargs: Any) -> Any:
            self.sends += 1
            if self.sends == 2:
                stop.set()
            return real.send_message(**kwargs)

    result = move(queues, tmp_path, sqs=StopAfterTwo(), stop=stop)
    assert (result.moved, result.stopped_early) == (2, True)
    assert len(drain(queues["source"])) == 2
    assert len(drain(queues["dlq"])) == 6, "the rest is visible again at once"


class RejectsEverything:
    """SQS with a consumer on the source queue that fails every message at once: odd ones
    through the queue's redrive policy (the message keeps its id), even ones by
    dead-lettering them itself (a new message naming the one it received), as billing
    does with a malformed order. That cycle made one run move two dead letters 542 times."""

    def __init__(self, queues: dict[str, str]) -> None:
        self.real = boto3.client("sqs")
        self.queues = queues
        self.sends = 0
        policy = {"deadLetterTargetArn": queues["dlq_arn"], "maxReceiveCount": 1}
        self.real.set_queue_attributes(
            QueueUrl=queues["source"], Attributes={"RedrivePolicy": json.dumps(policy)}
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def send_message(self, **request: Any) -> Any:
        sent = self.real.send_message(**request)
        if request["QueueUrl"] != self.queues["source"]:
            return sent
        self.sends += 1
        source = self.queues["source"]
        [received] = self.real.receive_message(QueueUrl=source, VisibilityTimeout=0)["Messages"]
        if self.sends % 2:
            # received once, so the next receive moves it to the DLQ under the same id
            assert self.real.receive_message(QueueUrl=source).get("Messages", []) == []
        else:
            self.real.delete_message(QueueUrl=source, ReceiptHandle=received["ReceiptHandle"])
            self.real.send_message(
                QueueUrl=self.queues["dlq"],
                MessageBody=received["Body"],
                MessageAttributes={
                    "source_message_id": {
                        "DataType": "String",
                        "StringValue": received["MessageId"],
                    }
                },
            )
        return sent


def test_a_run_moves_each_dead_letter_once_even_when_every_one_fails_again(
    queues: dict[str, str], tmp_path: Path
) -> None:
    fill(queues["dlq"], 2)
    result = move(queues, tmp_path, sqs=RejectsEverything(queues))
    assert result.moved == 2, "each dead letter moved once, not until the queue is empty"
    assert result.failed_again == 2, "both came back during the run, and are counted"
    assert len(drain(queues["dlq"])) == 2, "what failed again is left in the DLQ, visible"
