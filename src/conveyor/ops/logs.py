"""Reading the JSON-line logs that the functions (Powertools Logger) and the local runtime
write: follow several files, merge them in time order, filter by function or
correlation id, and render a line for a terminal."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Every JSON object line of a log file; other lines (tracebacks) are skipped."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


@dataclass(frozen=True)
class Entry:
    at: datetime
    source: str
    fields: dict[str, Any]


def parse_timestamp(value: str) -> datetime | None:
    """Powertools writes ``2026-11-24 06:23:22,077+0000``; the runtime writes ISO 8601."""
    for candidate in (value, value.replace(",", ".")):
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


class LogFollower:
    """Reads the lines each file gained since the previous ``read``, with the file they
    came from. It starts from each file's current end (the runtime's metrics must not
    count an old state directory's logs again), or with ``from_start`` from the top."""

    def __init__(self, paths: Iterable[Path], from_start: bool = False) -> None:
        self._offsets = {
            path: path.stat().st_size if path.exists() and not from_start else 0 for path in paths
        }
        self._partial: dict[Path, bytes] = dict.fromkeys(self._offsets, b"")

    def read(self) -> list[tuple[Path, str]]:
        lines: list[tuple[Path, str]] = []
        for path, offset in self._offsets.items():
            try:
                with path.open("rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
            except FileNotFoundError:
                continue
            self._offsets[path] = offset + len(chunk)
            *complete, rest = (self._partial[path] + chunk).split(b"\n")
            self._partial[path] = rest
            lines.extend((path, line.decode("utf-8", "replace")) for line in complete)
        return lines


def parsed(
    lines: Iterable[tuple[Path, str]],
    function: str | None = None,
    correlation_id: str | None = None,
) -> list[Entry]:
    """The JSON entries among ``lines`` in time order, optionally of one function or one
    correlation id; other lines (tracebacks) are skipped."""
    found = []
    for path, line in lines:
        if not line.startswith("{") or (function is not None and path.stem != function):
            continue
        try:
            fields = json.loads(line)
        except ValueError:
            continue
        at = parse_timestamp(str(fields.get("timestamp", "")))
        if at is None:
            continue
        if correlation_id is None or fields.get("correlation_id") == correlation_id:
            found.append(Entry(at, path.stem, fields))
    return sorted(found, key=lambda entry: entry.at)


def render(entry: Entry) -> str:
    fields = entry.fields
    skip = {"timestamp", "level", "message", "service", "location", "correlation_id"}
    extra = " ".join(f"{k}={v}" for k, v in fields.items() if k not in skip)
    correlation = fields.get("correlation_id")
    return (
        f"{entry.at:%H:%M:%S.%f}"[:-3] + f" {entry.source:<9} {fields.get('level', ''):<7} "
        f"{fields.get('message', '')}"
        + (f" [{correlation}]" if correlation else "")
        + (f" {extra}" if extra else "")
    )
