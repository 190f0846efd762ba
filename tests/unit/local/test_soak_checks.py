"""The soak's bookkeeping: it must find an image in the DLQ the way S3 names it, and
count every kind of fault it was asked to inject."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import pytest

from conveyor.local.chaos import FaultPlan
from conveyor.local.soak import DEFAULT_PLAN, SoakReport, _order_ids, _upload_ids, fast_topology

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef


def test_upload_ids_are_read_from_url_encoded_s3_event_keys() -> None:
    event = {"Records": [{"s3": {"object": {"key": quote_plus("uploads/abc123.jpg")}}}]}
    messages: list[MessageTypeDef] = [
        {"Body": json.dumps(event)},
        {"Body": "not json"},
        {"Body": "[1]"},
    ]
    assert _upload_ids(messages) == {"abc123"}


def test_order_ids_are_read_from_order_messages() -> None:
    messages: list[MessageTypeDef] = [
        {"Body": json.dumps({"order_id": "o-1"})},
        {"Body": json.dumps({"x": 1})},
    ]
    assert _order_ids(messages) == {"o-1"}


def test_the_soak_topology_keeps_six_times_each_consumers_timeout() -> None:
    topology = fast_topology()
    assert topology.problems() == []
    assert topology.function("images").timeout_s == 8
    assert topology.queue("images").visibility_timeout_s == 48


def test_a_fault_the_plan_asks_for_that_never_fires_fails_the_soak() -> None:
    plan = FaultPlan(raise_rate=0.1, throttle_rate=0.05)
    assert plan.configured() == ["raise", "throttled batch"]
    report = SoakReport(configured=plan.configured(), settled=True)
    report.injected.update({"raise": 3})
    assert report.never_injected == ["throttled batch"]
    assert not report.ok, "a throttle that never fired proves nothing about throttles"
    assert ("faults asked for that never fired", "throttled batch") in report.rows()
    report.injected.update({"throttled batch": 1})
    assert report.ok
    assert ("injected: throttled batch", "1") in report.rows()


def test_make_soak_injects_every_fault_of_the_default_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from conveyor.cli.app import app

    planned: list[FaultPlan] = []

    def fake_soak(*args: Any, **kwargs: Any) -> SoakReport:
        plan: FaultPlan = args[3]
        planned.append(plan)
        report = SoakReport(configured=plan.configured(), settled=True)
        report.injected.update(plan.configured())
        return report

    monkeypatch.setattr("conveyor.local.soak.run_soak", fake_soak)
    result = CliRunner().invoke(app, ["soak", "--orders", "1"])
    assert result.exit_code == 0, result.output
    [plan] = planned
    assert plan == DEFAULT_PLAN, "every rate of the default plan reaches the soak"
    assert plan.throttle_rate > 0
