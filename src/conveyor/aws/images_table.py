"""The images table: one item per upload, moved through its states by conditional writes.

``awaiting_upload`` (presign issued the URL, with the owner) -> ``processing`` (claimed,
with a lease) -> ``processed`` | ``failed``. The item is keyed
by ``image_id`` (the upload id) and remembers which object content (ETag) it is about, so a
second delivery of the same S3 event finds the work done and only makes sure the result
event went out. An upload id is written once: other content uploaded later under the
same id (a presigned POST can be used until it expires) never replaces the result. The
one way back from ``failed`` is ``retries_exhausted`` for the same content: a redriven
message claims it again. Access patterns: an image by id (key), images in a status, newest first
(GSI ``by_status`` on ``status``, ``updated_at``). Items expire 90 days after creation
(TTL on ``expires_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from conveyor.aws.clients import has_code
from conveyor.aws.dynamo import from_attributes, to_attributes
from conveyor.core.media import PROCESSED_PREFIX, offer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

AWAITING_UPLOAD = "awaiting_upload"
AWAITING_RETENTION = timedelta(days=1)
"""An upload URL expires in minutes; its record goes a day later if nothing arrived."""
PROCESSING = "processing"
PROCESSED = "processed"
FAILED = "failed"
RETENTION = timedelta(days=90)
RETRIES_EXHAUSTED = "retries_exhausted"


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to start work on one object's content."""

    state: str
    """``claimed``; ``done`` (this content was processed or failed before); ``busy``
    (another worker holds it); ``reused`` (the id already has a result for other content)."""
    item: dict[str, Any] | None = None


def get(dynamodb: DynamoDBClient, table: str, image_id: str) -> dict[str, Any] | None:
    response = dynamodb.get_item(
        TableName=table, Key={"image_id": {"S": image_id}}, ConsistentRead=True
    )
    return from_attributes(response.get("Item"))


def claim(
    dynamodb: DynamoDBClient,
    table: str,
    image_id: str,
    *,
    source_key: str,
    etag: str,
    correlation_id: str,
    now: datetime,
    lease_s: int,
) -> Claim:
    """Start processing unless this content is done or another worker holds a live lease."""
    stamp = now.astimezone(UTC)
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"image_id": {"S": image_id}},
            UpdateExpression=(
                "SET #status = :processing, source_key = :key, source_etag = :etag, "
                "lease_until = :lease, correlation_id = :cid, updated_at = :now, "
                "created_at = if_not_exists(created_at, :now), expires_at = :expires, "
                "notified = :false REMOVE variants, reason, detail"
            ),
            ConditionExpression=(
                "attribute_not_exists(image_id) OR #status = :awaiting "
                "OR (source_etag = :etag AND ("
                "(#status = :processing AND lease_until < :epoch) "
                "OR (#status = :failed AND reason = :exhausted)))"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_attributes(
                {
                    ":processing": PROCESSING,
                    ":awaiting": AWAITING_UPLOAD,
                    ":key": source_key,
                    ":etag": etag,
                    ":lease": int(stamp.timestamp()) + lease_s,
                    ":cid": correlation_id,
                    ":now": stamp.isoformat(),
                    ":expires": int((stamp + RETENTION).timestamp()),
                    ":false": False,
                    ":epoch": int(stamp.timestamp()),
                    ":failed": FAILED,
                    ":exhausted": RETRIES_EXHAUSTED,
                }
            ),
        )
    except ClientError as exc:
        if not has_code(exc, "ConditionalCheckFailedException"):
            raise
        current = get(dynamodb, table, image_id)
        if current and current.get("status") in (PROCESSED, FAILED):
            return Claim("done" if current.get("source_etag") == etag else "reused", current)
        return Claim("busy", current)
    return Claim("claimed")


