"""Make the variants of each uploaded image, record them, and announce the result.

For every S3 ``ObjectCreated`` event under ``uploads/``:

1. claim the image in the table (conditional write keyed by upload id + object version);
   a version already processed or failed is not processed again;
2. read the object and render its variants (:mod:`conveyor.core.imaging`);
3. write them to ``processed/{label}/{upload_id}{ext}``, mark the item ``processed``;
4. publish ``image.processed`` on ``media-events``.

An image that can never succeed (not an image, lying content type, too big, too many
pixels, truncated, polyglot) is moved to ``quarantine/``, marked ``failed`` with its
reason, announced as ``image.failed``, and its message is not retried. Anything else
(S3, DynamoDB or SNS trouble) is reported as a batch item failure and retried; on the
last receive the queue allows, the image is first marked ``failed`` with
``retries_exhausted`` (so nothing stays ``processing``), then the redrive policy moves
the message to the DLQ, and a redrive claims the image again.

Other content uploaded later under a processed or failed upload id is quarantined as
``upload_reused``; the recorded result and its variants stay as they were. A message that
is not an S3 event notification goes straight to the DLQ with the reason.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from conveyor.aws import images_table, metrics, tracing
from conveyor.aws.clients import client, has_code
from conveyor.aws.config import required
from conveyor.core import imaging
from conveyor.core.media import (
    MAX_UPLOAD_BYTES,
    S3_TEST_EVENT,
    MalformedEvent,
    ObjectCreated,
    objects_created,
    parse_upload_key,
    quarantine_key,
    variant_key,
)
from conveyor.core.spans import QUARANTINED
from conveyor.functions.consumer import (
    correlate,
    handles_records,
    is_last_attempt,
    logs_batch,
    send_to_dead_letter,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CopySourceTypeDef, GetObjectRequestTypeDef

EVENT_PROCESSED = "image.processed"
EVENT_FAILED = "image.failed"
UPLOAD_REUSED = "upload_reused"
LEASE_S = 90
"""Longer than the function's timeout: a live worker never loses its lease."""

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


class StillInProgress(RuntimeError):
    """Another worker holds a live lease on this image; try again later."""


def result_event(item: dict[str, Any]) -> dict[str, Any]:
    status = item["status"]
    event: dict[str, Any] = {
        "event_type": EVENT_PROCESSED if status == images_table.PROCESSED else EVENT_FAILED,
        "image_id": item["image_id"],
        "status": status,
        "source_key": item["source_key"],
        "correlation_id": item.get("correlation_id", ""),
        "occurred_at": item["updated_at"],
    }
    if status == images_table.PROCESSED:
        event["variants"] = {label: v["key"] for label, v in item["variants"].items()}
        event["formats"] = {
            label: [
                {"type": f["type"], "bytes": int(f["bytes"])}
                for f in images_table.stored_formats(item, label)
            ]
            for label in item["variants"]
        }
        event["width"], event["height"] = int(item["width"]), int(item["height"])
    else:
        event["reason"] = item["reason"]
        event["detail"] = item.get("detail", "")
        event["quarantine_key"] = item.get("quarantine_key")
    return event


def announce(item: dict[str, Any]) -> None:
    event = result_event(item)
    client("sns").publish(
        TopicArn=required("MEDIA_EVENTS_TOPIC_ARN"),
        Message=json.dumps(event),
        MessageAttributes={
            "event_type": {"DataType": "String", "StringValue": event["event_type"]},
            "image_id": {"DataType": "String", "StringValue": event["image_id"]},
            "correlation_id": {
                "DataType": "String",
                "StringValue": event["correlation_id"] or "none",
            },
        },
    )
    images_table.mark_notified(client("dynamodb"), required("IMAGES_TABLE"), item["image_id"])
    logger.info("result announced", extra=event)


def _quarantine(
    bucket: str, key: str, version: str | None, upload_id: str, ext: str, etag: str = ""
) -> str:
    tracing.mark(QUARANTINED)
    s3 = client("s3")
    target = quarantine_key(upload_id, ext, etag)
    source: CopySourceTypeDef = {"Bucket": bucket, "Key": key}
    if version:
        source["VersionId"] = version
    try:
        s3.copy_object(Bucket=bucket, Key=target, CopySource=source, ServerSideEncryption="AES256")
    except ClientError as exc:
        if not has_code(exc, "NoSuchKey", "NoSuchVersion", "404"):
            raise
        return ""  # gone already: an earlier attempt moved it
    s3.delete_object(Bucket=bucket, Key=key)
    return target


