"""Image variants side by side: a tutorial's Pillow code, libvips, two decode floors (1/8
scale, and the scale the largest variant needs), and ours (conveyor.core.imaging.render
in the source's format; what the modern formats add is ``bench.formats``).

Run by ``make bench``; prints a table and returns the rows and the missed targets.
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageFilter, ImageOps

from conveyor.core import imaging
from conveyor.ops.uploads import sample_photos

SIZES = [box for _, box in imaging.VARIANTS]
RUNS = 11


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    mime_type: str


def _textured(photo: str, size: tuple[int, int]) -> Image.Image:
    """A real photograph upscaled, with film grain so that it has a real photo's entropy
    (an upscaled image alone is unrealistically smooth and decodes too fast)."""
    with Image.open(next(p for p in sample_photos() if p.name == photo)) as source:
        image = source.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(size, 24).convert("RGB")
    return Image.blend(image, grain.filter(ImageFilter.SMOOTH), 0.12)


SAMPLES_DIR = Path(__file__).resolve().parent.parent / "build" / "bench-samples"


@cache
def samples() -> list[Sample]:
    """The test set, generated once and kept on disk (fresh processes only read it)."""
    index = SAMPLES_DIR / "index.json"
    if index.exists():
        entries = json.loads(index.read_text())
        return [
            Sample(e["name"], (SAMPLES_DIR / e["file"]).read_bytes(), e["mime_type"])
            for e in entries
        ]
    made = _make_samples()
    SAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    for number, sample in enumerate(made):
        (SAMPLES_DIR / f"{number}.bin").write_bytes(sample.data)
    index.write_text(
        json.dumps(
            [
                {"name": s.name, "file": f"{n}.bin", "mime_type": s.mime_type}
                for n, s in enumerate(made)
            ]
        )
    )
    return made


def _make_samples() -> list[Sample]:
    def jpeg(image: Image.Image, **options: object) -> bytes:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90, **options)
        return out.getvalue()

    alpha = _textured("astronaut.png", (3000, 2000)).convert("RGBA")
    alpha.putalpha(Image.linear_gradient("L").resize((3000, 2000)))
    png = io.BytesIO()
    alpha.save(png, "PNG")
    return [
        Sample("JPEG 2 MP", jpeg(_textured("coffee.png", (1732, 1155))), "image/jpeg"),
        Sample("JPEG 12 MP", jpeg(_textured("coffee.png", (4000, 3000))), "image/jpeg"),
        Sample("JPEG 24 MP", jpeg(_textured("motorcycle_left.png", (6000, 4000))), "image/jpeg"),
        Sample(
            "JPEG 12 MP progressive",
            jpeg(_textured("chelsea.png", (4000, 3000)), progressive=True),
            "image/jpeg",
        ),
        Sample("PNG 6 MP alpha", png.getvalue(), "image/png"),
    ]


PHOTOS_DIR = Path(__file__).resolve().parent.parent / "build" / "photos"
"""Real editor photographs from Debian's wallpapers package (`make photos`)."""


