"""Images per minute through the whole image function (presign -> upload -> S3 event ->
variants, table and event, on the emulator), with its local concurrency at 1 and 2 (two
cores here): a 12 MP JPEG, and the real photographs of bench/images.py in turn. Per core,
and how many cores the source design's 10,000 uploads an hour would take."""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.images import Sample, real_photos, samples
from conveyor.local.runtime import LocalRuntime, RuntimeOptions
from conveyor.ops.logs import read_json_lines
from conveyor.topology import IMAGES_FUNCTION, TOPOLOGY, SqsTrigger, Topology

IMAGES = 16
DESIGN_PER_HOUR = 10_000


def _with_image_concurrency(concurrency: int) -> Topology:
    images = TOPOLOGY.function(IMAGES_FUNCTION)
    assert isinstance(images.trigger, SqsTrigger)
    changed = dataclasses.replace(
        images,
        concurrency=concurrency,
        trigger=dataclasses.replace(images.trigger, max_concurrency=concurrency),
    )
    return dataclasses.replace(
        TOPOLOGY,
        functions=tuple(changed if f.name == IMAGES_FUNCTION else f for f in TOPOLOGY.functions),
    )


def level(concurrency: int, photos: list[tuple[Path, str]]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as state:
        runtime = LocalRuntime(
            RuntimeOptions(state_dir=Path(state), port=0, endpoint_url=None),
            _with_image_concurrency(concurrency),
        )
        stack = runtime.start()
        try:
            client = stack.client()
            log = stack.logs_dir / f"{IMAGES_FUNCTION}.log"
            started = time.perf_counter()
            for n in range(IMAGES):
                path, mime_type = photos[n % len(photos)]
                client.upload(path, mime_type)
            while (
                sum(1 for e in read_json_lines(log) if e.get("message") == "image processed")
                < IMAGES
            ):
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            pool = runtime.pools[IMAGES_FUNCTION]
            per_minute = IMAGES / elapsed * 60
            per_core = per_minute / concurrency
            return {
                "images/minute": round(per_minute, 1),
                "images/minute per core": round(per_core, 1),
                "cores for 10,000 uploads/hour": round(DESIGN_PER_HOUR / 60 / per_core, 2),
                "mean ms per invocation": round(
                    pool.stats.total_duration_ms / pool.stats.invocations, 1
                ),
            }
        finally:
            runtime.stop()


def _written(folder: Path, chosen: list[Sample]) -> list[tuple[Path, str]]:
    found = []
    for number, sample in enumerate(chosen):
        suffix = ".png" if sample.mime_type == "image/png" else ".jpg"
        path = folder / f"photo-{number}{suffix}"
        path.write_bytes(sample.data)
        found.append((path, sample.mime_type))
    return found


def run() -> tuple[dict[str, Any], list[str]]:
    twelve = [s for s in samples() if s.name == "JPEG 12 MP"]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, chosen in (("JPEG 12 MP", twelve), ("real photographs", real_photos())):
            photos = _written(Path(folder), chosen)
            for concurrency in (1, 2):
                results[f"{name}, image concurrency {concurrency}"] = level(concurrency, photos)
    print(json.dumps(results, indent=1), flush=True)
    return results, []


if __name__ == "__main__":
    run()
    sys.exit(0)
