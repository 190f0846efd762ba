"""The canary function without a stack to call: what it does when it cannot sign, how it
names a run, and what it counts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conveyor.aws import metrics
from conveyor.functions import canary
from conveyor.local.provision import Resources
from conveyor.topology import CANARY, CANARY_CLIENTS, TOPOLOGY
from conveyor.verify import checks
from tests.unit.conftest import context


@pytest.fixture
def canary_env(resources: Resources, monkeypatch: pytest.MonkeyPatch) -> None:
    topology = TOPOLOGY.with_canary()
    for grant in CANARY.grants:
        if grant.env:
            monkeypatch.setenv(grant.env, resources.identifier(grant.kind, grant.resource))
    for setting, value in topology.settings(CANARY).items():
        monkeypatch.setenv(setting, value)
    monkeypatch.setenv("API_URL", "http://127.0.0.1:9")  # nothing listens: never reached
    monkeypatch.setenv("MEDIA_BASE_URL", "http://127.0.0.1:9/media")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "canary")


def emf_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def value(blob: dict[str, Any], name: str) -> float:
    """A metric's value in an EMF blob (Powertools writes a list when it adds more)."""
    found = blob[name]
    return float(found[0] if isinstance(found, list) else found)


def test_without_its_clients_every_check_fails_saying_how_to_add_them(
    canary_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    report = canary.handler({}, context("canary"))
    assert [c["name"] for c in report["checks"]] == [c.name for c in checks.CLIENT]
    assert {c["outcome"] for c in report["checks"]} == {"fail"}
    assert all(CANARY_CLIENTS[0] in c["detail"] for c in report["checks"])
    assert "conveyor clients" in report["checks"][0]["detail"]
    blobs = emf_lines(capsys.readouterr().out)
    per_check = [b for b in blobs if metrics.CANARY_CHECK_FAILED in b]
    assert sorted(b["check"] for b in per_check) == sorted(c.name for c in checks.CLIENT)
    assert {value(b, metrics.CANARY_CHECK_FAILED) for b in per_check} == {1.0}
    [run] = [b for b in blobs if metrics.CANARY_RUNS in b]
    assert value(run, metrics.CANARY_CHECKS_FAILED) == len(checks.CLIENT)
    # Its service dimension, which the alarm names, is the worker's (the integration
    # test reads it): this process imported Powertools before the test set the name.
    assert run["_aws"]["CloudWatchMetrics"][0]["Namespace"] == metrics.NAMESPACE


def test_a_run_is_named_by_its_schedule_when_the_event_says_it() -> None:
    named = canary.run_id(
        {"scheduled_at": "2026-12-06T23:05:00Z", "execution_id": "d32c5kddcf5bb8c3"}
    )
    assert named == "canary-20261206230500-d32c5kdd"
    assert canary.run_id({}).startswith("canary-")
    assert canary.run_id({}) != canary.run_id({}), "without an execution id, a random part"


def test_the_canary_runs_only_client_checks() -> None:
    assert checks.CLIENT
    assert not [c for c in checks.CLIENT if c.operator]
    assert [c for c in checks.CHECKS if not c.operator] == list(checks.CLIENT)
