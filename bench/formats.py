"""What the modern formats cost and save, on real photographs: the bytes of each against
today's JPEG variants at no lower PSNR, and the image function's time per photo with none,
with WebP only, and with every format it writes (AVIF and WebP).

Run by ``make bench``; prints a table and exits 1 if a target is missed:

* WebP variants at most ``WEBP_BYTES_TARGET`` of the JPEG variants' bytes, at equal or
  better PSNR on every variant;
* the time per photo grows at most ``WEBP_TIME_TARGET`` times with WebP added;
* with AVIF too (on by default), at least ``AVIF_PHOTOS_PER_MINUTE`` photos a minute on
  one core.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from collections.abc import Sequence

from PIL import Image, ImageOps

from bench.images import Sample, psnr, real_photos
from conveyor.core import imaging
from conveyor.core.media import MODERN_FORMATS
from conveyor.ops.uploads import sample_photos

RUNS = 7
WEBP_BYTES_TARGET = 0.70
WEBP_TIME_TARGET = 1.6
AVIF_PHOTOS_PER_MINUTE = 150
SETTINGS = {
    "source only": (),
    "+ WebP": ("image/webp",),
    "+ AVIF + WebP": imaging.MODERN_TYPES,
}


def photographs() -> list[Sample]:
    """The real photographs: the camera and editor files of ``bench.images``, and the
    test suite's (scikit-image's) JPEG ones."""
    suite = [
        Sample(path.name, path.read_bytes(), "image/jpeg")
        for path in sample_photos()
        if path.suffix == ".jpg"
    ]
    return [s for s in real_photos() if s.mime_type == "image/jpeg"] + suite


def timed(sample: Sample) -> dict[str, float]:
    """The median ms of ``render`` per setting, the settings taking turns run after run
    so that a busy spell on the shared machine slows them alike."""
    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for modern in SETTINGS.values():
        imaging.render(sample.data, sample.mime_type, modern=modern)  # warm-up
    for _ in range(RUNS):
        for name, modern in SETTINGS.items():
            began = time.perf_counter()
            imaging.render(sample.data, sample.mime_type, modern=modern)
            times[name].append((time.perf_counter() - began) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def compared(sample: Sample) -> dict[str, object]:
    """Bytes and PSNR of each format against the JPEG variant, variant by variant, each
    scored against the full photo resized once with Lanczos. The bytes are what a client
    of that format is served: the JPEG where the format came out no smaller and was not
    kept."""
    full = ImageOps.exif_transpose(Image.open(io.BytesIO(sample.data))).convert("RGB")
    names = [extension[1:] for _, extension in MODERN_FORMATS]
    jpeg_bytes = 0
    served_bytes = dict.fromkeys(names, 0)
    worst: dict[str, float] = {}
    for variant in imaging.render(sample.data, sample.mime_type).variants:
        reference = full.resize((variant.width, variant.height), Image.Resampling.LANCZOS)
        jpeg_db = psnr(variant.data, reference)
        jpeg_bytes += len(variant.data)
        kept = {m.extension[1:]: m.data for m in variant.modern}
        for name in names:
            served = kept.get(name, variant.data)
            served_bytes[name] += len(served)
            gap = psnr(served, reference) - jpeg_db
            worst[name] = min(worst.get(name, gap), gap)
    return {
        "jpeg bytes": jpeg_bytes,
        **{f"{name} bytes": n for name, n in served_bytes.items()},
        **{f"{name} worst dB vs JPEG": round(gap, 2) for name, gap in worst.items()},
    }


def run() -> tuple[list[dict[str, object]], list[str]]:
    rows: list[dict[str, object]] = []
    for sample in photographs():
        row: dict[str, object] = {"photo": sample.name}
        row.update({f"{k} ms": round(v, 1) for k, v in timed(sample).items()})
        row.update(compared(sample))
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = summarise(rows)
    print(json.dumps(summary), flush=True)
    return [*rows, summary], missed(summary)


def _total(rows: Sequence[dict[str, object]], key: str) -> float:
    return sum(float(str(r[key])) for r in rows)


def summarise(rows: Sequence[dict[str, object]]) -> dict[str, object]:
    jpeg = _total(rows, "jpeg bytes")
    growth = [
        float(r["+ WebP ms"]) / float(r["source only ms"])  # type: ignore[arg-type]
        for r in rows
    ]
    every = _total(rows, "+ AVIF + WebP ms") / len(rows)
    return {
        "photo": "all",
        "webp bytes / jpeg": round(_total(rows, "webp bytes") / jpeg, 3),
        "avif bytes / jpeg": round(_total(rows, "avif bytes") / jpeg, 3),
        "webp worst dB vs JPEG": min(float(r["webp worst dB vs JPEG"]) for r in rows),  # type: ignore[arg-type]
        "avif worst dB vs JPEG": min(float(r["avif worst dB vs JPEG"]) for r in rows),  # type: ignore[arg-type]
        "time with WebP, worst photo (x)": round(max(growth), 2),
        "time with WebP, median photo (x)": round(statistics.median(growth), 2),
        "photos a minute per core, every format": round(60_000 / every),
        "settings": dict(imaging.MODERN_SETTINGS),
    }


def missed(summary: dict[str, object]) -> list[str]:
    found = []
    ratio = float(summary["webp bytes / jpeg"])  # type: ignore[arg-type]
    if ratio > WEBP_BYTES_TARGET:
        found.append(f"WebP is {ratio:.2f}x the JPEG variants' bytes, not {WEBP_BYTES_TARGET}x")
    for name in ("webp", "avif"):
        gap = float(summary[f"{name} worst dB vs JPEG"])  # type: ignore[arg-type]
        if gap < 0:
            found.append(f"a {name} variant is {-gap} dB below its JPEG")
    growth = float(summary["time with WebP, worst photo (x)"])  # type: ignore[arg-type]
    if growth > WEBP_TIME_TARGET:
        found.append(f"WebP makes a photo take {growth}x as long, not {WEBP_TIME_TARGET}x")
    rate = float(summary["photos a minute per core, every format"])  # type: ignore[arg-type]
    if rate < AVIF_PHOTOS_PER_MINUTE:
        found.append(f"{rate:.0f} photos a minute per core with AVIF, not {AVIF_PHOTOS_PER_MINUTE}")
    return found


if __name__ == "__main__":
    _, failures = run()
    print("\n".join(failures) or "all format targets met")
    sys.exit(1 if failures else 0)
