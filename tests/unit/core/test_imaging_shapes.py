"""Every shape of image the upload accepts renders: still and animated GIF and WebP,
palette and transparency, and every PNG and JPEG colour mode Pillow writes, each made
from a real photograph."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import pytest
from PIL import Image, ImageDraw

from conveyor.core import imaging
from tests import samples

Shape = Callable[[], bytes]
SMALL = (960, 640)


def base() -> Image.Image:
    return samples.photo("chelsea.png").resize(SMALL)


def with_alpha(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    return rgba


CLEAR = 255
"""A palette index the web palette (216 colours) never uses, made transparent."""


def palette_cutout() -> Image.Image:
    """The photo in a palette, its left third transparent."""
    image = base().convert("P")
    ImageDraw.Draw(image).rectangle((0, 0, SMALL[0] // 3, SMALL[1]), fill=CLEAR)
    return image


def animation(fmt: str, frames: int = 3) -> bytes:
    """Frames turned about the centre: the corners each turn uncovers are transparent."""
    shots = [base().convert("RGBA").rotate(10 + angle * 10) for angle in range(frames)]
    return samples.encode(
        shots[0], fmt, save_all=True, append_images=shots[1:], duration=80, loop=0
    )


def png_16bit_gray() -> bytes:
    gray = base().convert("L")
    wide = bytes(b for value in gray.tobytes() for b in struct.pack("<H", value * 257))
    return samples.encode(Image.frombytes("I;16", gray.size, wide), "PNG")


SHAPES: dict[str, tuple[str, Shape, bool]] = {
    # name: (content type, bytes, whether variants keep an alpha channel)
    "jpeg L": ("image/jpeg", lambda: samples.encode(base().convert("L"), "JPEG"), False),
    "jpeg RGB": ("image/jpeg", lambda: samples.encode(base(), "JPEG"), False),
    "jpeg CMYK": ("image/jpeg", lambda: samples.encode(base().convert("CMYK"), "JPEG"), False),
    "jpeg progressive": (
        "image/jpeg",
        lambda: samples.encode(base(), "JPEG", progressive=True),
        False,
    ),
    "png 1-bit": ("image/png", lambda: samples.encode(base().convert("1"), "PNG"), False),
    "png L": ("image/png", lambda: samples.encode(base().convert("L"), "PNG"), False),
    "png LA": ("image/png", lambda: samples.encode(with_alpha(base()).convert("LA"), "PNG"), True),
    "png I;16": ("image/png", png_16bit_gray, False),
    "png P": ("image/png", lambda: samples.encode(base().convert("P"), "PNG"), False),
    "png P + tRNS": (
        "image/png",
        lambda: samples.encode(palette_cutout(), "PNG", transparency=CLEAR),
        True,
    ),
    "png RGB": ("image/png", lambda: samples.encode(base(), "PNG"), False),
    "png RGBA": ("image/png", lambda: samples.encode(with_alpha(base()), "PNG"), True),
    "gif still": ("image/gif", lambda: samples.encode(base().convert("P"), "GIF"), False),
    "gif still + transparency": (
        "image/gif",
        lambda: samples.encode(palette_cutout(), "GIF", transparency=CLEAR),
        True,
    ),
    "gif animated": ("image/gif", lambda: animation("GIF"), True),
    "webp still": ("image/webp", lambda: samples.encode(base(), "WEBP"), False),
    "webp still + alpha": ("image/webp", lambda: samples.encode(with_alpha(base()), "WEBP"), True),
    "webp lossless": ("image/webp", lambda: samples.encode(base(), "WEBP", lossless=True), False),
    "webp animated": ("image/webp", lambda: animation("WEBP"), True),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_accepted_shape_renders_every_variant(name: str) -> None:
    content_type, make, keeps_alpha = SHAPES[name]
    source = make()
    with Image.open(io.BytesIO(source)) as original:
        frames = getattr(original, "n_frames", 1)
    rendition = imaging.render(source, content_type)
    assert rendition.mime_type == content_type
    assert rendition.frames == frames
    assert [v.label for v in rendition.variants] == ["large", "medium", "thumb"]
    for variant, (_, box) in zip(rendition.variants, imaging.VARIANTS, strict=True):
        with Image.open(io.BytesIO(variant.data)) as out:
            assert imaging.fit(SMALL, box) == out.size == (variant.width, variant.height)
            assert out.format == content_type.split("/")[1].upper()
            assert getattr(out, "n_frames", 1) == frames, "every frame is kept"
            alpha = out.mode in ("RGBA", "LA", "PA") or "transparency" in out.info
            assert alpha == keeps_alpha, out.mode
            out.load()
