"""What the SQS-triggered functions share: per-record correlation, and the path for
messages that can never succeed.

Retrying a message that is malformed only wastes the retries and hides why it failed, so
a consumer sends it straight to its dead-letter queue with the reason attached and lets
the batch treat it as handled. Transient failures still go the usual way: they are
reported as batch item failures and reach the DLQ through the queue's redrive policy.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from conveyor.aws import client
from conveyor.config import required

FAILURE_REASON = "failure_reason"
FAILED_FUNCTION = "failed_function"
SOURCE_MESSAGE_ID = "source_message_id"

logger = Logger()


def send_to_dead_letter(record: SQSRecord, reason: str, function: str) -> None:
    attributes = {
        name: {"DataType": value.data_type, "StringValue": value.string_value}
        for name, value in record.message_attributes.items()
        if value.string_value is not None
    }
    attributes[FAILURE_REASON] = {"DataType": "String", "StringValue": reason[:1000]}
    attributes[FAILED_FUNCTION] = {"DataType": "String", "StringValue": function}
    attributes[SOURCE_MESSAGE_ID] = {"DataType": "String", "StringValue": record.message_id}
    client("sqs").send_message(
        QueueUrl=required("DEAD_LETTER_QUEUE_URL"),
        MessageBody=record.body,
        MessageAttributes=attributes,
    )
    logger.error(
        "message rejected permanently",
        extra={"message_id": record.message_id, "reason": reason},
    )


def correlate(record: SQSRecord) -> None:
    """Log this record under its own correlation id, not the previous record's."""
    attribute = record.message_attributes["correlation_id"]  # None when absent
    value = attribute.string_value if attribute is not None else None
    logger.set_correlation_id(value or record.message_id)
