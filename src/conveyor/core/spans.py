"""The names this project's spans carry: what the functions write
(:mod:`conveyor.aws.tracing`) and the trace readers find hops by (:mod:`conveyor.ops.traces`,
``conveyor trace``, the console), kept apart from the tracing setup so that reading
them loads no instrumentation."""

from __future__ import annotations

ANNOTATION_PREFIX = "conveyor."
"""What :func:`conveyor.aws.tracing.annotate` puts before a name (``order_id=...``)."""
ORDER_ID = f"{ANNOTATION_PREFIX}order_id"
UPLOAD_ID = f"{ANNOTATION_PREFIX}upload_id"
OUTCOME = f"{ANNOTATION_PREFIX}outcome"
RECEIVE_COUNT = f"{ANNOTATION_PREFIX}receive_count"
SENT_AT_MS = f"{ANNOTATION_PREFIX}sent_at_ms"
"""When the queue took the message (SQS ``SentTimestamp``): the record span's start
minus this is the time the message waited."""
QUEUE = "messaging.destination.name"
MESSAGE_ID = "messaging.message.id"

PROCESSED, FAILED, QUARANTINED, THROTTLED = "processed", "failed", "quarantined", "throttled"
"""How a record's span ends (:data:`OUTCOME`)."""
