"""Uploads: what may be uploaded, and where each object of an image lives.

Plain values only: the image function imports this, and pydantic alone would be a
quarter of its cold start. The request model is :mod:`conveyor.core.upload_request`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
PRESIGN_EXPIRES_S = 300
UPLOAD_PREFIX = "uploads/"
PROCESSED_PREFIX = "processed/"
QUARANTINE_PREFIX = "quarantine/"

EXTENSIONS = {
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/png": (".png",),
    "image/webp": (".webp",),
    "image/gif": (".gif",),
}
"""Accepted content types; the first extension is the one stored objects get."""
TYPE_OF_EXTENSION = {ext: kind for kind, extensions in EXTENSIONS.items() for ext in extensions}
VARIANT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cross-Origin-Resource-Policy": "cross-origin",  # pages of other origins may show them
}
"""Every variant is served with these, by CloudFront and by the local media origin: a
file planted under ``processed/`` is never sniffed into something else, and can run no
script if a browser opens it."""

_UPLOAD_KEY = re.compile(r"^uploads/([0-9a-f]{32})(\.[a-z]{3,4})$")


def upload_key(upload_id: str, extension: str) -> str:
    return f"{UPLOAD_PREFIX}{upload_id}{extension}"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """``(upload_id, extension)`` of an upload key, or None for any other key."""
    match = _UPLOAD_KEY.match(key)
    return (match.group(1), match.group(2)) if match else None


def variant_key(label: str, upload_id: str, extension: str) -> str:
    return f"{PROCESSED_PREFIX}{label}/{upload_id}{extension}"


def quarantine_key(upload_id: str, extension: str, etag: str = "") -> str:
    """Where a rejected upload is kept; a reused upload id's later content (``etag``)
    gets a key of its own, so it never replaces what was kept of the first."""
    return f"{QUARANTINE_PREFIX}{upload_id}{'-' + etag if etag else ''}{extension}"


S3_TEST_EVENT = "s3:TestEvent"


class MalformedEvent(ValueError):
    """The message is not an S3 event notification this pipeline can act on."""


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    """Decoded: S3 URL-encodes the keys in its events."""
    version: str | None
    etag: str


def objects_created(body: object) -> list[ObjectCreated]:
    """The ``ObjectCreated`` records of an S3 event notification (other event types are
    skipped); anything that is not such a notification raises :class:`MalformedEvent`
    naming what is wrong, so the message can go to the DLQ instead of being retried."""
    if not isinstance(body, dict) or not isinstance(body.get("Records"), list):
        raise MalformedEvent("the message is not an S3 event notification (no Records list)")
    found = []
    for index, record in enumerate(body["Records"]):
        if not isinstance(record, dict) or not isinstance(record.get("eventName"), str):
            raise MalformedEvent(f"record {index} is not an S3 event record (no eventName)")
        if not record["eventName"].startswith("ObjectCreated"):
            continue
        s3 = record.get("s3")
        bucket = s3.get("bucket") if isinstance(s3, dict) else None
        obj = s3.get("object") if isinstance(s3, dict) else None
        fields = obj if isinstance(obj, dict) else {}
        name = bucket.get("name") if isinstance(bucket, dict) else None
        key, version = fields.get("key"), fields.get("versionId")
        if not isinstance(name, str) or not isinstance(key, str) or not name or not key:
            raise MalformedEvent(f"record {index} names no s3.bucket.name and s3.object.key")
        found.append(
            ObjectCreated(
                bucket=name,
                key=unquote_plus(key),
                version=version if isinstance(version, str) and version else None,
                etag=str(fields.get("eTag", "")).strip('"'),
            )
        )
    return found
