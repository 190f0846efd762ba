"""An SQS event source mapping: receive, batch, invoke, settle.

The decisions are :mod:`conveyor.local.mapping`'s; this module makes the calls.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.local.mapping import (
    batch_ready,
    receive_count,
    settle,
    sqs_event,
)
from conveyor.local.workers import Invocation
from conveyor.ops.redrive import BATCH_FAILED, BATCH_THROTTLED, resendable_attributes
from conveyor.topology import MAX_SQS_WAIT_S, SqsTrigger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger(__name__)

THROTTLED = "TooManyRequestsException"

IDLE_WAIT_S = 1
"""Long-poll wait while the queue is empty; short, so that stopping is prompt."""


@dataclass
class PollerStats:
    batches: int = 0
    received: int = 0
    deleted: int = 0
    retried: int = 0
    failed_batches: int = 0
    throttled_batches: int = 0
    duplicated: int = 0


class SqsPoller:
    def __init__(
        self,
        *,
        function: str,
        trigger: SqsTrigger,
        queue_url: str,
        queue_arn: str,
        region: str,
        invoke: Callable[[dict[str, Any]], Invocation],
        sqs: SQSClient,
        resend: SQSClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        duplicate_rate: float = 0.0,
        throttle_rate: float = 0.0,
    ) -> None:
        self.function = function
        self.trigger = trigger
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.invoke = invoke
        self.sqs = sqs
        self.resend = resend or sqs
        """What delivers injected duplicates: SQS itself, not the function's role."""
        self.clock = clock
        self.duplicate_rate = duplicate_rate
        self.throttle_rate = throttle_rate
        """Fraction of batches that find the function throttled (injected: only the
        mapping invokes a queue consumer, and the topology makes its reserved concurrency
        cover the mapping, so locally nothing else takes its capacity)."""
        self._random = random.Random()  # noqa: S311 - fault injection, not cryptography
        self.stats = PollerStats()
        self._lock = threading.Lock()

    def _receive(self, count: int, wait_s: int) -> list[MessageTypeDef]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def collect(self) -> list[MessageTypeDef]:
        """One batch, as Lambda's poller would assemble it; empty if the queue is idle."""
        batch: list[MessageTypeDef] = []
        first_at = 0.0
        window = float(self.trigger.batching_window_s)
        while True:
            count = receive_count(self.trigger.batch_size, len(batch))
            if count == 0:
                return batch
            # Idle: a short long-poll. Mid-batch: wait out the rest of the window.
            rest = max(0, math.ceil(window - (self.clock() - first_at)))
            # SQS waits 20 s at most: a longer window is waited out receive by receive.
            wait = min(rest, MAX_SQS_WAIT_S) if batch else IDLE_WAIT_S
            received = self._receive(count, wait)
            if received and not batch:
                first_at = self.clock()
            batch.extend(received)
            if not batch:
                return batch
            if batch_ready(len(batch), self.trigger.batch_size, self.clock() - first_at, window):
                return batch

    def poll_once(self) -> Invocation | None:
        batch = self.collect()
        if not batch:
            return None
        if self.throttle_rate and self._random.random() < self.throttle_rate:
            return self._throttled(batch)
        outcome = self.invoke(sqs_event(batch, self.queue_arn, self.region))
        settlement = settle(
            [m["MessageId"] for m in batch],
            function_error=outcome.failed,
            response=outcome.result,
            report_batch_item_failures=self.trigger.report_batch_item_failures,
        )
        if outcome.failed:
            # SQS keeps no reason with a message; this line is where `conveyor dlq` finds it.
            log.warning(
                BATCH_FAILED,
                extra={
                    "function": self.function,
                    "error": outcome.error,
                    "error_type": outcome.error_type,
                    "message_ids": [m["MessageId"] for m in batch],
                },
            )
        by_id = {m["MessageId"]: m for m in batch}
        self._delete([by_id[i]["ReceiptHandle"] for i in settlement.delete])
        duplicated = self._duplicate([by_id[i] for i in settlement.delete])
        with self._lock:
            self.stats.batches += 1
            self.stats.received += len(batch)
            self.stats.deleted += len(settlement.delete)
            self.stats.retried += len(settlement.retry)
            self.stats.failed_batches += settlement.whole_batch_failed
            self.stats.duplicated += duplicated
        return outcome

    def _throttled(self, batch: list[MessageTypeDef]) -> Invocation:
        """As Lambda with a throttled function: the batch is handed back unprocessed,
        its messages reappear after the visibility timeout, and the receive counts."""
        ids = [m["MessageId"] for m in batch]
        log.warning(BATCH_THROTTLED, extra={"function": self.function, "message_ids": ids})
        with self._lock:
            self.stats.throttled_batches += 1
            self.stats.received += len(batch)
            self.stats.retried += len(batch)
        return Invocation(error="Rate Exceeded.", error_type=THROTTLED)

    def _duplicate(self, handled: list[MessageTypeDef]) -> int:
        """Deliver some handled messages again, as SQS's at-least-once delivery may."""
        count = 0
        for message in handled:
            if self.duplicate_rate and self._random.random() < self.duplicate_rate:
                self.resend.send_message(
                    QueueUrl=self.queue_url,
                    MessageBody=message["Body"],
                    MessageAttributes=resendable_attributes(message),
                )
                log.info(
                    "chaos: duplicate delivery",
                    extra={"function": self.function, "message_id": message["MessageId"]},
                )
                count += 1
        return count

    def _delete(self, receipts: list[str]) -> None:
        for start in range(0, len(receipts), 10):
            chunk = receipts[start : start + 10]
            response = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                # The message will be delivered again; consumers are idempotent.
                log.warning("could not delete a message from %s: %s", self.queue_url, failure)

    def run(self, stop: threading.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                self.poll_once()
                backoff = 0.1
            except Exception:
                log.exception("poller for %s failed; backing off", self.function)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
