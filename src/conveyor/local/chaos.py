"""Fault injection for the local runtime, used by ``conveyor soak``.

A function under a :class:`FaultPlan` runs :func:`handler` in its worker, which wraps the
real handler and, at the plan's rates:

* fails SQS records as if the record handler had raised (``raise``);
* kills its own worker process after handling half of a batch (``crash``), the way an
  out-of-memory kill or a hardware fault would;
* makes AWS calls fail with a throttling error before they are sent (``aws_error``).

The poller adds duplicate deliveries (``duplicate``). Every injected fault is logged as
``{"chaos": kind, ...}`` in the function's log, so a soak can count what it injected.
None of this is ever deployed: it lives only in the local runtime.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import random
import sys
from dataclasses import dataclass
from functools import cache
from typing import Any

from conveyor.topology import Function

ENV = "CONVEYOR_CHAOS"

RAISE = "raise"
CRASH = "crash"
AWS_ERROR = "aws_error"
"""The function-side faults, logged as ``{"chaos": kind}`` in the function's log."""
DUPLICATE = "duplicate"
THROTTLED_BATCH = "throttled batch"
"""The mapping-side faults, logged by the poller in the runtime's log."""


@dataclass(frozen=True)
class FaultPlan:
    raise_rate: float = 0.0
    """Fraction of SQS records that fail as if their handler raised."""
    crash_rate: float = 0.0
    """Fraction of SQS invocations whose worker dies half way through the batch."""
    aws_error_rate: float = 0.0
    """Fraction of AWS calls that fail with ThrottlingException."""
    duplicate_rate: float = 0.0
    """Fraction of successfully handled messages the poller delivers a second time."""
    throttle_rate: float = 0.0
    """Fraction of batches the mapping finds the function throttled for: handed back
    unprocessed, to come again after the visibility timeout (that receive counts)."""
    functions: tuple[str, ...] = ()
    """Which functions get the handler faults; empty means all of them."""

    def applies_to(self, function: str) -> bool:
        return not self.functions or function in self.functions

    def configured(self) -> list[str]:
        """The kinds of fault this plan injects at all, by the names a soak counts them
        under."""
        rates = {
            RAISE: self.raise_rate,
            CRASH: self.crash_rate,
            AWS_ERROR: self.aws_error_rate,
            DUPLICATE: self.duplicate_rate,
            THROTTLED_BATCH: self.throttle_rate,
        }
        return [kind for kind, rate in rates.items() if rate > 0]


def wrap(function: Function, plan: FaultPlan) -> tuple[Function, dict[str, str]]:
    """The function running under the plan, and the environment the wrapper reads."""
    config = {
        "target": function.handler,
        "raise_rate": plan.raise_rate,
        "crash_rate": plan.crash_rate,
        "aws_error_rate": plan.aws_error_rate,
    }
    wrapped = dataclasses.replace(function, handler=f"{__name__}:handler")
    return wrapped, {ENV: json.dumps(config)}


def _log(kind: str, **fields: Any) -> None:
    print(json.dumps({"chaos": kind, **fields}), flush=True)


@cache
def _config() -> dict[str, Any]:
    return dict(json.loads(os.environ[ENV]))


_random = random.Random()  # noqa: S311 - fault injection, not cryptography


def _throttle_some_aws_calls(rate: float) -> None:
    if rate <= 0:
        return
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    # botocore's one funnel for every call; private, so untyped in its stubs.
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def flaky(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if _random.random() < rate:
            _log(AWS_ERROR, operation=operation)
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "injected by conveyor chaos"}},
                operation,
            )
        return original(self, operation, params)

    BaseClient._make_api_call = flaky  # type: ignore[attr-defined]


@cache
def _target() -> Any:
    config = _config()
    _throttle_some_aws_calls(float(config["aws_error_rate"]))
    module, attribute = str(config["target"]).split(":", 1)
    return getattr(importlib.import_module(module), attribute)


def handler(event: dict[str, Any], context: Any) -> Any:
    real = _target()
    config = _config()
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        return real(event, context)
    if _random.random() < float(config["crash_rate"]):
        half = records[: len(records) // 2]
        if half:
            real({**event, "Records": half}, context)
        _log(CRASH, messages=len(records), handled_before_crash=len(half))
        sys.stdout.flush()
        os._exit(137)
    failing = [r for r in records if _random.random() < float(config["raise_rate"])]
    for record in failing:
        # Written like a real record failure, so `conveyor dlq` finds the reason.
        _log(
            RAISE,
            message="record failed",
            message_id=record["messageId"],
            error="RuntimeError: injected by conveyor chaos",
        )
    rest = [r for r in records if r not in failing]
    result = real({**event, "Records": rest}, context) if rest else {"batchItemFailures": []}
    failures = list((result or {}).get("batchItemFailures", []))
    failures += [{"itemIdentifier": r["messageId"]} for r in failing]
    return {"batchItemFailures": failures}
