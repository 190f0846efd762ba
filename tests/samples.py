"""Test images made from real photographs shipped with scikit-image, in every form the
pipeline has to handle, plus hostile files. Built in memory, deterministically."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from functools import cache
from pathlib import Path

from PIL import ExifTags, Image

from conveyor.ops.uploads import sample_photos

PHOTOS = {path.name: path for path in sample_photos()}


@cache
def photo(name: str) -> Image.Image:
    with Image.open(PHOTOS[name]) as image:
        return image.convert("RGB")


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def jpeg_baseline() -> bytes:
    return encode(photo("astronaut.png").resize((2048, 2048)), "JPEG", quality=90)


def jpeg_progressive() -> bytes:
    return encode(photo("coffee.png").resize((1800, 1200)), "JPEG", quality=90, progressive=True)


def upright_portrait() -> Image.Image:
    return photo("rocket.jpg").resize((854, 1280))


def jpeg_exif_rotated() -> bytes:
    """Stored sideways with EXIF orientation 6 ("rotate 90 clockwise to display") and a
    GPS position, as a phone held upright writes it; displayed correctly it is
    ``upright_portrait()``."""
    stored = upright_portrait().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (48.0, 8.0, 30.0)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (11.0, 34.0, 0.0)
    return encode(stored, "JPEG", quality=90, exif=exif.tobytes())


EDITOR_PHOTOS = Path(__file__).resolve().parents[1] / "build" / "photos"
"""Real photographs as editors and cameras write them: `make photos` (run by `make test`)
takes them from Debian's KDE wallpapers package."""
EDITOR_PHOTO_NAMES = ("FallenLeaf", "ColorfulCups", "Path", "Volna")


def editor_photo(name: str) -> bytes:
    path = EDITOR_PHOTOS / f"{name}.jpg"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make photos` (make test does)")
    return path.read_bytes()


def jpeg_cmyk() -> bytes:
    return encode(photo("chelsea.png").convert("CMYK"), "JPEG", quality=92)


def png_alpha() -> bytes:
    image = photo("astronaut.png").convert("RGBA")
    alpha = Image.linear_gradient("L").resize(image.size)
    image.putalpha(alpha)
    return encode(image, "PNG")


def png_16bit_gray() -> bytes:
    gray = photo("coffee.png").convert("L")
    wide = bytes(b for value in gray.tobytes() for b in struct.pack("<H", value * 257))
    return encode(Image.frombytes("I;16", gray.size, wide), "PNG")


def png_palette() -> bytes:
    return encode(photo("coffee.png").quantize(64), "PNG")


def webp() -> bytes:
    return encode(photo("chelsea.png"), "WEBP", quality=90)


GIF_FRAMES = 6


def gif_animated() -> bytes:
    base = photo("motorcycle_left.png").resize((900, 600))
    frames = [base.rotate(angle * 3, fillcolor=(255, 255, 255)) for angle in range(GIF_FRAMES)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)


# Hostile files -------------------------------------------------------------------------


def random_bytes(size: int = 4096) -> bytes:
    return os.urandom(size)


def truncated_jpeg() -> bytes:
    data = jpeg_baseline()
    return data[: len(data) // 3]


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def jpeg_zip_polyglot() -> bytes:
    """A valid JPEG that is also a valid ZIP archive (the archive appended)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.html", "<script>alert(1)</script>")
    return encode(photo("rocket.jpg"), "JPEG", quality=80) + archive.getvalue()


def gif_with_script() -> bytes:
    return encode(photo("chelsea.png").convert("P"), "GIF", comment=b"<script>alert(1)</script>")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def png_text_bomb() -> bytes:
    """A small PNG whose compressed text chunk inflates to 50 MB."""
    png = encode(photo("chelsea.png").resize((64, 64)), "PNG")
    bomb = zlib.compress(b"\0" * (50 * 1024 * 1024), 9)
    return png[:33] + _png_chunk(b"zTXt", b"Comment\0\0" + bomb) + png[33:]


def jpeg_with_huge_comments() -> bytes:
    """A real photo carrying 2.5 MB of comment segments."""
    jpeg = encode(photo("rocket.jpg"), "JPEG", quality=80)
    comment = b"\xff\xfe" + struct.pack(">H", 65535) + b"x" * 65533
    return jpeg[:2] + comment * 40 + jpeg[2:]


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real JPEG whose frame header claims another size."""
    data = bytearray(encode(photo("rocket.jpg"), "JPEG", quality=80))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_high_ratio(width: int = 6000, height: int = 6000) -> bytes:
    """36 MP (inside the limit) in a few hundred kilobytes: it inflates to ~100 MB."""
    return encode(Image.new("RGB", (width, height), (200, 30, 30)), "PNG")
