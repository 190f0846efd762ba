"""Lambda's SQS event source mapping semantics, as pure functions.

These decide what a poller does; :mod:`conveyor.local.poller` only carries them out:

* a batch is invoked once it holds ``batch_size`` messages or its batching window has
  passed (with no window, as soon as a receive returns anything);
* a function error retries the whole batch; messages are never deleted, they reappear
  after the queue's visibility timeout;
* with ``ReportBatchItemFailures`` only the listed messages are retried and the rest are
  deleted; a response naming an id that is not in the batch (or a malformed response)
  fails the whole batch;
* a message received ``maxReceiveCount`` times is moved to the DLQ by the queue's
  redrive policy on its next receive, not by the poller;
* as many pollers as the mapping's maximum concurrency (Lambda starts five, and caps
  them at that maximum) receive and invoke at once, so the messages of a burst are split
  across concurrent batches, not gathered into the fullest one;
* a throttled invocation hands its batch back unprocessed: its messages reappear after
  the visibility timeout, and that receive counts towards ``maxReceiveCount``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_MESSAGES_PER_RECEIVE = 10


@dataclass(frozen=True)
class Settlement:
    delete: tuple[str, ...]
    """Message ids that succeeded: delete them."""
    retry: tuple[str, ...]
    """Message ids left on the queue to reappear after the visibility timeout."""
    whole_batch_failed: bool = False


def receive_count(batch_size: int, collected: int) -> int:
    """How many messages the next ReceiveMessage call asks for."""
    return max(0, min(MAX_MESSAGES_PER_RECEIVE, batch_size - collected))


def batch_ready(collected: int, batch_size: int, waited_s: float, window_s: float) -> bool:
    if collected == 0:
        return False
    return collected >= batch_size or waited_s >= window_s


def settle(
    message_ids: Sequence[str],
    *,
    function_error: bool,
    response: Any,
    report_batch_item_failures: bool,
) -> Settlement:
    """What happens to each message of an invoked batch."""
    everything = tuple(message_ids)
    if function_error:
        return Settlement(delete=(), retry=everything, whole_batch_failed=True)
    if not report_batch_item_failures:
        return Settlement(delete=everything, retry=())
    failures = _reported_failures(response, set(everything))
    if failures is None:
        return Settlement(delete=(), retry=everything, whole_batch_failed=True)
    return Settlement(
        delete=tuple(m for m in everything if m not in failures),
        retry=tuple(m for m in everything if m in failures),
    )


def _reported_failures(response: Any, batch: set[str]) -> set[str] | None:
    """The failed ids a response reports; None when the response is not usable."""
    if response is None or response == {}:
        return set()
    if not isinstance(response, Mapping):
        return None
    reported = response.get("batchItemFailures")
    if reported is None:
        return set()
    if not isinstance(reported, list):
        return None
    failed: set[str] = set()
    for entry in reported:
        identifier = entry.get("itemIdentifier") if isinstance(entry, Mapping) else None
        if not isinstance(identifier, str) or identifier not in batch:
            return None
        failed.add(identifier)
    return failed


def _lambda_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """One message attribute as Lambda writes it: only the value it has (a String has
    no ``binaryValue`` key at all), and both list fields, empty."""
    attribute: dict[str, Any] = {}
    if value.get("StringValue") is not None:
        attribute["stringValue"] = value["StringValue"]
    if value.get("BinaryValue") is not None:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return {
        **attribute,
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [
            base64.b64encode(b).decode() for b in value.get("BinaryListValues", [])
        ],
        "dataType": value.get("DataType", "String"),
    }


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda hands a function for a batch of SQS ``ReceiveMessage`` results."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {
                    name: _lambda_attribute(value)
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                # SQS gives a digest only when the message has attributes; so does Lambda.
                "md5OfMessageAttributes": m.get("MD5OfMessageAttributes"),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }
