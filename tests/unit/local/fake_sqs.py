"""An in-memory SQS queue with visibility timeouts and a redrive policy, on a fake clock.

It models what the poller relies on, as SQS documents it: a received message is hidden
for the visibility timeout, reappears if not deleted, and is moved to the DLQ when it
would be received more than maxReceiveCount times.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class _Message:
    message_id: str
    body: str
    receive_count: int = 0
    visible_at: float = 0.0
    receipt: str = ""
    sent_at: float = 0.0


@dataclass
class FakeQueue:
    clock: Clock
    visibility_timeout: float = 60.0
    max_receive_count: int = 3
    messages: list[_Message] = field(default_factory=list)
    dead_letters: list[_Message] = field(default_factory=list)
    receive_calls: list[int] = field(default_factory=list)
    waits: list[int] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def send(self, body: str) -> str:
        message = _Message(f"m-{next(self._ids)}", body, sent_at=self.clock.now)
        self.messages.append(message)
        return message.message_id

    def receive_message(
        self, *, MaxNumberOfMessages: int, WaitTimeSeconds: int, **_: Any
    ) -> dict[str, Any]:
        if not 0 <= WaitTimeSeconds <= 20:  # as SQS: InvalidParameterValue
            raise ValueError(f"WaitTimeSeconds {WaitTimeSeconds} is outside 0..20")
        self.receive_calls.append(MaxNumberOfMessages)
        self.waits.append(WaitTimeSeconds)
        batch = []
        for message in list(self.messages):
            if message.visible_at > self.clock.now:
                continue
            if message.receive_count >= self.max_receive_count:
                self.messages.remove(message)
                self.dead_letters.append(message)
                continue
            message.receive_count += 1
            message.visible_at = self.clock.now + self.visibility_timeout
            message.receipt = f"{message.message_id}/{message.receive_count}"
            batch.append(
                {
                    "MessageId": message.message_id,
                    "ReceiptHandle": message.receipt,
                    "Body": message.body,
                    "MD5OfBody": hashlib.md5(message.body.encode()).hexdigest(),  # noqa: S324
                    "Attributes": {
                        "ApproximateReceiveCount": str(message.receive_count),
                        "SentTimestamp": str(int(message.sent_at * 1000)),
                    },
                }
            )
            if len(batch) == MaxNumberOfMessages:
                break
        if not batch:
            # A long poll on an empty queue lets time pass.
            self.clock.now += WaitTimeSeconds
        return {"Messages": batch} if batch else {}

    def delete_message_batch(self, *, Entries: list[dict[str, str]], **_: Any) -> dict[str, Any]:
        receipts = {e["ReceiptHandle"] for e in Entries}
        self.messages = [m for m in self.messages if m.receipt not in receipts]
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    @property
    def bodies(self) -> list[str]:
        return [m.body for m in self.messages]
