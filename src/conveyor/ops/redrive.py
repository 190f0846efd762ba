"""Dead-letter queues: see what is in one and why, and move it back to its source.

On AWS, ``StartMessageMoveTask`` moves messages server-side. Where that call is missing
(moto answers HTTP 500) or a ``--max`` is asked for (a move task cannot count), messages
are moved one at a time: receive from the DLQ, send to the source, delete from the DLQ.
A journal records each message sent before its DLQ copy is deleted, so a run that is
interrupted between the two finds the journal entry when that copy reappears and deletes
it instead of sending it twice. Ctrl-C lets the current message finish first.

Either way a consumer sees what a move task delivers: the body and every attribute (the
earlier failure's ``failure_reason`` and ``failed_at`` included; no consumer acts on
them) under a new message id.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from conveyor.aws.clients import has_code
from conveyor.functions.consumer import (
    BATCH_STARTED,
    FAILED_AT,
    FAILURE_REASON,
    SOURCE_MESSAGE_ID,
)
from conveyor.ops.logs import read_json_lines
from conveyor.topology import dlq_of

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
    )

NO_REASON = "no failure was recorded for this message"
BATCH_FAILED = "batch failed"
BATCH_THROTTLED = "batch throttled"
"""The local poller's lines about a batch, with its message ids (Lambda writes none)."""
THROTTLED_REASON = "throttled: the batch was handed back unprocessed (the receive counted)"
ENDED_WITHOUT_RESULT = (
    "the invocation that received it last ended without a result (a timeout or a crash)"
)
_NOT_IMPLEMENTED = {
    "NotImplemented",
    "InternalFailure",
    "InternalError",
    "500",
    "UnsupportedOperation",
}


@dataclass(frozen=True)
class QueuePair:
    """A source queue and its dead-letter queue."""

    name: str
    source_url: str
    source_arn: str
    dlq_url: str
    dlq_arn: str

    @property
    def dlq_name(self) -> str:
        return dlq_of(self.name)


def resendable_attributes(message: MessageTypeDef) -> dict[str, MessageAttributeValueTypeDef]:
    """A received message's attributes in the shape SendMessage takes."""
    resent: dict[str, MessageAttributeValueTypeDef] = {}
    for name, value in message.get("MessageAttributes", {}).items():
        kept: MessageAttributeValueTypeDef = {"DataType": value["DataType"]}
        if "StringValue" in value:
            kept["StringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            kept["BinaryValue"] = value["BinaryValue"]
        resent[name] = kept
    return resent


def peek(
    sqs: SQSClient, url: str, hide_for_s: int = 30, limit: int | None = None
) -> list[MessageTypeDef]:
    """Every message in a queue (or the first ``limit``), left in place and visible
    again when this returns."""
    found: list[MessageTypeDef] = []
    while limit is None or len(found) < limit:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10 if limit is None else min(10, limit - len(found)),
            VisibilityTimeout=hide_for_s,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            break
        found.extend(batch)
    _release(sqs, url, found)
    return found


def _release(sqs: SQSClient, url: str, messages: list[MessageTypeDef]) -> None:
    for start in range(0, len(messages), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + 10])
            ],
        )


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receive_count: int
    sent_at: datetime
    subject: str
    reason: str


@dataclass(frozen=True)
class Trail:
    """The last thing the logs say about a message id, and when."""

    at: datetime
    reason: str


def _when(stamp: object) -> datetime:
    """A log line's time, from the runtime's ISO 8601 or Powertools' ``2026-11-30
    07:30:42,914+0000``."""
    try:
        parsed = datetime.fromisoformat(str(stamp).replace(",", "."))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def last_errors(log_files: Iterable[Path]) -> dict[str, Trail]:
    """message id -> the last failure logged for it, by a function or by the poller."""
    found: dict[str, Trail] = {}
    for path in log_files:
        for entry in read_json_lines(path):
            if entry.get("message") == "record failed" and entry.get("message_id"):
                pairs = [(str(entry["message_id"]), str(entry.get("error", "")))]
            elif entry.get("message") == BATCH_STARTED:
                # The function's own trail: a batch it started and logged nothing more
                # about ended without a result. In the cloud this line is all there is.
                ended = f"{entry.get('service')}: {ENDED_WITHOUT_RESULT}"
                pairs = [(str(m), ended) for m in entry.get("message_ids", [])]
            elif entry.get("message") == BATCH_THROTTLED:
                throttled = f"{entry.get('function')}: {THROTTLED_REASON}"
                pairs = [(str(m), throttled) for m in entry.get("message_ids", [])]
            elif entry.get("message") == BATCH_FAILED:
                error = f"{entry.get('function')}: {entry.get('error_type')}: {entry.get('error')}"
                pairs = [(str(m), error) for m in entry.get("message_ids", [])]
            else:
                continue
            at = _when(entry.get("timestamp"))
            for message_id, error in pairs:
                if message_id not in found or found[message_id].at <= at:
                    found[message_id] = Trail(at, error)
    return found


