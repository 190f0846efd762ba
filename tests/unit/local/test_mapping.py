"""Lambda's SQS event source mapping semantics: pure rules, and the poller driving a queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    SqsModel,
    SqsMsgAttributeModel,
    SqsRecordModel,
)

from conveyor.local.mapping import batch_ready, receive_count, settle, sqs_event
from conveyor.local.poller import SqsPoller
from conveyor.local.workers import Invocation
from conveyor.topology import SqsTrigger
from tests.unit.local.fake_sqs import Clock, FakeQueue

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

IDS = ["a", "b", "c"]


def test_a_function_error_retries_the_whole_batch() -> None:
    result = settle(IDS, function_error=True, response=None, report_batch_item_failures=True)
    assert result.delete == ()
    assert result.retry == tuple(IDS)
    assert result.whole_batch_failed


def test_reported_item_failures_are_retried_and_only_the_rest_deleted() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "b"}]}
    result = settle(IDS, function_error=False, response=response, report_batch_item_failures=True)
    assert result.delete == ("a", "c")
    assert result.retry == ("b",)


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": []}])
def test_an_empty_response_means_every_message_succeeded(response: Any) -> None:
    result = settle(IDS, function_error=False, response=response, report_batch_item_failures=True)
    assert result.delete == tuple(IDS)


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{}]},
        {"batchItemFailures": "b"},
        "not a mapping",
    ],
)
def test_an_unusable_failure_report_fails_the_whole_batch(response: Any) -> None:
    result = settle(IDS, function_error=False, response=response, report_batch_item_failures=True)
    assert result.whole_batch_failed
    assert result.delete == ()


def test_without_report_batch_item_failures_a_response_is_ignored() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "b"}]}
    result = settle(IDS, function_error=False, response=response, report_batch_item_failures=False)
    assert result.delete == tuple(IDS)


def test_batching_rules() -> None:
    assert receive_count(batch_size=10, collected=0) == 10
    assert receive_count(batch_size=10, collected=7) == 3
    assert receive_count(batch_size=25, collected=0) == 10  # SQS returns at most 10
    assert not batch_ready(0, 10, waited_s=99, window_s=0)
    assert batch_ready(3, 10, waited_s=0, window_s=0)  # no window: invoke at once
    assert not batch_ready(3, 10, waited_s=1, window_s=5)
    assert batch_ready(3, 10, waited_s=5, window_s=5)
    assert batch_ready(10, 10, waited_s=0, window_s=5)


def test_sqs_event_has_lambdas_record_shape() -> None:
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": "{}",
        "MD5OfBody": "x",
        "Attributes": {"ApproximateReceiveCount": "2"},
        "MessageAttributes": {
            "order_id": {"DataType": "String", "StringValue": "o-1"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    }
    record = sqs_event([message], "arn:aws:sqs:us-east-1:1:q", "us-east-1")["Records"][0]
    assert record["messageId"] == "m1"
    assert record["receiptHandle"] == "r1"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:1:q"
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["messageAttributes"]["order_id"]["stringValue"] == "o-1"
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="


SYSTEM_ATTRIBUTES = {  # what ReceiveMessage returns for MessageSystemAttributeNames=["All"]
    "SentTimestamp": "1545082649183",
    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
    "ApproximateFirstReceiveTimestamp": "1545082649185",
}


def test_sqs_records_match_powertools_sqs_model_key_for_key_with_values_only_where_set() -> None:
    messages = [
        {
            "MessageId": "m1",
            "ReceiptHandle": "r1",
            "Body": "{}",
            "MD5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
            "MD5OfMessageAttributes": "3e9d1a...",
            "Attributes": {**SYSTEM_ATTRIBUTES, "ApproximateReceiveCount": "1"},
            "MessageAttributes": {"order_id": {"DataType": "String", "StringValue": "o-1"}},
        },
        {
            "MessageId": "m2",
            "ReceiptHandle": "r2",
            "Body": "{}",
            "MD5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
            "Attributes": {**SYSTEM_ATTRIBUTES, "ApproximateReceiveCount": "3"},
        },
    ]
    event = sqs_event(messages, "arn:aws:sqs:us-east-2:123456789012:q", "us-east-2")
    SqsModel.model_validate(event)  # Powertools' own model of the event takes it
    with_attributes, without = event["Records"]
    assert set(with_attributes) == set(SqsRecordModel.model_fields), "every key, no other"
    assert with_attributes["md5OfMessageAttributes"] == "3e9d1a..."
    assert without["md5OfMessageAttributes"] is None, "no attributes, no digest"
    assert without["messageAttributes"] == {}
    attribute = with_attributes["messageAttributes"]["order_id"]
    # A String attribute carries its string value and empty lists; no binaryValue key.
    assert attribute == {
        "stringValue": "o-1",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert set(attribute) <= set(SqsMsgAttributeModel.model_fields)


class Consumer:
    """A function that fails the messages whose body is in ``poison``."""

    def __init__(self, poison: set[str] = frozenset(), crash: bool = False) -> None:  # type: ignore[assignment]
        self.poison = poison
        self.crash = crash
        self.batches: list[list[str]] = []

    def __call__(self, event: dict[str, Any]) -> Invocation:
        records = event["Records"]
        self.batches.append([r["body"] for r in records])
        if self.crash:
            return Invocation(error="boom", error_type="RuntimeError")
        failures = [{"itemIdentifier": r["messageId"]} for r in records if r["body"] in self.poison]
        return Invocation(result={"batchItemFailures": failures})


def poller(queue: FakeQueue, consumer: Consumer, **trigger: Any) -> SqsPoller:
    return SqsPoller(
        function="f",
        trigger=SqsTrigger("q", **trigger),
        queue_url="q",
        queue_arn="arn:q",
        region="us-east-1",
        invoke=consumer,
        sqs=cast("SQSClient", queue),  # an in-memory queue with the calls a poller makes
        clock=queue.clock,
    )


def test_a_throttled_batch_is_handed_back_and_its_receive_counts() -> None:
    queue = FakeQueue(Clock(), visibility_timeout=30, max_receive_count=2)
    queue.send("sound")
    consumer = Consumer()
    mapping = poller(queue, consumer)
    mapping.throttle_rate = 1.0  # the function is throttled every time
    outcome = mapping.poll_once()
    assert outcome is not None
    assert outcome.error_type == "TooManyRequestsException"
    assert consumer.batches == [], "nothing was invoked"
    assert queue.bodies == ["sound"], "nothing was deleted"
    assert mapping.poll_once() is None, "in flight until the visibility timeout"
    queue.clock.now += 30
    mapping.poll_once()
    assert queue.messages[0].receive_count == 2
    queue.clock.now += 30
    mapping.poll_once()
    # The function never failed, yet the message is dead-lettered: hence five receives.
    assert [m.body for m in queue.dead_letters] == ["sound"]
    assert mapping.stats.throttled_batches == 2


def test_pollers_of_one_mapping_each_take_a_batch_at_once() -> None:
    queue = FakeQueue(Clock())
    for n in range(4):
        queue.send(f"m{n}")
    consumer = Consumer()
    first, second = poller(queue, consumer, batch_size=2), poller(queue, consumer, batch_size=2)
    first.poll_once()
    second.poll_once()
    assert sorted(len(b) for b in consumer.batches) == [2, 2]
    assert sorted(body for batch in consumer.batches for body in batch) == ["m0", "m1", "m2", "m3"]


def test_one_poisoned_message_in_a_batch_ends_in_the_dlq_after_three_receives() -> None:
    queue = FakeQueue(Clock(), visibility_timeout=60)
    for n in range(10):
        queue.send("bad" if n == 4 else f"ok-{n}")
    consumer = Consumer(poison={"bad"})
    mapping = poller(queue, consumer)

    mapping.poll_once()
    assert len(consumer.batches[0]) == 10, "all ten arrive in one batch"
    assert queue.bodies == ["bad"], "the nine successes are deleted at once"

    assert mapping.poll_once() is None, "the failure is invisible until the timeout passes"
    for attempt in (2, 3):
        queue.clock.now += 60
        mapping.poll_once()
        assert consumer.batches[-1] == ["bad"]
        assert queue.messages[0].receive_count == attempt
    queue.clock.now += 60
    assert mapping.poll_once() is None
    assert [m.body for m in queue.dead_letters] == ["bad"]
    assert queue.messages == []
    assert mapping.stats.deleted == 9
    assert mapping.stats.retried == 3


def test_a_crashing_function_redelivers_every_message_of_its_batch() -> None:
    queue = FakeQueue(Clock(), visibility_timeout=30, max_receive_count=2)
    for n in range(3):
        queue.send(f"m{n}")
    mapping = poller(queue, Consumer(crash=True))
    mapping.poll_once()
    assert len(queue.messages) == 3
    queue.clock.now += 30
    mapping.poll_once()
    queue.clock.now += 30
    mapping.poll_once()
    assert sorted(m.body for m in queue.dead_letters) == ["m0", "m1", "m2"]
    assert mapping.stats.failed_batches == 2


def test_a_batching_window_gathers_messages_across_receives() -> None:
    queue = FakeQueue(Clock())
    queue.send("first")
    consumer = Consumer()
    original = queue.receive_message

    def arriving_later(**kwargs: Any) -> dict[str, Any]:
        result = original(**kwargs)
        if len(queue.receive_calls) == 1:
            queue.send("second")  # arrives while the window is open
        return result

    queue.receive_message = arriving_later  # type: ignore[method-assign]
    mapping = poller(queue, consumer, batch_size=10, batching_window_s=2)
    mapping.poll_once()
    assert consumer.batches == [["first", "second"]]


def test_a_window_longer_than_sqs_longest_wait_is_waited_out_receive_by_receive() -> None:
    queue = FakeQueue(Clock())
    queue.send("only")
    consumer = Consumer()
    mapping = poller(queue, consumer, batch_size=100, batching_window_s=60)
    mapping.poll_once()
    assert consumer.batches == [["only"]]
    assert max(queue.waits) == 20, "never more than SQS allows"
    assert queue.clock.now >= 60, "the whole window was waited out"


def test_batch_size_caps_how_many_messages_one_invocation_gets() -> None:
    queue = FakeQueue(Clock())
    for n in range(7):
        queue.send(f"m{n}")
    consumer = Consumer()
    mapping = poller(queue, consumer, batch_size=3)
    while mapping.poll_once():
        pass
    assert [len(b) for b in consumer.batches] == [3, 3, 1]
    assert queue.receive_calls[0] == 3
