"""``conveyor demo``'s flows over a started local stack: a batch of signed orders (some
bad on purpose) followed to billed and archived, then real photographs and one impostor
file followed to their verdicts. What they find is returned; the CLI renders it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conveyor.local.runtime import Started
from conveyor.local.status import Status, read_status
from conveyor.ops.traffic import SendReport, Submission, send_all
from conveyor.ops.uploads import Batch, sample_photos, upload_and_wait
from conveyor.topology import Topology

IMPOSTOR = b"%PDF-1.7 this is not a photograph\n" * 64
STATUS_EVERY_S = 0.5
"""How often the flow looks at the stack: each look costs the emulator time in
proportion to the backlog."""


@dataclass(frozen=True)
class OrdersDemo:
    sent: int
    report: SendReport
    status: Status
    elapsed_s: float

    @property
    def accepted(self) -> int:
        return len(self.report.accepted)

    @property
    def complete(self) -> bool:
        return self.status.billed == self.accepted and self.status.archived == self.accepted

    @property
    def ok(self) -> bool:
        return self.complete and not self.report.unexpected


def run_orders(
    started: Started,
    topology: Topology,
    batch: list[Submission],
    concurrency: int,
    timeout_s: float,
    on_sent: Callable[[], None] = lambda: None,
    on_status: Callable[[int, Status], None] = lambda accepted, status: None,
) -> OrdersDemo:
    """Send the batch, then wait until every accepted order is billed and archived (or
    sits in a DLQ) and the queues are empty, or until ``timeout_s``."""
    began = time.perf_counter()
    # The stack may hold earlier runs' orders (it keeps its state): count from here.
    before = read_status(started.clients, started.info.resources, topology)
    with started.client() as client:
        report = send_all(client, batch, concurrency, on_sent)
    accepted = len(report.accepted)
    deadline = time.monotonic() + timeout_s
    while True:
        status = read_status(started.clients, started.info.resources, topology).since(before)
        on_status(accepted, status)
        settled = status.pending == 0 and (
            status.billed + status.dead_letters >= accepted
            and status.archived + status.dead_letters >= accepted
        )
        if settled or time.monotonic() > deadline:
            break
        time.sleep(STATUS_EVERY_S)
    return OrdersDemo(len(batch), report, status, time.perf_counter() - began)


@dataclass(frozen=True)
class MediaDemo:
    batch: Batch
    complete: bool

    @property
    def ok(self) -> bool:
        """Every photograph processed, the impostor (the last file) failed, none refused."""
        outcomes = self.batch.outcomes
        photos_ok = all(o.status == "processed" for o in outcomes[:-1])
        impostor_failed = bool(outcomes) and outcomes[-1].status == "failed"
        return self.complete and photos_ok and impostor_failed and not self.batch.refused


def media_files(folder: Path) -> list[Path]:
    """The sample photographs, plus one file that is not an image at all."""
    impostor = folder / "demo-not-an-image.jpg"
    impostor.write_bytes(IMPOSTOR)
    return [*sample_photos(), impostor]


def run_media(
    started: Started,
    paths: list[Path],
    timeout_s: float,
    on_uploaded: Callable[[], None] = lambda: None,
    on_settled: Callable[[], None] = lambda: None,
) -> MediaDemo:
    with started.client() as client:
        batch, complete = upload_and_wait(
            client,
            paths,
            timeout_s,
            on_uploaded,
            on_settled,
        )
    return MediaDemo(batch, complete)