def _subject(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:60]
    if isinstance(data, dict) and "order_id" in data:
        return f"order {data['order_id']}"
    if isinstance(data, dict) and data.get("Records"):
        return str(data["Records"][0].get("s3", {}).get("object", {}).get("key", "?"))
    return body[:60]


def dead_letters(
    sqs: SQSClient, dlq_url: str, log_files: Iterable[Path] = (), limit: int | None = None
) -> list[DeadLetter]:
    messages = peek(sqs, dlq_url, limit=limit)
    trails = last_errors(log_files)
    letters = []
    for message in messages:
        system = message.get("Attributes", {})
        letters.append(
            DeadLetter(
                message_id=message["MessageId"],
                # Listing receives each message once; the count it shows is from before.
                receive_count=int(system.get("ApproximateReceiveCount", 1)) - 1,
                sent_at=datetime.fromtimestamp(int(system.get("SentTimestamp", 0)) / 1000, UTC),
                subject=_subject(message["Body"]),
                reason=_reason(message, trails.get(message["MessageId"])),
            )
        )
    return letters


def _reason(message: MessageTypeDef, trail: Trail | None) -> str:
    """The newest evidence of why the message is here: the reason a consumer attached
    when it gave up, unless the logs show a later failure of this message (a redriven
    message keeps the attributes of its earlier failure)."""
    attributes = message.get("MessageAttributes", {})
    absent: MessageAttributeValueOutputTypeDef = {"DataType": "String"}
    recorded = attributes.get(FAILURE_REASON, absent).get("StringValue")
    failed_at = _when(attributes.get(FAILED_AT, absent).get("StringValue"))
    if recorded and (trail is None or trail.at <= failed_at):
        return recorded
    return trail.reason if trail else NO_REASON


class Journal:
    """Which DLQ messages were already sent back: JSON lines, fsynced before any delete."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sent: set[str] = set()
        for entry in read_json_lines(path):
            if entry.get("state") == "sent":
                self.sent.add(str(entry["message_id"]))
            elif entry.get("state") == "done":
                self.sent.discard(str(entry["message_id"]))

    def record(self, message_id: str, state: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps({"message_id": message_id, "state": state}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if state == "sent":
            self.sent.add(message_id)
        else:
            self.sent.discard(message_id)


@dataclass
class RedriveResult:
    method: str
    moved: int = 0
    finished_interrupted: int = 0
    """Messages an interrupted run had sent already: deleted now, not sent again."""
    failed_again: int = 0
    """Messages this run moved that came back to the DLQ before it ended: left there, not
    moved a second time, so that a run ends however often a consumer rejects them."""
    stopped_early: bool = False
    failure: str | None = None
    """Why a move task failed, as SQS says."""


MOVE_TASK_DONE = ("COMPLETED", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class MoveProgress:
    """A move task's state as ListMessageMoveTasks reports it."""

    status: str
    moved: int
    to_move: int | None
    failure: str | None = None


