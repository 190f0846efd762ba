"""The canary in local mode (``conveyor up --canary``), behind each profile's edge: on a
sound stack every client check passes and each is counted, its traffic expires, and a
publisher without a property makes exactly that property's checks fail and be counted
as failed, which is what the deployed alarm fires on."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.aws import metrics
from conveyor.local.runtime import LocalRuntime, Started
from conveyor.ops import clients as documents
from conveyor.topology import CANARY_CLIENTS, CLIENT_SECRETS, ORDERS_TABLE, Profile
from conveyor.verify import checks
from tests.integration.conftest import BROKEN_PROPERTIES, canary_runtime, first_run

pytestmark = pytest.mark.integration

CLIENT_CHECKS = [c.name for c in checks.CLIENT]


def counted(runtime: LocalRuntime, name: str, **dimensions: str) -> list[float]:
    """The sums of ``name`` in the series whose dimensions include ``dimensions``, once
    the run's count is in: the canary writes it after every other."""
    deadline = time.monotonic() + 30  # the metrics are read from the worker's log
    while not any(s["name"] == metrics.CANARY_RUNS for s in runtime.metrics.snapshot()):
        assert time.monotonic() < deadline, "the canary's run was never counted"
        time.sleep(0.2)
    return [
        s["sum"]
        for s in runtime.metrics.snapshot()
        if s["name"] == name and dimensions.items() <= s["dimensions"].items()
    ]


@pytest.fixture(scope="module")
def sound(
    tmp_path_factory: pytest.TempPathFactory, profile: Profile
) -> Iterator[tuple[LocalRuntime, Started, dict[str, Any]]]:
    runtime = canary_runtime(tmp_path_factory.mktemp(f"canary-{profile}"), profile)
    with runtime as started:
        yield runtime, started, first_run(runtime)


def test_on_a_sound_stack_every_client_check_passes_or_cannot_apply(
    sound: tuple[LocalRuntime, Started, dict[str, Any]],
) -> None:
    _, _, report = sound
    outcomes = {c["name"]: c["outcome"] for c in report["checks"]}
    assert list(outcomes) == CLIENT_CHECKS
    details = {c["name"]: c["detail"] for c in report["checks"]}
    assert {n for n, o in outcomes.items() if o != "pass"} == {"https-only"}, details
    assert outcomes["https-only"] == "skip", "the local gateway is plain HTTP"
    assert report["run"]["client"] == CANARY_CLIENTS[0]
    assert report["run"]["id"].startswith("canary-")


def test_each_check_and_the_run_are_counted(
    sound: tuple[LocalRuntime, Started, dict[str, Any]],
) -> None:
    runtime, _, _ = sound
    assert counted(runtime, metrics.CANARY_RUNS, service="canary") == [1.0]
    assert counted(runtime, metrics.CANARY_CHECKS_FAILED, service="canary") == [0.0]
    for name in CLIENT_CHECKS:
        found = counted(runtime, metrics.CANARY_CHECK_FAILED, check=name)
        assert found == ([] if name == "https-only" else [0.0]), name


def test_the_canarys_clients_are_enrolled_and_its_orders_expire(
    sound: tuple[LocalRuntime, Started, dict[str, Any]],
) -> None:
    _, started, _ = sound
    document = documents.read(
        started.clients("secretsmanager"), started.info.resources.secrets[CLIENT_SECRETS]
    )
    assert set(CANARY_CLIENTS) <= set(document)
    orders = started.clients("dynamodb").query(
        TableName=started.info.resources.tables[ORDERS_TABLE],
        KeyConditionExpression="client_id = :c",
        ExpressionAttributeValues={":c": {"S": CANARY_CLIENTS[0]}},
    )["Items"]
    assert orders, "the canary made orders"
    for item in orders:
        accepted = time.mktime(time.strptime(item["accepted_at"]["S"][:19], "%Y-%m-%dT%H:%M:%S"))
        lifetime = int(item["expires_at"]["N"]) - accepted
        assert abs(lifetime - 86_400) < 86_400 / 2, item


def test_the_runs_are_kept_in_the_state_directory(
    sound: tuple[LocalRuntime, Started, dict[str, Any]],
) -> None:
    _, started, report = sound
    kept = (started.state_dir / "canary.jsonl").read_text().splitlines()
    assert json.loads(kept[0])["run"]["id"] == report["run"]["id"]


@pytest.mark.parametrize(("broken_property", "caught_by"), **BROKEN_PROPERTIES)
def test_a_publisher_without_a_property_fails_exactly_its_checks_and_counts_them(
    tmp_path: Path, broken_property: str, caught_by: set[str]
) -> None:
    handler = f"tests.integration.broken_publisher:{broken_property}"
    runtime = canary_runtime(tmp_path, Profile.LEAN, handler)
    with runtime:
        report = first_run(runtime)
        failed = {c["name"] for c in report["checks"] if c["outcome"] == "fail"}
        assert failed == caught_by, {c["name"]: c["detail"] for c in report["checks"]}
        total = counted(runtime, metrics.CANARY_CHECKS_FAILED, service="canary")
        assert total == [float(len(caught_by))]
        for name in caught_by:
            assert counted(runtime, metrics.CANARY_CHECK_FAILED, check=name) == [1.0]
