"""Validation pieces the request models share, with JSON Schema's meaning of each type."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import StringConstraints, ValidationError

Identifier = Annotated[
    str,
    StringConstraints(
        strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    ),
]
"""Ids end up in S3 keys and DynamoDB keys, so they are restricted to a safe alphabet."""


class DuplicateKeyError(ValueError):
    """A JSON object names a key twice: which value was meant is anyone's guess."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKeyError(f"key {key!r} appears more than once")
        seen[key] = value
    return seen


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(body: bytes) -> Any:
    """Parse a request body as standard JSON: duplicate keys and NaN/Infinity are errors,
    and numbers keep their JSON kind (``2.0`` stays a float, so an integer field refuses
    it). Raises ValueError with a reason."""
    try:
        # Decoded first: handed bytes, json would also take UTF-16 or a byte-order mark.
        text = body.decode("utf-8")
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except RecursionError as exc:
        raise ValueError("the JSON is nested too deeply") from exc


def field_errors(error: ValidationError) -> list[dict[str, str]]:
    """Validation errors as ``{field, message}`` pairs a client can act on."""
    return [
        {"field": ".".join(str(part) for part in item["loc"]) or "body", "message": item["msg"]}
        for item in error.errors(include_url=False, include_input=False, include_context=False)
    ]
