"""The request id that correlates one request's log lines across every function."""

from __future__ import annotations

import re
import uuid

_USABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(given: str | None) -> str:
    """The caller's ``X-Request-Id`` when it is safe to log and echo, a new id otherwise."""
    if given and _USABLE.fullmatch(given):
        return given
    return uuid.uuid4().hex
