"""The cost estimate's arithmetic, checked by hand on the lines that are easy to check."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.ops.cost import (
    HOURS_PER_MONTH,
    Deployment,
    Estimate,
    FreeTier,
    Measured,
    Prices,
    Spans,
    Volume,
    alarm_count,
    estimate,
    span_gb,
)
from conveyor.topology import TOPOLOGY, Profile

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
    assert idle.total == pytest.approx(82.11, abs=0.005)
    assert "**The idle floor is $82.11 a" in README.read_text()


LEAN = Deployment(profile=Profile.LEAN)
SOURCE_VOLUME = Volume(orders=100_000, images=10_000)
"""The volume the image pipeline this system was designed from is priced at."""


def test_lean_at_the_source_designs_volume_costs_at_most_five_dollars() -> None:
    lean = estimate(SOURCE_VOLUME, deployment=LEAN, free_tier=True)
    assert lean.total <= 5.00


def test_the_readme_states_what_each_profile_costs() -> None:
    for profile in Profile:
        deployed = Deployment(profile=profile)
        figures = [
            estimate(Volume(orders=0, images=0), deployment=deployed, free_tier=True).total,
            estimate(SOURCE_VOLUME, deployment=deployed, free_tier=True).total,
            estimate(deployment=deployed).total,
        ]
        row = f"| {profile} | " + " | ".join(f"{usd:.2f}" for usd in figures) + " |"
        assert row in README.read_text()


def test_lean_has_no_network_and_no_load_balancer_but_an_http_api_priced_per_request() -> None:
    lean = estimate(SOURCE_VOLUME, deployment=LEAN)
    assert not [line for line in lean.lines if line.startswith(("VPC", "ALB"))]
    requests = SOURCE_VOLUME.orders + SOURCE_VOLUME.images
    assert lean.lines["API Gateway HTTP API requests"] == pytest.approx(requests / 1e6 * 1.00)
    assert "CloudFront (API requests)" in lean.lines
    direct = estimate(SOURCE_VOLUME, deployment=Deployment(profile=Profile.LEAN, api_cdn=False))
    assert "CloudFront (API requests)" not in direct.lines
    private = estimate(SOURCE_VOLUME)
    assert private.total - lean.total > 70, "the endpoints and the load balancer"


def test_idle_lean_costs_its_key_its_secret_its_alarms_past_the_free_ten_and_idle_polling() -> None:
    idle = estimate(Volume(orders=0, images=0), deployment=LEAN, free_tier=True)
    charged = {line: usd for line, usd in idle.lines.items() if usd > 0.005}
    polls = 3 * 5 * 3 * 60 * HOURS_PER_MONTH  # 3 mappings, 5 pollers, 3 long polls a minute
    assert charged == pytest.approx(
        {
            "KMS key (alarm topic)": 1.00,
            "Secrets Manager": 0.40,
            f"CloudWatch alarms ({alarm_count(TOPOLOGY)}, on 20 metrics)": (20 - 10) * 0.10,
            "SQS requests (batches and idle polling)": (polls - 1_000_000) / 1e6 * 0.40,
        }
    )
    assert idle.total == pytest.approx(2.79, abs=0.005)


def test_the_free_tier_is_applied_only_when_asked_and_always_said() -> None:
    listed = estimate(SOURCE_VOLUME, deployment=LEAN)
    free = estimate(SOURCE_VOLUME, deployment=LEAN, free_tier=True)
    assert any("no free tier" in a for a in listed.assumptions)
    assert any("free tiers every account keeps" in a for a in free.assumptions)
    assert any("HTTP API at $1.00 per million" in a for a in free.assumptions)
    # Lambda's 1 M requests and 400,000 GB-s cover this volume; the HTTP API's free
    # million is a new account's for a year only, so it is not subtracted.
    assert listed.lines["Lambda requests"] > 0
    assert free.lines["Lambda requests"] == free.lines["Lambda compute (GB-s)"] == 0
    api = "API Gateway HTTP API requests"
    assert free.lines[api] == listed.lines[api] > 0
    # Ten alarm metrics are free, so 20 alarms cost what 10 do without the tier.
    alarms = next(line for line in free.lines if line.startswith("CloudWatch alarms"))
    assert listed.lines[alarms] - free.lines[alarms] == pytest.approx(
        FreeTier().alarm_metrics * 0.10
    )
    assert free.total < listed.total


def test_one_free_allowance_is_shared_by_the_lines_that_use_it() -> None:
    # CloudFront's 10 M free requests cover the API's and the downloads' together.
    heavy = Volume(orders=6_000_000, images=100_000, downloads_per_image=50)
    free = estimate(heavy, deployment=LEAN, free_tier=True)
    listed = estimate(heavy, deployment=LEAN)
    api, downloads = "CloudFront (API requests)", "CloudFront (variant downloads)"
    assert free.lines[api] == 0, "the first 10 M requests"
    saved = listed.lines[api] + listed.lines[downloads] - free.lines[api] - free.lines[downloads]
    requests_saved = 10_000_000 / 10_000 * Prices().cloudfront_10k_requests
    gb = heavy.images * heavy.downloads_per_image * heavy.variants_kb / 3 / 1024 / 1024
    gb += (heavy.orders + heavy.images) / 1024 / 1024
    assert saved == pytest.approx(requests_saved + min(gb, 1024) * Prices().cloudfront_gb)


def test_snap_start_adds_its_cache_for_every_function_and_a_restore_per_new_environment() -> None:
    plain = estimate()
    snapped = estimate(deployment=Deployment(snap_start=True))
    added = {line: usd for line, usd in snapped.lines.items() if line not in plain.lines}
    assert set(added) == {"SnapStart snapshot cache", "SnapStart restores"}
    assert {k: v for k, v in snapped.lines.items() if k in plain.lines} == plain.lines
    # 4 functions of 256 MB and one of 1024 MB, cached all month.
    cache_gb = (4 * 256 + 1024) / 1024
    assert added["SnapStart snapshot cache"] == pytest.approx(cache_gb * 730 * 3600 * 0.0000015046)
    more_cold = estimate(Volume(cold_start_share=0.05), deployment=Deployment(snap_start=True))
    assert more_cold.lines["SnapStart restores"] == pytest.approx(10 * added["SnapStart restores"])
    assert more_cold.lines["SnapStart snapshot cache"] == added["SnapStart snapshot cache"]


def test_the_canary_is_priced_with_its_traffic_metrics_and_alarms() -> None:
    from conveyor.ops.cost import CanaryRun

    plain = estimate(Volume(orders=0, images=0), deployment=LEAN, free_tier=True)
    watched = estimate(
        Volume(orders=0, images=0),
        deployment=Deployment(profile=Profile.LEAN, canary_every=5),
        free_tier=True,
    )
    assert watched.total > plain.total
    assert "Canary runs (Lambda and EventBridge Scheduler)" in watched.lines
    metric_line = next(n for n in watched.lines if n.startswith("CloudWatch custom metrics"))
    assert f"({CanaryRun().metrics + 6} series)" in metric_line
    assert any("the canary every 5 min" in said for said in watched.assumptions)
    rarer = estimate(
        Volume(orders=0, images=0),
        deployment=Deployment(profile=Profile.LEAN, canary_every=60),
        free_tier=True,
    )
    assert plain.total < rarer.total < watched.total


def traces_line(result: Estimate) -> float:
    [line] = [name for name in result.lines if name.startswith("Traces")]
    return result.lines[line]


def test_traces_cost_the_sampled_spans_and_lambdas_own_segments_as_logs() -> None:
    spans = Spans()
    invocations = 1_000_000 + 2 * 1_000_000 / Measured().messages_per_batch + 2 * 10_000
    lambda_gb = invocations * spans.lambda_per_invocation * spans.kb / 1024 / 1024
    ours_gb = (1_000_000 * spans.per_order + 10_000 * spans.per_image) * spans.kb / 1024 / 1024
    for share in (0.0, 0.05, 1.0):
        priced = traces_line(estimate(deployment=Deployment(trace_sample=share)))
        assert priced == pytest.approx((lambda_gb + share * ours_gb) * 0.50), share
    # Past one request a second, X-Ray's default rule samples 5% of Lambda's invocations.
    busy = Volume(orders=10_000_000, images=0)
    busy_invocations = 10_000_000 * (1 + 2 / Measured().messages_per_batch)
    reservoir = HOURS_PER_MONTH * 3600
    sampled = reservoir + 0.05 * (busy_invocations - reservoir)
    assert span_gb(busy, busy_invocations, 0.0) == pytest.approx(
        sampled * spans.lambda_per_invocation * spans.kb / 1024 / 1024
    )
    idle = estimate(Volume(orders=0, images=0))
    assert traces_line(idle) == 0, "no traffic, no spans"
    assert any("trace_sample" in said for said in estimate().assumptions)
