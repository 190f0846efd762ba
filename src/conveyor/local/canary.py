"""The canary on the laptop: what EventBridge Scheduler does for it in AWS.

``conveyor up --canary`` runs the canary function (``conveyor.functions.canary``) in its
own worker, with its role, once the stack is up and then every interval, with the event
the deployed schedule sends. Each run's report is kept in the state directory
(``canary.jsonl``, so a restart loses none) and shown by the console.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.local.workers import Invocation
from conveyor.ops import clients as documents
from conveyor.topology import CANARY_CLIENTS

log = logging.getLogger(__name__)

REPORTS = "canary.jsonl"
KEPT = 50
"""How many runs the console can show."""


def scheduled_event(at: datetime) -> dict[str, str]:
    """What the deployed schedule sends: its scheduled time and an execution id."""
    return {
        "scheduled_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "execution_id": secrets.token_hex(8),
    }


def enroll(secretsmanager: Any, secret_id: str) -> list[str]:
    """Add the canary's clients to the client secrets where they are missing, as an
    operator does once after a deploy; the ids added."""

    def missing_ones(document: documents.Document) -> list[str]:
        added = [c for c in CANARY_CLIENTS if not document.get(c)]
        for client_id in added:
            documents.add(document, client_id)
        return added

    return documents.edit(secretsmanager, secret_id, missing_ones)


class CanaryRuns:
    """Runs the canary every ``every_s`` seconds, and keeps what each run reported."""

    def __init__(
        self, invoke: Callable[[Any], Invocation], every_s: float, state_dir: Path
    ) -> None:
        self.invoke = invoke
        self.every_s = every_s
        self.path = state_dir / REPORTS
        self.runs: deque[dict[str, Any]] = deque(maxlen=KEPT)
        self._lock = threading.Lock()
        self.finished = threading.Condition(self._lock)
        if self.path.exists():
            for line in self.path.read_text().splitlines()[-KEPT:]:
                try:
                    self.runs.append(json.loads(line))
                except ValueError:
                    log.warning("a canary report in %s could not be read; skipped", self.path)

    def latest(self) -> list[dict[str, Any]]:
        """The kept runs, newest first."""
        with self._lock:
            return list(reversed(self.runs))

    def run_once(self) -> dict[str, Any]:
        at = datetime.now(UTC)
        outcome = self.invoke(scheduled_event(at))
        if outcome.failed:
            report: dict[str, Any] = {
                "run": {"id": None, "error": f"{outcome.error_type}: {outcome.error}"},
                "summary": {"pass": 0, "fail": 0, "skip": 0},
                "checks": [],
            }
        else:
            report = dict(outcome.result)
        report["started_at"] = at.isoformat()
        report["seconds"] = round(outcome.duration_ms / 1000, 3)
        with self._lock:
            self.runs.append(report)
            with self.path.open("a") as kept:
                kept.write(json.dumps(report, default=str) + "\n")
            self.finished.notify_all()
        log.info("canary run %s: %s", report["run"].get("id"), report["summary"])
        return report

    def run(self, stop: threading.Event) -> None:
        """Run now, then every interval, until ``stop``."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # the next run is the retry, as in AWS
                log.exception("the canary run failed")
            stop.wait(self.every_s)
