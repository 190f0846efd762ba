"""Uploads: what a client may ask to upload, and where each object of an image lives."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from conveyor.core.validation import WholeNumber

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

_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\]")
_PLAIN_FILENAME = r"^(?!\.{1,2}$)[^\x00-\x1f\x7f/\\]+$"
_UPLOAD_KEY = re.compile(r"^uploads/([0-9a-f]{32})(\.[a-z]{3,4})$")


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    filename: Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=255),
        WithJsonSchema(
            {"type": "string", "minLength": 1, "maxLength": 255, "pattern": _PLAIN_FILENAME}
        ),
    ]
    """For people only: the stored key takes its extension from ``content_type``, and the
    image function checks the bytes themselves."""
    content_type: Annotated[
        str,
        StringConstraints(strict=True),
        WithJsonSchema({"type": "string", "enum": list(EXTENSIONS)}),
    ]
    size: Annotated[int, Field(strict=True, ge=1, le=MAX_UPLOAD_BYTES), WholeNumber]

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if _UNSAFE_FILENAME.search(value) or value in (".", ".."):
            raise ValueError(
                "must be a plain file name without path separators or control characters"
            )
        return value

    @field_validator("content_type")
    @classmethod
    def _allowed_type(cls, value: str) -> str:
        if value not in EXTENSIONS:
            raise ValueError(f"must be one of {', '.join(EXTENSIONS)}")
        return value

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.content_type][0]


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
