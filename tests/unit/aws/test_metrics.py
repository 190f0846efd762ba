"""EMF metrics: what each function counts, and how the local runtime reads them back."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from conveyor.aws import metrics
from conveyor.functions import billing, images, publisher
from conveyor.local import emf
from conveyor.local.provision import Resources
from conveyor.ops.logs import LogFollower
from tests import samples
from tests.unit.conftest import context, order_json, signed_event, sqs_records
from tests.unit.functions.test_consumers import accepted_json, billing_env  # noqa: F401
from tests.unit.functions.test_media_functions import images_env, put_upload, s3_messages  # noqa: F401
from tests.unit.functions.test_publisher import publisher_env  # noqa: F401


def series(capsys: pytest.CaptureFixture[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(metric, reason) -> its series, from what the handler printed, read as the local
    runtime reads worker logs."""
    totals = emf.MetricTotals()
    for line in capsys.readouterr().out.splitlines():
        for sample in emf.samples(line):
            totals.add(sample)
    return {(s["name"], s["dimensions"].get("reason", "")): s for s in totals.snapshot()}


def emitted(capsys: pytest.CaptureFixture[str]) -> dict[tuple[str, str], float]:
    return {key: s["sum"] for key, s in series(capsys).items()}


@pytest.mark.usefixtures("publisher_env")
def test_the_publisher_counts_accepted_orders_and_rejections_by_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    publisher.handler(signed_event(order_json()), context("publisher"))
    publisher.handler(signed_event(order_json(currency="XXX")), context("publisher"))
    publisher.handler(signed_event(order_json(), secret="wrong" * 4), context("publisher"))
    publisher.handler(signed_event(b"", method="GET"), context("publisher"))
    assert emitted(capsys) == {
        (metrics.ORDERS_ACCEPTED, ""): 1,
        (metrics.ORDERS_REJECTED, "invalid_order"): 1,
        (metrics.ORDERS_REJECTED, "unauthorized"): 1,
        (metrics.ORDERS_REJECTED, "method_not_allowed"): 1,
    }


def test_billing_counts_what_it_billed_not_duplicates_and_counts_dead_letters(
    billing_env: Resources,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    batch = [accepted_json("o-1"), accepted_json("o-2"), accepted_json("o-1"), "{}"]
    billing.handler(sqs_records(batch), context("billing"))
    assert emitted(capsys) == {
        (metrics.ORDERS_BILLED, ""): 2,
        (metrics.MESSAGES_DEAD_LETTERED, ""): 1,
    }


def test_images_count_processed_failed_by_reason_and_time_the_work(
    images_env: Resources,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = put_upload(images_env, samples.webp(), "image/webp", ".webp", upload_id="a" * 32)
    bad = put_upload(images_env, samples.random_bytes(), "image/png", ".png", upload_id="b" * 32)
    capsys.readouterr()
    images.handler(s3_messages(good, bad), context("images"))
    found = series(capsys)
    assert found[(metrics.IMAGES_PROCESSED, "")]["sum"] == 1
    assert found[(metrics.IMAGES_FAILED, "not_an_image")]["sum"] == 1
    timing = found[(metrics.IMAGE_PROCESSING_TIME, "")]
    assert timing["unit"] == "Milliseconds"
    assert timing["samples"] == 1
    assert 0 < timing["sum"] < 60_000


def test_emf_lines_are_read_with_their_dimensions_and_value_lists() -> None:
    line = (
        '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"Conveyor",'
        '"Dimensions":[["service","reason"]],"Metrics":[{"Name":"ImagesFailed","Unit":"Count"},'
        '{"Name":"Took","Unit":"Milliseconds"}]}]},"service":"images","reason":"too_large",'
        '"ImagesFailed":[1,1],"Took":12.5,"other":"x"}'
    )
    [failed, took] = emf.samples(line)
    assert failed == emf.Sample(
        "ImagesFailed", "Count", (1.0, 1.0), (("reason", "too_large"), ("service", "images"))
    )
    assert took.values == (12.5,)
    totals = emf.MetricTotals()
    for sample in (failed, took, took):
        totals.add(sample)
    assert emf.total(totals.snapshot(), "ImagesFailed") == 2
    [took_series] = [s for s in totals.snapshot() if s["name"] == "Took"]
    assert (took_series["samples"], took_series["sum"], took_series["max"]) == (2, 25.0, 12.5)


@pytest.mark.parametrize(
    "line",
    [
        '{"level":"INFO","message":"order billed"}',
        "Traceback (most recent call last):",
        '{"_aws": "not a dict"}',
        '{"_aws":{"CloudWatchMetrics":[{"Metrics":[{"Name":"X"}]}]},"X":"seven"}',
        '["_aws"]',
    ],
)
def test_lines_that_are_not_emf_are_ignored(line: str) -> None:
    assert emf.samples(line) == []


def test_the_collector_feeds_totals_and_reads_once_more_when_stopped(tmp_path: Path) -> None:
    log = tmp_path / "publisher.log"
    log.write_text("")
    totals, stop = emf.MetricTotals(), threading.Event()
    thread = threading.Thread(
        target=emf.collect, args=(LogFollower([log]), totals, stop), daemon=True
    )
    thread.start()
    line = (
        '{"_aws":{"CloudWatchMetrics":[{"Namespace":"Conveyor","Dimensions":[["service"]],'
        '"Metrics":[{"Name":"OrdersAccepted","Unit":"Count"}]}]},"service":"publisher",'
        '"OrdersAccepted":[1]}\n'
    )
    log.write_text(line * 3)
    stop.set()
    thread.join(timeout=5)
    assert emf.total(totals.snapshot(), "OrdersAccepted") == 3
