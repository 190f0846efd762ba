"""A trace's waterfall from kept spans: parent order, the queue wait, retries, and how a
trace is found by an order, an upload or its own id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from conveyor.cli.render import waterfall as drawn
from conveyor.core import spans
from conveyor.ops import traces

MS = 1_000_000
EPOCH_NS = 1_796_000_000_000 * MS


def span(
    span_id: str,
    parent: str = "",
    *,
    start_ms: float,
    took_ms: float,
    trace_id: str = "a" * 32,
    service: str = "publisher",
    kind: str = "internal",
    **attributes: Any,
) -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": span_id,
        "kind": kind,
        "service": service,
        "start_ns": EPOCH_NS + int(start_ms * MS),
        "end_ns": EPOCH_NS + int((start_ms + took_ms) * MS),
        "error": attributes.pop("error", False),
        "attributes": attributes,
        "links": [],
    }


def record(span_id: str, attempt: int, start_ms: float, **more: Any) -> dict[str, Any]:
    return span(
        span_id,
        "publish",
        start_ms=start_ms,
        took_ms=5,
        service="billing",
        kind="consumer",
        **{
            spans.RECEIVE_COUNT: attempt,
            spans.SENT_AT_MS: EPOCH_NS // MS + 20,
            spans.OUTCOME: more.pop("outcome", "failed"),
            spans.ORDER_ID: "o-1",
        },
        **more,
    )


ORDER = [
    # Arrival order is not time order: the receiver keeps spans as they end.
    record("attempt-2", 2, start_ms=160),
    span("publisher", start_ms=0, took_ms=40, kind="server", **{spans.ORDER_ID: "o-1"}),
    span("publish", "publisher", start_ms=15, took_ms=5, kind="producer"),
    span("put", "publisher", start_ms=5, took_ms=5, kind="client"),
    record("attempt-1", 1, start_ms=30, error=True),
    span("write", "attempt-2", start_ms=161, took_ms=2, service="billing", kind="client"),
    span("elsewhere", "unknown-parent", start_ms=200, took_ms=1, service="archive"),
]


def test_hops_follow_their_parents_and_siblings_their_start() -> None:
    found = traces.waterfall(ORDER, "a" * 32)
    assert [(h.name, h.depth) for h in found.hops] == [
        ("publisher", 0),
        ("put", 1),
        ("publish", 1),
        ("attempt-1", 2),
        ("attempt-2", 2),
        ("write", 3),
        ("elsewhere", 0),  # its parent was never kept: a root of its own
    ]
    assert found.duration_ms == pytest.approx(201)
    assert found.services == ("publisher", "billing", "archive")


def test_a_record_says_how_long_its_message_waited_and_which_attempt_it_was() -> None:
    hops = {h.name: h for h in traces.waterfall(ORDER, "a" * 32).hops}
    assert hops["attempt-1"].waited_ms == pytest.approx(10)
    assert hops["attempt-2"].waited_ms == pytest.approx(140)
    assert (hops["attempt-1"].attempt, hops["attempt-2"].attempt) == (1, 2)
    assert hops["attempt-1"].error
    assert hops["put"].waited_ms is None
    assert hops["put"].attempt is None
    assert traces.waterfall(ORDER, "a" * 32).retries == 1


def test_a_trace_is_found_by_its_id_its_order_or_its_upload_newest_first() -> None:
    later = [
        span("again", start_ms=500, took_ms=1, trace_id="b" * 32, **{spans.ORDER_ID: "O-1"}),
        span("upload", start_ms=10, took_ms=1, trace_id="c" * 32, **{spans.UPLOAD_ID: "u-7"}),
    ]
    kept = ORDER + later
    assert traces.traces_of(kept, "o-1") == ["b" * 32, "a" * 32]
    assert traces.traces_of(kept, "u-7") == ["c" * 32]
    assert traces.traces_of(kept, "A" * 32) == ["a" * 32]
    assert traces.traces_of(kept, "nothing") == []


def test_find_reads_the_kept_file_skipping_a_line_a_crash_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in ORDER) + '{"trace_id": "a')
    assert traces.find(path, "o-1").trace_id == "a" * 32
    with pytest.raises(traces.TraceNotFoundError, match="no trace of 'o-2'"):
        traces.find(path, "o-2")
    with pytest.raises(traces.TraceNotFoundError):
        traces.find(tmp_path / "absent.jsonl", "o-1")


def test_the_terminal_waterfall_places_each_bar_in_the_whole_trace() -> None:
    console = Console(width=200)
    with console.capture() as captured:
        console.print(drawn(traces.waterfall(ORDER, "a" * 32)))
    text = captured.get()
    assert "1 retry" in text
    assert "10 ms" in text, "each record's queue wait"
    assert "140 ms" in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    bar = rows["publisher"].split("│")[-2]
    late = rows["elsewhere"].split("│")[-2]
    assert late.rstrip().endswith("█"), "the last hop ends the trace"
    assert bar.index("█") < late.index("█") - 20, "the first starts it, far to the left"
