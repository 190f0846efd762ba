"""The local schedule: each run's report kept in the state directory (a restart loses
none), an invocation that errs kept as an errored run, and the event the deployed
schedule sends."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.local.canary import CanaryRuns, scheduled_event
from conveyor.local.workers import Invocation


def report(run_id: str) -> dict[str, Any]:
    return {"run": {"id": run_id}, "summary": {"pass": 1, "fail": 0, "skip": 0}, "checks": []}


def test_reports_survive_a_restart_newest_first(tmp_path: Path) -> None:
    ids = iter(["a", "b"])
    first = CanaryRuns(lambda _: Invocation(result=report(next(ids))), 60, tmp_path)
    first.run_once()
    first.run_once()
    again = CanaryRuns(lambda _: Invocation(result=report("c")), 60, tmp_path)
    assert [r["run"]["id"] for r in again.latest()] == ["b", "a"]


def test_an_invocation_that_errs_is_kept_as_an_errored_run(tmp_path: Path) -> None:
    runs = CanaryRuns(
        lambda _: Invocation(error="boom", error_type="RuntimeError", duration_ms=12.0),
        60,
        tmp_path,
    )
    kept = runs.run_once()
    assert kept["run"]["error"] == "RuntimeError: boom"
    assert kept["seconds"] == 0.012


def test_it_runs_at_once_then_every_interval_until_stopped(tmp_path: Path) -> None:
    events: list[dict[str, str]] = []

    def invoke(event: dict[str, str]) -> Invocation:
        events.append(event)
        return Invocation(result=report(str(len(events))))

    runs = CanaryRuns(invoke, 0.01, tmp_path)
    stop = threading.Event()
    worker = threading.Thread(target=runs.run, args=(stop,))
    worker.start()
    with runs.finished:
        assert runs.finished.wait_for(lambda: len(runs.runs) >= 2, 10)
    stop.set()
    worker.join(5)
    assert not worker.is_alive()
    assert len({e["execution_id"] for e in events}) == len(events)


def test_the_event_carries_the_scheduled_time_as_scheduler_writes_it() -> None:
    event = scheduled_event(datetime(2026, 12, 6, 23, 5, tzinfo=UTC))
    assert event["scheduled_at"] == "2026-12-06T23:05:00Z"
    assert len(event["execution_id"]) == 16
