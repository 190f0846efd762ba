"""Validation pieces the request models share, with JSON Schema's meaning of each type."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, StringConstraints, ValidationError

Identifier = Annotated[
    str,
    StringConstraints(
        strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    ),
]
"""Ids end up in S3 keys and DynamoDB keys, so they are restricted to a safe alphabet."""


def _whole_number(value: Any) -> Any:
    # JSON Schema counts 2.0 as the integer 2; booleans and strings stay errors (strict).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = BeforeValidator(_whole_number)
"""Use last, as ``Annotated[int, Field(strict=True, ...), WholeNumber]``: outermost, it runs
first, and the JSON schema keeps the field's minimum and maximum."""


def field_errors(error: ValidationError) -> list[dict[str, str]]:
    """Validation errors as ``{field, message}`` pairs a client can act on."""
    return [
        {"field": ".".join(str(part) for part in item["loc"]) or "body", "message": item["msg"]}
        for item in error.errors(include_url=False, include_input=False, include_context=False)
    ]