def _read(bucket: str, key: str, version: str | None) -> tuple[bytes, str, dict[str, str]]:
    """The object's bytes, declared content type and metadata; refuses to read a body
    over the size limit (the emulator does not enforce the POST policy)."""
    request: GetObjectRequestTypeDef = {"Bucket": bucket, "Key": key}
    if version:
        request["VersionId"] = version
    try:
        response = client("s3").get_object(**request)
    except ClientError as exc:
        if has_code(exc, "NoSuchKey", "NoSuchVersion"):
            raise imaging.ImageRejected("missing", "the uploaded object no longer exists") from exc
        raise
    metadata = {k.lower(): v for k, v in response.get("Metadata", {}).items()}
    content_type = str(response.get("ContentType", ""))
    length = int(response.get("ContentLength", 0))
    if length > MAX_UPLOAD_BYTES:
        response["Body"].close()
        raise imaging.ImageRejected("too_large", f"{length} bytes is over {MAX_UPLOAD_BYTES}")
    return response["Body"].read(), content_type, metadata


def process_object(created: ObjectCreated, last_attempt: bool = False) -> None:
    """Handle one uploaded object; ``last_attempt``: the queue allows no more receives."""
    bucket, key, version, etag = created.bucket, created.key, created.version, created.etag
    parsed = parse_upload_key(key)
    if parsed is None:
        logger.warning("ignoring an object this pipeline did not issue", extra={"key": key})
        return
    upload_id, ext = parsed
    tracing.annotate(upload_id=upload_id)
    table, dynamodb = required("IMAGES_TABLE"), client("dynamodb")
    now = datetime.now(UTC)
    # Identity is key + ETag: S3 repeats both in a duplicate event (some emulators leave
    # out versionId), and the same content always gives the same variants.
    claim = images_table.claim(
        dynamodb,
        table,
        upload_id,
        source_key=key,
        etag=etag,
        correlation_id=logger.get_correlation_id() or "",
        now=now,
        lease_s=LEASE_S,
    )
    if claim.state == "done":
        assert claim.item is not None
        logger.info("already handled; duplicate event", extra={"image_id": upload_id})
        if not claim.item.get("notified"):
            announce(claim.item)
        return
    if claim.state == "reused":
        _refuse_reuse(created, upload_id, ext)
        return
    if claim.state == "busy":
        raise StillInProgress(f"{upload_id} is being processed by another worker")

    try:
        item = _process(bucket, key, version, upload_id, ext, etag)
    except Exception as exc:
        if last_attempt:
            _give_up(upload_id, etag, exc)
        else:
            images_table.release(dynamodb, table, upload_id, etag)
        raise
    announce(item)


def _refuse_reuse(created: ObjectCreated, upload_id: str, ext: str) -> None:
    """Keep a later upload under an id that already has a result out of the way; the
    result and its variants are not touched."""
    moved = _quarantine(created.bucket, created.key, created.version, upload_id, ext, created.etag)
    metrics.count(metrics.IMAGES_FAILED, reason=UPLOAD_REUSED)
    logger.warning(
        "image rejected",
        extra={
            "image_id": upload_id,
            "reason": UPLOAD_REUSED,
            "detail": "this upload id already has a result; the new content was not processed",
            "quarantine_key": moved,
        },
    )


def _give_up(upload_id: str, etag: str, exc: Exception) -> None:
    """On the last receive, record why the image failed before SQS dead-letters it."""
    detail = f"{type(exc).__name__}: {exc}"[:500]
    try:
        images_table.finish(
            client("dynamodb"),
            required("IMAGES_TABLE"),
            upload_id,
            etag,
            images_table.FAILED,
            {"reason": images_table.RETRIES_EXHAUSTED, "detail": detail},
            datetime.now(UTC),
        )
    except ClientError:
        logger.exception("could not record the exhausted retries", extra={"image_id": upload_id})
        return
    metrics.count(metrics.IMAGES_FAILED, reason=images_table.RETRIES_EXHAUSTED)
    logger.error(
        "image failed; retries exhausted",
        extra={"image_id": upload_id, "reason": images_table.RETRIES_EXHAUSTED, "detail": detail},
    )


