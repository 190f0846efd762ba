"""Upload images through the presign flow and wait for the pipeline's verdict on each."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.aws import images_table
from conveyor.client import ConveyorClient, Upload, UploadError

SAMPLE_PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "motorcycle_left.png",
    "rocket.jpg",
    "retina.jpg",
    "hubble_deep_field.jpg",
)


def sample_photos() -> list[Path]:
    """Real photographs shipped inside the scikit-image package (read as plain files)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the sample photos come with scikit-image: pip install '.[local]'")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return [folder / name for name in SAMPLE_PHOTOS]


@dataclass
class Outcome:
    upload: Upload
    started: float
    item: dict[str, Any] | None = None
    settled: float | None = None

    @property
    def status(self) -> str:
        return str(self.item["status"]) if self.item else "waiting"

    @property
    def seconds(self) -> float | None:
        return None if self.settled is None else self.settled - self.started


@dataclass
class Batch:
    outcomes: list[Outcome] = field(default_factory=list)
    refused: list[UploadError] = field(default_factory=list)


def upload_all(
    client: ConveyorClient, paths: Iterable[Path], on_done: Callable[[], None] = lambda: None
) -> Batch:
    batch = Batch()
    for path in paths:
        started = time.monotonic()
        try:
            batch.outcomes.append(Outcome(client.upload(path), started))
        except UploadError as error:
            batch.refused.append(error)
        on_done()
    return batch


def await_results(
    client: ConveyorClient,
    batch: Batch,
    timeout_s: float,
    on_settled: Callable[[Outcome], None] = lambda _: None,
) -> bool:
    """Ask ``GET /uploads/{id}`` until every upload is processed or failed, as any client
    would; False on timeout."""
    deadline = time.monotonic() + timeout_s
    pending = list(batch.outcomes)
    while pending:
        for outcome in list(pending):
            answer = client.upload_status(outcome.upload.upload_id)
            view = answer.json() if answer.status_code == 200 else {}
            if view.get("status") in (images_table.PROCESSED, images_table.FAILED):
                outcome.item, outcome.settled = view, time.monotonic()
                pending.remove(outcome)
                on_settled(outcome)
        if pending and time.monotonic() > deadline:
            return False
        if pending:
            time.sleep(0.1)
    return True


def upload_and_wait(
    client: ConveyorClient,
    paths: list[Path],
    timeout_s: float,
    on_uploaded: Callable[[], None] = lambda: None,
    on_settled: Callable[[], None] = lambda: None,
) -> tuple[Batch, bool]:
    """Upload every file, then wait for each verdict; the bool is False on timeout."""
    batch = upload_all(client, paths, on_uploaded)
    complete = await_results(client, batch, timeout_s, lambda _: on_settled())
    return batch, complete
