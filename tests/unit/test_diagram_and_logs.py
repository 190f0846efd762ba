"""The README's diagram is the topology's, and local logs merge in time order."""

from __future__ import annotations

import json
from pathlib import Path

from conveyor.diagram import BEGIN, END, graph, mermaid, pipelines, readme_block
from conveyor.local.logs import LogFollower, merged, parse_timestamp, render
from conveyor.topology import TOPOLOGY

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_diagram_is_drawn_from_the_topology() -> None:
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == readme_block(TOPOLOGY), "run `conveyor diagram` and update README"


def test_the_diagram_shows_every_trigger_subscription_and_notification() -> None:
    picture = mermaid(TOPOLOGY)
    for function, trigger in TOPOLOGY.sqs_triggered():
        queue = trigger.queue.replace("-", "_")
        assert f"queue_{queue} --> fn_{function.name}" in picture
    for sub in TOPOLOGY.subscriptions:
        assert (
            f"topic_{sub.topic.replace('-', '_')} --> queue_{sub.queue.replace('-', '_')}"
            in picture
        )
    assert "bucket_media -- uploads/ --> queue_images" in picture


def test_the_console_lays_each_pipeline_out_left_to_right_from_its_route() -> None:
    orders, media = pipelines(graph(TOPOLOGY))
    assert (orders.title, media.title) == ("POST /orders", "POST /uploads")
    assert [orders.columns[n] for n in ("route_orders", "fn_publisher", "topic_orders")] == [
        0,
        1,
        2,
    ]
    assert orders.columns["queue_billing"] == orders.columns["queue_archive"] == 3
    assert orders.columns["fn_billing"] == orders.columns["queue_billing_dlq"] == 4
    # The image function writes into the bucket that feeds it: that loop does not push
    # the bucket to the right of the function.
    assert (
        media.columns["bucket_media"] < media.columns["queue_images"] < media.columns["fn_images"]
    )
    assert {n.id for n in orders.nodes}.isdisjoint({n.id for n in media.nodes})
    every = {n.id for n in graph(TOPOLOGY).nodes}
    assert {n.id for n in orders.nodes} | {n.id for n in media.nodes} == every


def test_both_timestamp_formats_parse() -> None:
    powertools = parse_timestamp("2026-11-24 06:23:22,077+0000")
    runtime = parse_timestamp("2026-11-24T06:23:22.078000+00:00")
    assert powertools is not None
    assert runtime is not None
    assert powertools < runtime
    assert parse_timestamp("not a time") is None


def test_logs_merge_in_time_order_and_filter(tmp_path: Path) -> None:
    def write(name: str, *entries: dict[str, str]) -> None:
        (tmp_path / f"{name}.log").write_text(
            "\n".join(json.dumps(e) for e in entries) + "\nTraceback: not json\n"
        )

    write(
        "publisher",
        {
            "timestamp": "2026-11-24 10:00:00,100+0000",
            "message": "order accepted",
            "correlation_id": "r-1",
            "level": "INFO",
        },
        {
            "timestamp": "2026-11-24 10:00:02,000+0000",
            "message": "order accepted",
            "correlation_id": "r-2",
            "level": "INFO",
        },
    )
    write(
        "billing",
        {
            "timestamp": "2026-11-24 10:00:01,000+0000",
            "message": "order billed",
            "correlation_id": "r-1",
            "level": "INFO",
            "order_id": "o-1",
        },
    )
    write(
        "runtime",
        {
            "timestamp": "2026-11-24T10:00:00.500000+00:00",
            "message": "batch failed",
            "level": "WARNING",
        },
    )
    paths = sorted(tmp_path.glob("*.log"))
    everything = merged(paths)
    assert [e.fields["message"] for e in everything] == [
        "order accepted",
        "batch failed",
        "order billed",
        "order accepted",
    ]
    assert [e.source for e in merged(paths, correlation_id="r-1")] == ["publisher", "billing"]
    assert [e.source for e in merged(paths, function="billing")] == ["billing"]
    line = render(merged(paths, function="billing")[0])
    assert line.startswith("10:00:01.000 billing")
    assert "[r-1]" in line
    assert "order_id=o-1" in line


def test_the_follower_reads_only_new_complete_lines_from_where_it_began(tmp_path: Path) -> None:
    old, later = tmp_path / "billing.log", tmp_path / "images.log"
    old.write_text("before the runtime started\n")
    follower = LogFollower([old, later])
    assert follower.read() == []
    with old.open("a") as handle:
        handle.write("one\ntw")
    later.write_text("created after\n")
    assert sorted(follower.read()) == [(old, "one"), (later, "created after")]
    with old.open("a") as handle:
        handle.write("o\n")
    assert follower.read() == [(old, "two")]
    from_top = LogFollower([old], from_start=True)
    assert [line for _, line in from_top.read()] == ["before the runtime started", "one", "two"]