def record_awaiting(
    dynamodb: DynamoDBClient,
    table: str,
    image_id: str,
    *,
    client_id: str,
    filename: str,
    correlation_id: str,
    now: datetime,
) -> None:
    """Note an issued upload URL and whose upload it is (a new id: written once)."""
    stamp = now.astimezone(UTC)
    dynamodb.put_item(
        TableName=table,
        Item=to_attributes(
            {
                "image_id": image_id,
                "status": AWAITING_UPLOAD,
                "client_id": client_id,
                "original_filename": filename,
                "correlation_id": correlation_id,
                "created_at": stamp.isoformat(),
                "updated_at": stamp.isoformat(),
                "expires_at": int((stamp + AWAITING_RETENTION).timestamp()),
            }
        ),
        ConditionExpression="attribute_not_exists(image_id)",
    )


def status_view(item: dict[str, Any], media_base_url: str) -> dict[str, Any]:
    """What ``GET /uploads/{upload_id}`` tells the client that owns the upload."""
    view: dict[str, Any] = {"upload_id": item["image_id"], "status": item["status"]}
    if item["status"] == FAILED:
        view["reason"] = item.get("reason", "")
    if item["status"] == PROCESSED:
        view["width"], view["height"] = int(item["width"]), int(item["height"])
        view["variants"] = {
            label: {
                "url": variant_url(item, label, media_base_url),
                "width": int(variant["width"]),
                "height": int(variant["height"]),
                "formats": [
                    {"type": f["type"], "bytes": int(f["bytes"])}
                    for f in stored_formats(item, label)
                ],
            }
            for label, variant in item.get("variants", {}).items()
        }
    return view


def variant_url(item: dict[str, Any], label: str, media_base_url: str) -> str:
    """Where a variant is downloaded: one URL (the CDN serves ``processed/`` at its
    root) that offers its modern formats to negotiation."""
    key = str(item["variants"][label]["key"]).removeprefix(PROCESSED_PREFIX)
    modern = [str(f["key"]).rpartition(".")[2] for f in stored_formats(item, label)[1:]]
    return f"{media_base_url}/{key}{offer(modern)}"


def stored_formats(item: dict[str, Any], label: str) -> list[dict[str, Any]]:
    """Every format variant ``label`` of a processed image is stored in (``type``,
    ``key``, ``bytes``), its source's first; a record written before variants had modern
    formats lists its one."""
    variant = item["variants"][label]
    if "formats" in variant:
        return list(variant["formats"])
    return [{"type": item.get("mime_type"), "key": variant["key"], "bytes": variant["bytes"]}]


def release(dynamodb: DynamoDBClient, table: str, image_id: str, etag: str) -> None:
    """Give up the lease after a transient failure, so the retry is not blocked by it."""
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"image_id": {"S": image_id}},
            UpdateExpression="SET lease_until = :zero",
            ConditionExpression="#status = :processing AND source_etag = :etag",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_attributes(
                {":zero": 0, ":processing": PROCESSING, ":etag": etag}
            ),
        )
    except ClientError as exc:
        if not has_code(exc, "ConditionalCheckFailedException"):
            raise


def finish(
    dynamodb: DynamoDBClient,
    table: str,
    image_id: str,
    etag: str,
    status: str,
    fields: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Move a claimed item to ``processed`` or ``failed``; returns the whole new item."""
    names = {"#status": "status", **{f"#f{i}": k for i, k in enumerate(fields)}}
    values = {
        ":status": status,
        ":processing": PROCESSING,
        ":etag": etag,
        ":now": now.astimezone(UTC).isoformat(),
        **{f":f{i}": v for i, v in enumerate(fields.values())},
    }
    sets = ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
    response = dynamodb.update_item(
        TableName=table,
        Key={"image_id": {"S": image_id}},
        UpdateExpression=f"SET #status = :status, updated_at = :now, {sets} REMOVE lease_until",
        ConditionExpression="#status = :processing AND source_etag = :etag",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=to_attributes(values),
        ReturnValues="ALL_NEW",
    )
    item = from_attributes(response["Attributes"])
    assert item is not None
    return item


def mark_notified(dynamodb: DynamoDBClient, table: str, image_id: str) -> None:
    dynamodb.update_item(
        TableName=table,
        Key={"image_id": {"S": image_id}},
        UpdateExpression="SET notified = :true",
        ExpressionAttributeValues={":true": {"BOOL": True}},
    )
