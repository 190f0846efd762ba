"""Workers of one function share a log file; every line each of them prints stays whole."""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from pathlib import Path

from conveyor.local.workers import log_to

LINES = 3000


def _print_metrics(path: Path, writer: int) -> None:
    log_to(path)
    for n in range(LINES):
        # print() as Powertools Metrics writes an EMF document: the text, then the newline.
        print(json.dumps({"writer": writer, "n": n, "OrdersBilled": [1.0]}))


def test_lines_printed_by_workers_at_once_never_interleave(tmp_path: Path) -> None:
    log = tmp_path / "billing.log"
    spawn = multiprocessing.get_context("spawn")
    writers = [spawn.Process(target=_print_metrics, args=(log, w)) for w in range(3)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=60)
        assert process.exitcode == 0
    lines = log.read_text().splitlines()
    documents = [json.loads(line) for line in lines]  # a torn line fails here
    assert Counter(d["writer"] for d in documents) == {0: LINES, 1: LINES, 2: LINES}
    for writer in range(3):
        assert [d["n"] for d in documents if d["writer"] == writer] == list(range(LINES))
