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
STORED_ONLY = {"image/avif": (".avif",)}
"""Formats variants are stored in that no upload may be."""
TYPE_OF_EXTENSION = {
    ext: kind for kind, extensions in {**EXTENSIONS, **STORED_ONLY}.items() for ext in extensions
}
VARIANT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cross-Origin-Resource-Policy": "cross-origin",  # pages of other origins may show them
}
"""Every variant is served with these, by CloudFront and by the local media origin: a
file planted under ``processed/`` is never sniffed into something else, and can run no
script if a browser opens it."""

MODERN_FORMATS = (("image/avif", ".avif"), ("image/webp", ".webp"))
"""The formats every still JPEG or PNG variant is also stored in, best first; one URL
serves each variant, in the best of them the client accepts."""
OFFER_QUERY = "formats"
"""The query parameter of a variant's URL that names the modern formats it is stored in
(``?formats=avif,webp``): a variant stored before it had any has none, and is served as
it is, since neither CloudFront nor the local origin can look into the bucket first."""
VARY = {"Vary": "Accept"}
"""On every variant's answer, so that a cache never hands one client another's format."""


def offer(extensions: list[str]) -> str:
    """The query that offers a variant's modern formats, given their extensions."""
    names = [e.lstrip(".") for e in extensions]
    return f"?{OFFER_QUERY}={','.join(names)}" if names else ""


_REFUSED = re.compile(r"q=0(\.0{0,3})?", re.IGNORECASE)
"""A weight of zero as HTTP writes one: the type is not acceptable. A malformed weight
is read as none at all (the function on CloudFront reads it the same way)."""


def accepted_types(accept: str | None) -> set[str]:
    """The media types an ``Accept`` header names, less those refused with ``q=0``;
    wildcards stay wildcards (``*/*`` does not say that AVIF or WebP can be shown)."""
    found = set()
    for part in (accept or "").split(","):
        kind, *parameters = (piece.strip() for piece in part.split(";"))
        if kind and not any(_REFUSED.fullmatch(p) for p in parameters):
            found.add(kind.lower())
    return found


def negotiated(key: str, accept: str | None, offered: str | None) -> str:
    """The stored object that answers a request for variant ``key``: the best of the
    ``offered`` formats (the URL's ``formats``, comma-separated) that ``accept`` names,
    else ``key`` itself. The media distribution's CloudFront Function makes the same
    choice (a test runs both on the same cases)."""
    stem, dot, _ = key.rpartition(".")
    offers = {f".{name.strip()}" for name in (offered or "").split(",")}
    accepted = accepted_types(accept)
    for kind, extension in MODERN_FORMATS:
        if dot and extension in offers and kind in accepted:
            return stem + extension
    return key


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
