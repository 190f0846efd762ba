"""Counters from the functions' Embedded Metric Format lines, as CloudWatch would keep them.

The workers write EMF lines into their logs like any other line; a ``LogFollower`` reads
what each log gained since the last look, and ``MetricTotals`` sums the samples per
metric name and dimensions. ``conveyor status`` and the console show the totals.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conveyor.ops.logs import LogFollower

Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    name: str
    unit: str
    values: tuple[float, ...]
    dimensions: Dimensions


def samples(line: str) -> list[Sample]:
    """The metrics one log line carries; none when it is not an EMF document."""
    if '"_aws"' not in line:
        return []
    try:
        document = json.loads(line)
    except ValueError:
        return []
    meta = document.get("_aws") if isinstance(document, dict) else None
    if not isinstance(meta, dict):
        return []
    found = []
    for directive in meta.get("CloudWatchMetrics") or []:
        names = {name for group in directive.get("Dimensions") or [] for name in group}
        dimensions = tuple(sorted((n, str(document[n])) for n in names if n in document))
        for metric in directive.get("Metrics") or []:
            raw = document.get(metric.get("Name"))
            values = raw if isinstance(raw, list) else [raw]
            numbers = tuple(float(v) for v in values if isinstance(v, int | float))
            if numbers:
                found.append(
                    Sample(metric["Name"], metric.get("Unit", "None"), numbers, dimensions)
                )
    return found


@dataclass
class Series:
    name: str
    unit: str
    dimensions: dict[str, str]
    samples: int = 0
    sum: float = 0.0
    maximum: float = 0.0
    last: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "dimensions": self.dimensions,
            "samples": self.samples,
            "sum": self.sum,
            "max": self.maximum,
            "last": self.last,
        }


class MetricTotals:
    """Thread-safe running totals, one series per metric name and dimension values."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, Dimensions], Series] = {}
        self._lock = threading.Lock()

    def add(self, sample: Sample) -> None:
        with self._lock:
            key = (sample.name, sample.dimensions)
            series = self._series.get(key)
            if series is None:
                series = Series(sample.name, sample.unit, dict(sample.dimensions))
                self._series[key] = series
            for value in sample.values:
                series.samples += 1
                series.sum += value
                series.maximum = max(series.maximum, value)
                series.last = value

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._series[key].to_json() for key in sorted(self._series)]


def total(snapshot: Iterable[dict[str, Any]], name: str) -> float:
    """The sum of ``name`` over all its series (every reason, every function)."""
    return float(sum(s["sum"] for s in snapshot if s["name"] == name))


def collect(follower: LogFollower, totals: MetricTotals, stop: threading.Event) -> None:
    """Feed ``totals`` from the followed logs until ``stop`` is set, then once more."""
    while True:
        stopping = stop.wait(0.2)
        for _, line in follower.read():
            for sample in samples(line):
                totals.add(sample)
        if stopping:
            return
