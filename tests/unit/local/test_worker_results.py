"""What a worker hands back is what Lambda's Python runtime would: the result encoded
as JSON, Decimal as a number, and an unencodable result an invocation error."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from conveyor.local.workers import FunctionPool, MarshalError, marshalled
from conveyor.topology import Function, HttpRoute


def test_decimal_encodes_as_a_number_and_tuples_as_lists() -> None:
    assert marshalled({"total": Decimal("19.98"), "ids": ("a", "b")}) == {
        "total": 19.98,
        "ids": ["a", "b"],
    }


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", object()])
def test_what_json_cannot_hold_is_a_marshal_error(value: object) -> None:
    with pytest.raises(MarshalError, match="Unable to marshal response"):
        marshalled({"value": value})


def test_a_worker_whose_result_does_not_encode_fails_the_invocation(tmp_path: Path) -> None:
    results = {}
    for name in ("a_datetime", "a_decimal"):
        function = Function(name, f"tests.unit.local.returning:{name}", HttpRoute("/x"), grants=())
        pool = FunctionPool(function, {}, tmp_path)
        pool.start()
        try:
            results[name] = pool.invoke({})
        finally:
            pool.close()
    failed = results["a_datetime"]
    assert failed.failed
    assert failed.error_type == "Runtime.MarshalError"
    assert "datetime is not JSON serializable" in (failed.error or "")
    assert results["a_decimal"].result == {"batchItemFailures": [], "total": 19.98}
