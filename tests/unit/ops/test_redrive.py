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

from conveyor.ops.redrive import MoveProgress, QueuePair, dead_letters, redrive

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


def consumer_view(messages: list[MessageTypeDef]) -> list[tuple[str, dict[str, Any]]]:
    """What a consumer of the source queue sees of each message, ids aside."""
    return sorted(
        (m["Body"], {k: v.get("StringValue") for k, v in m["MessageAttributes"].items()})
        for m in messages
    )


class MoveTaskStandIn:
    """SQS whose StartMessageMoveTask works as the API reference says: a task per DLQ that
    moves every message present when it started (body and attributes kept, new ids), at
    most ``MaxNumberOfMessagesPerSecond`` a step here, and reports itself through
    ListMessageMoveTasks (newest first) as RUNNING, then COMPLETED."""

    def __init__(self, queues: dict[str, str]) -> None:
        self.real = boto3.client("sqs")
        self.urls = {queues["dlq_arn"]: queues["dlq"], queues["source_arn"]: queues["source"]}
        self.tasks: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def start_message_move_task(self, **request: Any) -> dict[str, str]:
        waiting = int(
            self.real.get_queue_attributes(
                QueueUrl=self.urls[request["SourceArn"]],
                AttributeNames=["ApproximateNumberOfMessages"],
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        self.tasks.insert(0, {**request, "Status": "RUNNING", "moved": 0, "to_move": waiting})
        return {"TaskHandle": f"handle-{len(self.tasks)}"}

    def list_message_move_tasks(self, SourceArn: str, MaxResults: int) -> dict[str, Any]:
        task = self.tasks[0]
        if task["Status"] == "RUNNING":
            step = int(task.get("MaxNumberOfMessagesPerSecond", 500))
            for message in self.real.receive_message(
                QueueUrl=self.urls[SourceArn],
                MaxNumberOfMessages=min(10, step),
                MessageAttributeNames=["All"],
            ).get("Messages", []):
                self.real.send_message(
                    QueueUrl=self.urls[task["DestinationArn"]],
                    MessageBody=message["Body"],
                    MessageAttributes={
                        k: {"DataType": v["DataType"], "StringValue": v["StringValue"]}
                        for k, v in message.get("MessageAttributes", {}).items()
                    },
                )
                self.real.delete_message(
                    QueueUrl=self.urls[SourceArn], ReceiptHandle=message["ReceiptHandle"]
                )
                task["moved"] += 1
            if task["moved"] >= task["to_move"]:
                task["Status"] = "COMPLETED"
        result = {
            "Status": task["Status"],
            "SourceArn": SourceArn,
            "ApproximateNumberOfMessagesMoved": task["moved"],
            "ApproximateNumberOfMessagesToMove": task["to_move"],
        }
        return {"Results": [result][:MaxResults]}


def test_both_paths_give_a_consumer_the_same_message_under_a_new_id(
    queues: dict[str, str], tmp_path: Path
) -> None:
    first = fill(queues["dlq"], 13)
    fallback = move(queues, tmp_path)
    assert (fallback.method, fallback.moved) == ("receive, send, delete", 13)
    by_receive = drain(queues["source"])

    second = fill(queues["dlq"], 13)
    seen: list[MoveProgress] = []
    stand_in = MoveTaskStandIn(queues)
    task = move(queues, tmp_path, sqs=stand_in, rate=4, progress=seen.append, poll_s=0)
    assert (task.method, task.moved, task.stopped_early) == ("StartMessageMoveTask", 13, False)
    assert stand_in.tasks[0]["MaxNumberOfMessagesPerSecond"] == 4, "the rate is passed on"
    assert [p.status for p in seen][-1] == "COMPLETED"
    assert [p.moved for p in seen] == sorted(p.moved for p in seen), "progress only grows"
    assert len(seen) >= 4, "followed step by step, four a step"
    by_task = drain(queues["source"])

    assert consumer_view(by_receive) == consumer_view(by_task)
    assert all(m["MessageAttributes"]["failure_reason"] for m in by_task), "kept, as SQS keeps it"
    assert not {m["MessageId"] for m in by_receive} & set(first)
    assert not {m["MessageId"] for m in by_task} & set(second)
    assert drain(queues["dlq"]) == []


def test_a_later_logged_failure_outranks_the_reason_a_redriven_message_still_carries(
    queues: dict[str, str], tmp_path: Path
) -> None:
    sqs = boto3.client("sqs")
    stale, current = (
        sqs.send_message(
            QueueUrl=queues["dlq"],
            MessageBody="{}",
            MessageAttributes={
                "failure_reason": {"DataType": "String", "StringValue": f"{name} reason"},
                "failed_at": {"DataType": "String", "StringValue": "2026-01-01T00:00:10+00:00"},
            },
        )["MessageId"]
        for name in ("stale", "current")
    )
    log = tmp_path / "billing.log"
    log.write_text(
        "\n".join(
            json.dumps(e)
            for e in [
                {  # after the attribute's failure: this message failed again since
                    "message": "record failed",
                    "message_id": stale,
                    "error": "TimeoutError: newer",
                    "timestamp": "2026-01-01 00:00:20,000+0000",
                },
                {  # before it: the attribute is the newer evidence
                    "message": "record failed",
                    "message_id": current,
                    "error": "older",
                    "timestamp": "2026-01-01 00:00:05,000+0000",
                },
            ]
        )
    )
    letters = {d.message_id: d.reason for d in dead_letters(sqs, queues["dlq"], [log])}
    assert letters == {stale: "TimeoutError: newer", current: "current reason"}


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
