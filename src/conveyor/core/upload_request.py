"""``POST /uploads``: what a client may ask to upload."""

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

from conveyor.core.media import EXTENSIONS, MAX_UPLOAD_BYTES

_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\]")
_PLAIN_FILENAME = r"^(?!\.{1,2}$)[^\x00-\x1f\x7f/\\]+$"


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
    size: Annotated[int, Field(strict=True, ge=1, le=MAX_UPLOAD_BYTES)]

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
