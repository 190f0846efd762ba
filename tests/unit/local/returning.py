"""Handlers for the worker tests: each returns what its name says."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def a_datetime(event: Any, context: Any) -> dict[str, Any]:
    return {"batchItemFailures": [], "at": datetime(2026, 11, 30, tzinfo=UTC)}


def a_decimal(event: Any, context: Any) -> dict[str, Any]:
    return {"batchItemFailures": [], "total": Decimal("19.98")}