def exif_rotated(jpeg: bytes, orientation: int = 6) -> bytes:
    """The same JPEG, byte for byte, with an EXIF Orientation tag in front, as a camera
    writes a photo taken upright: the pixels as the sensor read them, and a tag that says
    how to turn them."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = exif.tobytes()  # b"Exif\0\0" and the TIFF structure
    segment = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + segment + jpeg[2:]


@cache
def real_photos() -> list[Sample]:
    """Photographs as cameras and editors write them, read as files."""

    def photo(name: str) -> bytes:
        path = PHOTOS_DIR / f"{name}.jpg"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make photos`")
        return path.read_bytes()

    logo = next(p for p in sample_photos() if p.name == "coffee.png").with_name("logo.png")
    return [
        Sample("photo 14.7 MP, progressive (Volna)", photo("Volna"), "image/jpeg"),
        Sample(
            "photo 4 MP, progressive, ICC + XMP (ColorfulCups)",
            photo("ColorfulCups"),
            "image/jpeg",
        ),
        Sample("photo 4 MP, ICC (Path)", photo("Path"), "image/jpeg"),
        Sample(
            "photo 4 MP, 17 KB XMP, EXIF-rotated (FallenLeaf)",
            exif_rotated(photo("FallenLeaf")),
            "image/jpeg",
        ),
        Sample("PNG with alpha (scikit-image logo)", logo.read_bytes(), "image/png"),
    ]


# The four approaches; each returns the three variants' encoded bytes. -----------------


def naive(sample: Sample) -> list[bytes]:
    """What a typical tutorial does: turn the photo upright, then copy the full image and
    thumbnail it, per size."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(sample.data)))
    out = []
    for size in SIZES:
        copy = image.copy()
        copy.thumbnail(size, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        if sample.mime_type == "image/jpeg":
            copy.convert("RGB").save(buffer, "JPEG", quality=85, optimize=True)
        else:
            copy.save(buffer, "PNG")
        out.append(buffer.getvalue())
    return out


def vips(sample: Sample) -> list[bytes]:
    import pyvips

    out = []
    for width, height in SIZES:
        image = pyvips.Image.thumbnail_buffer(sample.data, width, height=height)
        if sample.mime_type == "image/jpeg":
            out.append(image.jpegsave_buffer(Q=85))
        else:
            out.append(image.pngsave_buffer())
    return out


def floor(sample: Sample) -> list[bytes]:
    """Only decoding, at 1/8 scale where the format allows it (JPEG); nothing encoded."""
    image = Image.open(io.BytesIO(sample.data))
    if image.format == "JPEG":
        image.draft("RGB", (image.width // 8, image.height // 8))
    image.load()
    return []


def needed(sample: Sample) -> list[bytes]:
    """Only decoding, at the cheapest scale libjpeg offers (1/1, 1/2, 1/4, 1/8) that still
    yields the largest variant's pixels: what no approach can do without. Nothing else."""
    image = Image.open(io.BytesIO(sample.data))
    if image.format == "JPEG":
        width, height = image.size
        if image.getexif().get(0x0112) in (5, 6, 7, 8):  # stored turned: so is the box
            largest = imaging.fit((height, width), SIZES[0])
            largest = (largest[1], largest[0])
        else:
            largest = imaging.fit((width, height), SIZES[0])
        image.draft("RGB", largest)
    image.load()
    return []


def ours(sample: Sample) -> list[bytes]:
    """The variants in the source's format, as the others make them; what the modern
    formats add is measured by ``bench.formats``."""
    return [v.data for v in imaging.render(sample.data, sample.mime_type, modern=()).variants]


APPROACHES: dict[str, Callable[[Sample], list[bytes]]] = {
    "a tutorial": naive,
    "b libvips": vips,
    "c decode floor": floor,
    "d ours": ours,
    "e decode needed": needed,
}
NOT_ENCODING = ("c decode floor", "e decode needed")


def median_ms(sample: Sample) -> dict[str, float]:
    """Each approach's median ms on ``sample``. The approaches take turns, run after run,
    so that a busy spell on the shared machine slows them all alike instead of skewing a
    ratio (a 4 MP photo's 1/8 decode takes 6-17 ms, within a busy spell's reach)."""
    times: dict[str, list[float]] = {label: [] for label in APPROACHES}
    for approach in APPROACHES.values():
        approach(sample)  # warm-up
    for _ in range(RUNS):
        for label, approach in APPROACHES.items():
            started = time.perf_counter()
            approach(sample)
            times[label].append((time.perf_counter() - started) * 1000)
    return {label: statistics.median(values) for label, values in times.items()}


def _on_white(image: Image.Image) -> Image.Image:
    return imaging.flatten(image.convert("RGBA") if image.mode in ("LA", "P") else image)


def psnr(candidate: bytes, reference: Image.Image) -> float:
    image = _on_white(Image.open(io.BytesIO(candidate)))
    if image.size != reference.size:
        reference = reference.resize(image.size, Image.Resampling.LANCZOS)
    import numpy as np  # only the parent measures quality; fresh RSS probes stay lean

    a = np.asarray(image, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def worst_psnr(variants: list[bytes], sample: Sample) -> float:
    """The lowest PSNR over the three variants, each against a high-quality reference:
    the full image decoded and resized once, with Lanczos, straight to that size."""
    full = ImageOps.exif_transpose(Image.open(io.BytesIO(sample.data)))
    full.load()
    scores = []
    for data in variants:
        size = Image.open(io.BytesIO(data)).size
        # Resized with its alpha, then put on white like the candidates.
        reference = _on_white(full.resize(size, Image.Resampling.LANCZOS))
        scores.append(psnr(data, reference))
    return min(scores)


def peak_rss_mb(approach: str, sample_index: int) -> float:
    """Peak RSS of a fresh interpreter that runs one approach once on one sample."""
    # VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child would report the
    # parent's peak; VmHWM belongs to the new address space.
    code = (
        "from pathlib import Path; from bench.images import APPROACHES, samples; "
        f"s = samples()[{sample_index}]; APPROACHES[{approach!r}](s); "
        "print(next(int(l.split()[1]) for l in Path('/proc/self/status').read_text()"
        ".splitlines() if l.startswith('VmHWM')) / 1024)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip())


def run() -> tuple[list[dict[str, object]], list[str]]:
    rows: list[dict[str, object]] = []
    for sample in samples() + real_photos():
        row: dict[str, object] = {"image": sample.name, "bytes": len(sample.data)}
        row["real"] = sample in real_photos()
        times = median_ms(sample)
        for label, approach in APPROACHES.items():
            row[f"{label} ms"] = round(times[label], 1)
            if label not in NOT_ENCODING:
                row[f"{label} PSNR"] = round(worst_psnr(approach(sample), sample), 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    index_24 = next(i for i, s in enumerate(samples()) if s.name == "JPEG 24 MP")
    rss = {
        label: round(peak_rss_mb(label, index_24), 1)
        for label in ("a tutorial", "b libvips", "d ours")
    }
    print(json.dumps({"peak RSS MB at 24 MP": rss}), flush=True)
    return [*rows, {"image": "peak RSS at 24 MP (MB, fresh process)", **rss}], _missed(rows, rss)


NEEDED_TARGET = 2.5
"""Ours within this many times the decode the largest variant needs, on every photo
(issue 30); the 1/8-scale floor is reported beside it."""


def _missed(rows: list[dict[str, object]], rss: dict[str, float]) -> list[str]:
    def ms(row: dict[str, object], label: str) -> float:
        return float(str(row[f"{label} ms"]))

    missed = []
    at_12 = next(r for r in rows if r["image"] == "JPEG 12 MP")
    ours_ms, naive_ms = ms(at_12, "d ours"), ms(at_12, "a tutorial")
    if naive_ms / ours_ms < 4:
        missed.append(f"12 MP: ours is {naive_ms / ours_ms:.1f}x faster than the tutorial, not 4x")
    if rss["d ours"] > rss["a tutorial"] / 3:
        missed.append(f"24 MP peak RSS {rss['d ours']} MB is over a third of {rss['a tutorial']}")
    for row in rows:
        ours_db, tutorial_db = (
            min(LOSSLESS_DB, float(str(row[f"{label} PSNR"]))) for label in ("d ours", "a tutorial")
        )
        if ours_db < tutorial_db - 0.5:
            missed.append(
                f"{row['image']}: PSNR {row['d ours PSNR']} is over 0.5 dB below "
                f"the tutorial's {row['a tutorial PSNR']}"
            )
    for row in rows:
        # The photographs, and the 12 MP JPEG the earlier targets were set on; the other
        # generated images are textures, whose small sizes are mostly encoding.
        if not (row["real"] or row is at_12):
            continue
        name, ours_ms = row["image"], ms(row, "d ours")
        if ours_ms > ms(row, "b libvips"):
            missed.append(
                f"{name}: ours {ours_ms} ms is slower than libvips {ms(row, 'b libvips')} ms"
            )
        if "PNG" not in str(name) and ours_ms > NEEDED_TARGET * ms(row, "e decode needed"):
            missed.append(
                f"{name}: ours is {ours_ms / ms(row, 'e decode needed'):.1f}x the decode the "
                f"largest variant needs, not within {NEEDED_TARGET}x"
            )
    return missed


LOSSLESS_DB = 50.0
"""At or above this PSNR a variant differs from its reference by about one level in 255:
both count as identical (a variant no smaller than its source is an exact copy, infinite
PSNR, when the tutorial leaves it alone)."""


if __name__ == "__main__":
    _, failures = run()
    print("\n".join(failures) or "all image targets met")
    sys.exit(1 if failures else 0)
