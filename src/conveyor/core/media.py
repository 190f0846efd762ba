"""Uploads: what may be uploaded, and where each object of an image lives.

Plain values only: the image function imports this, and pydantic alone would be a
quarter of its cold start. The request model is :mod:`conveyor.core.upload_request`.
"""

from __future__ import annotations

import re

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

_UPLOAD_KEY = re.compile(r"^uploads/([0-9a-f]{32})(\.[a-z]{3,4})$")


def upload_key(upload_id: str, extension: str) -> str:
    return f"{UPLOAD_PREFIX}{upload_id}{extension}"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """``(upload_id, extension)`` of an upload key, or None for any other key."""
    match = _UPLOAD_KEY.match(key)
    return (match.group(1), match.group(2)) if match else None


def variant_key(label: str, upload_id: str, extension: str) -> str:
    return f"{PROCESSED_PREFIX}{label}/{upload_id}{extension}"


def quarantine_key(upload_id: str, extension: str) -> str:
    return f"{QUARANTINE_PREFIX}{upload_id}{extension}"