def _process(
    bucket: str, key: str, version: str | None, upload_id: str, ext: str, etag: str
) -> dict[str, Any]:
    table, dynamodb, s3 = required("IMAGES_TABLE"), client("dynamodb"), client("s3")
    started = datetime.now(UTC)
    clock = time.perf_counter()
    content_type, size = "", 0
    metadata: dict[str, str] = {}
    try:
        data, content_type, metadata = _read(bucket, key, version)
        size = len(data)
        if metadata.get("correlation-id"):
            logger.set_correlation_id(metadata["correlation-id"])
        rendition = imaging.render(
            data, content_type, int(os.environ.get("MAX_IMAGE_PIXELS", imaging.DEFAULT_MAX_PIXELS))
        )
    except imaging.ImageRejected as rejected:
        moved = _quarantine(bucket, key, version, upload_id, ext)
        logger.warning(
            "image rejected",
            extra={"image_id": upload_id, "reason": rejected.code, "detail": rejected.detail},
        )
        failed = images_table.finish(
            dynamodb,
            table,
            upload_id,
            etag,
            images_table.FAILED,
            {
                "reason": rejected.code,
                "detail": rejected.detail[:500],
                "quarantine_key": moved,
                "mime_type": content_type,
                "size": size,
                "original_filename": unquote(metadata.get("filename", "")),
            },
            datetime.now(UTC),
        )
        metrics.count(metrics.IMAGES_FAILED, reason=rejected.code)
        return failed

    variants = {}
    for variant in rendition.variants:
        target = variant_key(variant.label, upload_id, rendition.extension)
        stored = [(rendition.mime_type, target, variant.data)]
        stored += [
            (modern.mime_type, variant_key(variant.label, upload_id, modern.extension), modern.data)
            for modern in variant.modern
        ]
        for content_type, stored_key, data in stored:
            s3.put_object(
                Bucket=bucket,
                Key=stored_key,
                Body=data,
                ContentType=content_type,
                CacheControl="public, max-age=31536000, immutable",
                ServerSideEncryption="AES256",
                Metadata={"correlation-id": logger.get_correlation_id() or ""},
            )
        variants[variant.label] = {
            "key": target,
            "width": variant.width,
            "height": variant.height,
            "bytes": len(variant.data),
            # Every stored format, the source's first; the key above serves the best one
            # a client accepts.
            "formats": [{"type": t, "key": k, "bytes": len(d)} for t, k, d in stored],
        }
    finished = datetime.now(UTC)
    item = images_table.finish(
        dynamodb,
        table,
        upload_id,
        etag,
        images_table.PROCESSED,
        {
            "variants": variants,
            "width": rendition.width,
            "height": rendition.height,
            "frames": rendition.frames,
            "mime_type": rendition.mime_type,
            "size": size,
            "processed_at": finished.isoformat(),
            "duration_ms": int((finished - started).total_seconds() * 1000),
            "correlation_id": logger.get_correlation_id() or "",
            "original_filename": unquote(metadata.get("filename", "")),
        },
        finished,
    )
    metrics.count(metrics.IMAGES_PROCESSED)
    metrics.milliseconds(metrics.IMAGE_PROCESSING_TIME, (time.perf_counter() - clock) * 1000)
    logger.info("image processed", extra={"image_id": upload_id, "variants": len(variants)})
    return item


def upload_carrier(record: SQSRecord) -> Mapping[str, str]:
    """The trace an upload began at ``POST /uploads``: its object's metadata names it,
    because the presigned POST pinned it there. A record that is no upload's event, or
    whose object is gone, starts a trace of its own."""
    try:
        created = objects_created(json.loads(record.body))
    except (ValueError, MalformedEvent):
        return {}
    if not created or parse_upload_key(created[0].key) is None:
        return {}
    try:
        head = client("s3").head_object(Bucket=created[0].bucket, Key=created[0].key)
    except ClientError:
        return {}
    value = head.get("Metadata", {}).get(tracing.TRACEPARENT)
    return {tracing.TRACEPARENT: value} if value else {}


@handles_records(carrier=upload_carrier)
def handle(record: SQSRecord) -> None:
    correlate(record)
    try:
        body = json.loads(record.body)
    except ValueError:
        send_to_dead_letter(record, "the message is not JSON, so not an S3 event", "images")
        return
    if isinstance(body, dict) and body.get("Event") == S3_TEST_EVENT:
        logger.info("ignoring the S3 test event sent when notifications are configured")
        return
    try:
        created = objects_created(body)
    except MalformedEvent as malformed:
        send_to_dead_letter(record, str(malformed), "images")
        return
    for obj in created:
        process_object(obj, last_attempt=is_last_attempt(record))


@metrics.published
@tracing.invocation()
@logs_batch
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=handle, processor=processor, context=context
    )
