"""The cost estimate's arithmetic, checked by hand on the lines that are easy to check."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.ops.cost import HOURS_PER_MONTH, Measured, Prices, Volume, estimate

README = Path(__file__).resolve().parents[3] / "README.md"


def test_fixed_lines_do_not_depend_on_volume() -> None:
    idle = estimate(Volume(orders=0, images=0))
    busy = estimate(Volume(orders=5_000_000, images=100_000))
    endpoints = "VPC interface endpoints (4 x 2 AZs)"
    assert idle.lines[endpoints] == busy.lines[endpoints] == pytest.approx(4 * 2 * 730 * 0.01)
    assert idle.lines["ALB hours and LCUs"] == pytest.approx(HOURS_PER_MONTH * 0.0225)


def test_lambda_compute_is_billed_per_rounded_millisecond_and_memory() -> None:
    measured = Measured(
        publisher_ms=10.2, billing_batch_ms=0, archive_batch_ms=0, presign_ms=0, image_ms=0
    )
    result = estimate(Volume(orders=1_000_000, images=0), measured, Prices())
    # 1 M invocations x 11 ms x 256 MB = 2,750 GB-s
    assert result.lines["Lambda compute (GB-s)"] == pytest.approx(2750 * 0.0000133334)


def test_volume_driven_lines_grow_with_volume() -> None:
    small, large = estimate(Volume(orders=100_000)), estimate(Volume(orders=10_000_000))
    for line in (
        "SNS publishes",
        "S3 requests (archive, uploads, variants)",
        "DynamoDB on-demand writes and storage",
        "Lambda compute (GB-s)",
    ):
        assert large.lines[line] > small.lines[line] * 10, line
    # one publish per order and one per image, at the list price per million
    publishes = (10_000_000 + Volume().images) / 1e6
    assert large.lines["SNS publishes"] == pytest.approx(publishes * Prices().sns_million_publishes)


def test_a_download_heavy_volume_makes_the_cdn_the_largest_line() -> None:
    heavy = estimate(Volume(orders=0, images=1_000_000, downloads_per_image=1000))
    assert heavy.dominant == "CloudFront (variant downloads)"


def test_at_the_default_volume_the_private_network_dominates() -> None:
    assert estimate().dominant == "VPC interface endpoints (4 x 2 AZs)"


def test_the_idle_floor_is_what_the_readme_states() -> None:
    idle = estimate(Volume(orders=0, images=0))
    assert idle.total == pytest.approx(82.01, abs=0.005)
    assert "**The idle floor is $82.01 a" in README.read_text()


def test_snap_start_adds_its_cache_for_every_function_and_a_restore_per_new_environment() -> None:
    plain = estimate()
    snapped = estimate(snap_start=True)
    added = {line: usd for line, usd in snapped.lines.items() if line not in plain.lines}
    assert set(added) == {"SnapStart snapshot cache", "SnapStart restores"}
    assert {k: v for k, v in snapped.lines.items() if k in plain.lines} == plain.lines
    # 4 functions of 256 MB and one of 1024 MB, cached all month.
    cache_gb = (4 * 256 + 1024) / 1024
    assert added["SnapStart snapshot cache"] == pytest.approx(cache_gb * 730 * 3600 * 0.0000015046)
    more_cold = estimate(Volume(cold_start_share=0.05), snap_start=True)
    assert more_cold.lines["SnapStart restores"] == pytest.approx(10 * added["SnapStart restores"])
    assert more_cold.lines["SnapStart snapshot cache"] == added["SnapStart snapshot cache"]
