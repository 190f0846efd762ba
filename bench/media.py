"""12 MP images per minute through presign -> upload -> variants, with the image
function's local concurrency at 1 and 2 (two cores here)."""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.images import samples
from conveyor.local.runtime import LocalRuntime, RuntimeOptions
from conveyor.ops.logs import read_json_lines
from conveyor.topology import IMAGES_FUNCTION, TOPOLOGY, SqsTrigger, Topology

IMAGES = 16


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


def level(concurrency: int, photo: Path) -> dict[str, Any]:
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
            for _ in range(IMAGES):
                client.upload(photo, "image/jpeg")
            while (
                sum(1 for e in read_json_lines(log) if e.get("message") == "image processed")
                < IMAGES
            ):
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            pool = runtime.pools[IMAGES_FUNCTION]
            return {
                "images/minute": round(IMAGES / elapsed * 60, 1),
                "mean ms per invocation": round(
                    pool.stats.total_duration_ms / pool.stats.invocations, 1
                ),
            }
        finally:
            runtime.stop()


def run() -> tuple[dict[str, Any], list[str]]:
    sample = next(s for s in samples() if s.name == "JPEG 12 MP")
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "photo-12mp.jpg"
        photo.write_bytes(sample.data)
        results = {f"image concurrency {c}": level(c, photo) for c in (1, 2)}
    print(json.dumps(results, indent=1), flush=True)
    return results, []


if __name__ == "__main__":
    run()
    sys.exit(0)