def redrive(
    sqs: SQSClient,
    pair: QueuePair,
    state_dir: Path,
    *,
    max_messages: int | None = None,
    rate: int | None = None,
    stop: threading.Event | None = None,
    hide_for_s: int = 60,
    progress: Callable[[MoveProgress], None] = lambda _: None,
    poll_s: float = 2.0,
) -> RedriveResult:
    """Move the DLQ's messages back: a move task where SQS has one (followed until it
    ends, reporting its progress), one by one otherwise. ``rate``: messages a second at
    most. Either way a consumer sees the same message: its body and every attribute,
    under a new message id."""
    stop = stop or threading.Event()
    if max_messages is None:
        request: dict[str, Any] = {"SourceArn": pair.dlq_arn, "DestinationArn": pair.source_arn}
        if rate is not None:
            request["MaxNumberOfMessagesPerSecond"] = rate
        try:
            task = sqs.start_message_move_task(**request)
        except NotImplementedError:
            pass  # moto in process
        except ClientError as exc:
            if not has_code(exc, *_NOT_IMPLEMENTED):
                raise
        else:
            return _follow(sqs, pair, str(task.get("TaskHandle", "")), stop, progress, poll_s)
    return _move_one_by_one(
        sqs,
        pair.source_url,
        pair.dlq_url,
        Journal(state_dir / f"redrive-{pair.dlq_name}.journal"),
        max_messages,
        stop,
        hide_for_s,
        1.0 / rate if rate else 0.0,
    )


def _follow(
    sqs: SQSClient,
    pair: QueuePair,
    handle: str,
    stop: threading.Event,
    progress: Callable[[MoveProgress], None],
    poll_s: float,
) -> RedriveResult:
    """Report a move task's progress until it ends; Ctrl-C cancels it (what it moved
    stays moved)."""
    result = RedriveResult(method="StartMessageMoveTask")
    cancelled = False
    while True:
        [latest] = sqs.list_message_move_tasks(SourceArn=pair.dlq_arn, MaxResults=1)["Results"]
        state = MoveProgress(
            status=str(latest.get("Status")),
            moved=int(latest.get("ApproximateNumberOfMessagesMoved", 0)),
            to_move=latest.get("ApproximateNumberOfMessagesToMove"),
            failure=latest.get("FailureReason"),
        )
        progress(state)
        result.moved = state.moved
        if state.status in MOVE_TASK_DONE:
            result.stopped_early = cancelled or state.status != "COMPLETED"
            result.failure = state.failure
            return result
        if stop.wait(poll_s) and not cancelled:
            sqs.cancel_message_move_task(TaskHandle=handle)
            cancelled = True


def _came_back(message: MessageTypeDef, sent: set[str]) -> bool:
    """A message this run moved, dead-lettered again: by the queue's redrive policy (same
    id) or by a consumer (a new message naming the one it received)."""
    source = message.get("MessageAttributes", {}).get(SOURCE_MESSAGE_ID, {"DataType": "String"})
    return message["MessageId"] in sent or source.get("StringValue") in sent


def _move_one_by_one(
    sqs: SQSClient,
    source_url: str,
    dlq_url: str,
    journal: Journal,
    max_messages: int | None,
    stop: threading.Event,
    hide_for_s: int,
    pause_s: float,
) -> RedriveResult:
    result = RedriveResult(method="receive, send, delete")
    sent: set[str] = set()  # ids the messages this run moved have in the source queue
    back: dict[str, MessageTypeDef] = {}  # of those, what came back: held until the end
    try:
        while True:
            remaining = 10 if max_messages is None else min(10, max_messages - result.moved)
            if remaining <= 0 or stop.is_set():
                result.stopped_early = stop.is_set()
                return result
            batch = sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=remaining,
                VisibilityTimeout=hide_for_s,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            returned = [m for m in batch if _came_back(m, sent)]
            back.update((m["MessageId"], m) for m in returned)  # the newest receipt wins
            if len(returned) == len(batch):
                return result  # nothing left that was in the DLQ when the run started
            for index, message in enumerate(batch):
                if message in returned:
                    continue
                if stop.is_set():
                    _release(sqs, dlq_url, [m for m in batch[index:] if m not in returned])
                    result.stopped_early = True
                    return result
                message_id = message["MessageId"]
                if message_id in journal.sent:
                    result.finished_interrupted += 1
                else:
                    # As a move task does: the body and every attribute, a new id.
                    moved = sqs.send_message(
                        QueueUrl=source_url,
                        MessageBody=message["Body"],
                        MessageAttributes=resendable_attributes(message),
                    )
                    stop.wait(pause_s)
                    sent.add(moved["MessageId"])
                    journal.record(message_id, "sent")
                    result.moved += 1
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
                journal.record(message_id, "done")
    finally:
        # What came back stays in the DLQ, visible again for whoever looks next.
        _release(sqs, dlq_url, list(back.values()))
        result.failed_again = len(back)
