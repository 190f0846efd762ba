"""Store a JSON copy of each order from the ``archive`` queue in S3, once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from conveyor.aws import metrics, tracing
from conveyor.aws.clients import client, has_code
from conveyor.aws.config import required
from conveyor.core.orders import AcceptedOrder, archive_key, content_hash
from conveyor.functions.consumer import (
    CONFLICTING_DUPLICATE,
    correlate,
    handles_records,
    logs_batch,
    parse_or_dead_letter,
    send_to_dead_letter,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CONTENT_HASH = "content-hash"
"""Object metadata: the archived order's content digest, to tell a duplicate delivery
from another order under the same key."""

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def put_copy(s3: S3Client, bucket: str, key: str, order: AcceptedOrder) -> None:
    """Write the order's JSON copy at ``key`` unless an object is already there."""
    # If-None-Match makes the write conditional: a redelivered message neither rewrites
    # the object nor adds a version to the versioned bucket.
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=order.model_dump_json().encode(),
        ContentType="application/json",
        ServerSideEncryption="AES256",
        IfNoneMatch="*",
        Metadata={"correlation-id": order.correlation_id, CONTENT_HASH: content_hash(order)},
    )


def stored_content(s3: S3Client, bucket: str, key: str) -> str | None:
    """The content digest of the copy already at ``key``."""
    return s3.head_object(Bucket=bucket, Key=key)["Metadata"].get(CONTENT_HASH)


@handles_records()
def archive(record: SQSRecord) -> None:
    correlate(record)
    order = parse_or_dead_letter(record, AcceptedOrder, "order", "archive")
    if order is None:
        return
    tracing.annotate(order_id=order.order_id)
    key, bucket, s3 = archive_key(order), required("ARCHIVE_BUCKET"), client("s3")
    try:
        put_copy(s3, bucket, key, order)
    except ClientError as exc:
        if not has_code(exc, "PreconditionFailed"):
            raise
        if stored_content(s3, bucket, key) != content_hash(order):
            send_to_dead_letter(record, CONFLICTING_DUPLICATE, "archive")
            return
        logger.info("order already archived; duplicate delivery", extra={"key": key})
        return
    metrics.count(metrics.ORDERS_ARCHIVED)
    logger.info("order archived", extra={"order_id": order.order_id, "key": key})


@metrics.published
@tracing.invocation()
@logs_batch
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=archive, processor=processor, context=context
    )
