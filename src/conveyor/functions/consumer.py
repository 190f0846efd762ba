"""What the SQS-triggered functions share: per-record correlation, and the path for
messages that can never succeed.

Retrying a message that is malformed only wastes the retries and hides why it failed, so
a consumer sends it straight to its dead-letter queue with the reason attached and lets
the batch treat it as handled. Transient failures still go the usual way: they are
reported as batch item failures and reach the DLQ through the queue's redrive policy.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from conveyor.aws import metrics, tracing
from conveyor.aws.clients import client
from conveyor.aws.config import MAX_RECEIVE_COUNT, required
from conveyor.core.spans import QUARANTINED

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef
    from pydantic import BaseModel

FAILURE_REASON = "failure_reason"
FAILED_FUNCTION = "failed_function"
SOURCE_MESSAGE_ID = "source_message_id"
FAILED_AT = "failed_at"
"""When the function gave up on the message. The four attributes describe that one
failure: a redrive (either way) keeps them on the message, no consumer acts on them, and
a later failure either replaces them or, once logged after ``failed_at``, outranks them
in ``conveyor dlq``."""

CONFLICTING_DUPLICATE = "conflicting_duplicate"
"""The reason for a message whose key already holds other content (same client, same
order id, another order): never billed or archived, never dropped silently."""

logger = Logger()


def resent_attributes(record: SQSRecord) -> dict[str, MessageAttributeValueTypeDef]:
    """Every message attribute of a received record, String and Binary alike, in the
    shape SendMessage takes (the event carries Binary values base64-encoded)."""
    attributes: dict[str, MessageAttributeValueTypeDef] = {}
    for name, value in record.message_attributes.items():
        # Lambda leaves out the value an attribute does not have (a Binary one has no
        # stringValue key), so the keys are read with get, not Powertools' properties.
        string, binary = value.get("stringValue"), value.get("binaryValue")
        if string is not None:
            attributes[name] = {"DataType": value.data_type, "StringValue": string}
        elif binary is not None:
            attributes[name] = {
                "DataType": value.data_type,
                "BinaryValue": base64.b64decode(binary),
            }
    return attributes


def send_to_dead_letter(record: SQSRecord, reason: str, function: str) -> None:
    attributes = resent_attributes(record)
    attributes[FAILURE_REASON] = {"DataType": "String", "StringValue": reason[:1000]}
    attributes[FAILED_FUNCTION] = {"DataType": "String", "StringValue": function}
    attributes[SOURCE_MESSAGE_ID] = {"DataType": "String", "StringValue": record.message_id}
    failed_at = datetime.now(UTC).isoformat()
    attributes[FAILED_AT] = {"DataType": "String", "StringValue": failed_at}
    client("sqs").send_message(
        QueueUrl=required("DEAD_LETTER_QUEUE_URL"),
        MessageBody=record.body,
        MessageAttributes=attributes,
    )
    metrics.count(metrics.MESSAGES_DEAD_LETTERED)
    tracing.mark(QUARANTINED)
    logger.error(
        "message rejected permanently",
        extra={"message_id": record.message_id, "reason": reason},
    )


RecordHandler = Callable[[SQSRecord], None]
Message = TypeVar("Message", bound="BaseModel")


def parse_or_dead_letter(
    record: SQSRecord, model: type[Message], what: str, function: str
) -> Message | None:
    """The record's body as ``model``; a body that can never be one goes to the DLQ with
    the reason, and None tells the caller the record is handled."""
    # Imported here: the image function uses this module but never parses a model, and
    # pydantic would be a quarter of its cold start. Where a model is parsed, pydantic
    # is already loaded by the model's module.
    from pydantic import ValidationError

    from conveyor.core.validation import field_errors

    try:
        return model.model_validate_json(record.body)
    except ValidationError as exc:
        # Each field and constraint that failed, as the HTTP 400 lists them, briefly.
        failed = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc))
        send_to_dead_letter(record, f"invalid {what} message: {failed}", function)
        return None


def string_attribute(record: SQSRecord, name: str) -> str | None:
    attribute = record.message_attributes[name]  # None when absent
    return attribute.get("stringValue") if attribute is not None else None


def message_carrier(record: SQSRecord) -> Mapping[str, str]:
    """The trace context a message brings in its attributes (SNS puts it there)."""
    value = string_attribute(record, tracing.TRACEPARENT)
    return {tracing.TRACEPARENT: value} if value else {}


def received(record: SQSRecord, carrier: Mapping[str, str]) -> tracing.ReceivedMessage:
    return tracing.ReceivedMessage(
        message_id=record.message_id,
        # Lambda always sends these; a hand-made event may not (0: unknown).
        queue=str(record.get("eventSourceARN") or "").rpartition(":")[2],
        receive_count=int(record.attributes.get("ApproximateReceiveCount") or 0),
        sent_at_ms=int(record.attributes.get("SentTimestamp") or 0),
        carrier=carrier,
    )


def handles_records(
    carrier: Callable[[SQSRecord], Mapping[str, str]] = message_carrier,
) -> Callable[[RecordHandler], RecordHandler]:
    """Handle each record in a span of the trace its message carries (``carrier`` reads
    that context), and log why a record failed, with its message id, before the batch
    reports it: SQS keeps no reason with a message, so this line is where a DLQ
    message's last error is found (``conveyor dlq`` locally, CloudWatch Logs Insights on
    ``message_id`` in the cloud)."""

    def decorate(handler: RecordHandler) -> RecordHandler:
        @functools.wraps(handler)
        def wrapper(record: SQSRecord) -> None:
            with tracing.record(received(record, carrier(record))):
                try:
                    handler(record)
                except Exception as exc:
                    logger.error(
                        "record failed",
                        extra={
                            "message_id": record.message_id,
                            "error": f"{type(exc).__name__}: {exc}",
                            "receive_count": record.attributes.approximate_receive_count,
                        },
                    )
                    raise

        return wrapper

    return decorate


BATCH_STARTED = "batch started"

Handler = TypeVar("Handler", bound=Callable[[dict[str, Any], Any], Any])


def logs_batch(handler: Handler) -> Handler:
    """Log the message ids of each batch before handling it. A batch that times out or
    crashes logs nothing else, so this line is how its messages are traced: ``conveyor
    dlq`` locally, a CloudWatch Logs Insights query in the cloud."""

    @functools.wraps(handler)
    def wrapper(event: dict[str, Any], context: Any) -> Any:
        logger.set_correlation_id(None)  # not the previous batch's last record's
        ids = [record.get("messageId") for record in event.get("Records", [])]
        logger.info(BATCH_STARTED, extra={"message_ids": ids})
        return handler(event, context)

    return wrapper  # type: ignore[return-value]


def is_last_attempt(record: SQSRecord) -> bool:
    """Whether this receive is the last one the queue's redrive policy allows."""
    return int(record.attributes.approximate_receive_count) >= int(required(MAX_RECEIVE_COUNT))


def correlate(record: SQSRecord) -> None:
    """Log this record under its own correlation id, not the previous record's."""
    logger.set_correlation_id(string_attribute(record, "correlation_id") or record.message_id)
