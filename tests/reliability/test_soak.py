"""A reduced soak (what `make soak` does with 5,000 orders) runs in every test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.local.chaos import FaultPlan
from conveyor.local.soak import run_soak
from conveyor.topology import Profile

pytestmark = pytest.mark.integration


SETTLE_S = 420
"""How long the pipelines may take to settle: each retry waits out a visibility timeout
(24 s for orders, 48 s for images in the soak), a message may need several, and the
test shares two cores with the rest of the suite (126-226 s measured)."""


@pytest.mark.timeout(SETTLE_S + 120)
@pytest.mark.parametrize("profile", list(Profile), ids=str)
def test_under_every_kind_of_fault_nothing_accepted_is_lost_or_done_twice(
    tmp_path: Path, profile: Profile
) -> None:
    plan = FaultPlan(
        raise_rate=0.05,
        crash_rate=0.15,
        aws_error_rate=0.02,
        duplicate_rate=0.05,
        throttle_rate=0.05,
    )
    report = run_soak(
        tmp_path, orders=300, images=6, plan=plan, timeout_s=SETTLE_S, profile=profile
    )
    # A string, not a dict: pytest shows a long string whole where it cuts a dict short.
    summary = "; ".join(f"{name}: {value}" for name, value in report.rows())
    assert report.settled, summary
    assert report.configured == ["raise", "crash", "aws_error", "duplicate", "throttled batch"]
    for kind in report.configured:
        assert report.injected[kind] > 0, f"no {kind} was injected: {summary}"
    assert report.never_injected == [], summary
    assert report.orders_accepted == 270, f"one request in ten is bad on purpose: {summary}"
    assert report.unexpected_5xx == 0, summary
    assert report.lost == [], summary
    assert report.duplicated == [], summary
    assert report.billed + report.in_dlq["billing-dlq"] >= report.orders_accepted, summary
    assert report.archived + report.in_dlq["archive-dlq"] >= report.orders_accepted, summary
    assert report.images_unaccounted == [], summary
    assert report.dead_without_reason == [], f"every dead letter says why it is there: {summary}"
