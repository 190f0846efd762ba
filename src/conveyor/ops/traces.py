"""One order's or upload's trace as a waterfall: each hop, when it started, how long it
took, how long its message waited in a queue, which attempt it was, how it ended.

Pure: it reads spans as the local stack keeps them (:mod:`conveyor.local.traces`) and
gives the rows that ``conveyor trace`` prints and the console draws.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from conveyor.core.spans import ORDER_ID, OUTCOME, RECEIVE_COUNT, SENT_AT_MS, UPLOAD_ID


class TraceNotFoundError(LookupError):
    pass


def load(path: Path) -> list[dict[str, Any]]:
    """Every span kept in ``path``; a line cut off by a crash is skipped."""
    if not path.exists():
        return []
    spans = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                spans.append(json.loads(line))
            except ValueError:
                continue
    return spans


def traces_of(spans: Iterable[dict[str, Any]], reference: str) -> list[str]:
    """The traces ``reference`` names, newest first: a trace id, or the id of an order
    or upload (an order id is the client's own, so two clients' orders may share it)."""
    wanted = reference.strip().lower()
    started: dict[str, int] = {}
    for span in spans:
        attributes = span.get("attributes", {})
        if (
            span["trace_id"] == wanted
            or str(attributes.get(ORDER_ID, "")).lower() == wanted
            or str(attributes.get(UPLOAD_ID, "")).lower() == wanted
        ):
            trace = span["trace_id"]
            started[trace] = min(started.get(trace, span["start_ns"]), span["start_ns"])
    return sorted(started, key=lambda trace: -started[trace])


@dataclass(frozen=True)
class Hop:
    """One row of the waterfall: a span, placed in time from the trace's start."""

    span_id: str
    name: str
    service: str
    kind: str
    depth: int
    start_ms: float
    duration_ms: float
    waited_ms: float | None
    """For a record: how long its message sat in the queue before this attempt."""
    attempt: int | None
    """For a record: which receive of its message this was."""
    outcome: str | None
    error: bool

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Waterfall:
    trace_id: str
    duration_ms: float
    services: tuple[str, ...]
    hops: tuple[Hop, ...]

    @property
    def retries(self) -> int:
        return sum(1 for hop in self.hops if hop.attempt is not None and hop.attempt > 1)

    def as_json(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "duration_ms": self.duration_ms,
            "services": list(self.services),
            "retries": self.retries,
            "hops": [hop.as_json() for hop in self.hops],
        }


def waterfall(spans: Iterable[dict[str, Any]], trace_id: str) -> Waterfall:
    """The trace's spans in parent order (each after its parent, siblings by start)."""
    mine = [span for span in spans if span["trace_id"] == trace_id]
    if not mine:
        raise TraceNotFoundError(f"no spans of trace {trace_id}")
    ids = {span["span_id"] for span in mine}
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in mine:
        # A parent outside the kept spans (a caller's, or one not sampled) makes a root.
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else ""
        children[parent].append(span)
    origin = min(span["start_ns"] for span in mine)
    end = max(span["end_ns"] for span in mine)
    hops: list[Hop] = []

    def visit(parent: str, depth: int) -> None:
        for span in sorted(children[parent], key=lambda s: (s["start_ns"], s["span_id"])):
            hops.append(_hop(span, depth, origin))
            visit(span["span_id"], depth + 1)

    visit("", 0)
    return Waterfall(
        trace_id=trace_id,
        duration_ms=(end - origin) / 1e6,
        services=tuple(dict.fromkeys(span["service"] for span in sorted(mine, key=_start))),
        hops=tuple(hops),
    )


def _start(span: dict[str, Any]) -> int:
    return int(span["start_ns"])


def _hop(span: dict[str, Any], depth: int, origin: int) -> Hop:
    attributes = span.get("attributes", {})
    sent_ms = attributes.get(SENT_AT_MS)
    waited = (
        max(0.0, (span["start_ns"] - sent_ms * 1_000_000) / 1e6)
        if isinstance(sent_ms, int) and sent_ms > 0
        else None
    )
    count = attributes.get(RECEIVE_COUNT)
    return Hop(
        span_id=span["span_id"],
        name=span["name"],
        service=span["service"],
        kind=span["kind"],
        depth=depth,
        start_ms=(span["start_ns"] - origin) / 1e6,
        duration_ms=(span["end_ns"] - span["start_ns"]) / 1e6,
        waited_ms=waited,
        attempt=count if isinstance(count, int) and count > 0 else None,
        outcome=attributes.get(OUTCOME),
        error=bool(span.get("error")),
    )


def find(path: Path, reference: str) -> Waterfall:
    """The newest trace ``reference`` names, from the spans kept in ``path``."""
    spans = load(path)
    found = traces_of(spans, reference)
    if not found:
        raise TraceNotFoundError(
            f"no trace of {reference!r} in {path}: give an order id, an upload id or a "
            "trace id (every answer's X-Trace-Id) of this stack"
        )
    return waterfall(spans, found[0])
