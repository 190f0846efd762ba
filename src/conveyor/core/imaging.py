"""Image variants: decode once at reduced scale, resize in a cascade, encode.

The only input is bytes and what the client claimed they are; the output is the encoded
variants or an :class:`ImageRejected` naming why the image can never be processed.

Speed comes from doing the least work that gives the same result: a JPEG is decoded by
its DCT at the smallest scale (1/2, 1/4 or 1/8) that still covers the largest variant,
EXIF orientation and colour conversion run on that reduced image, and each variant is
resized from the previous one (800x600 -> 400x300 -> 150x150), not from the original.

Colour: a non-sRGB ICC profile (Adobe RGB, Display P3, a CMYK press profile) is converted
to sRGB and variants carry no profile, since browsers assume sRGB; CMYK without a profile
is converted naively; 16-bit samples are scaled (not clipped) to 8 bits; palette images
become RGB or RGBA; transparency is kept for PNG, WebP and GIF, and flattened onto white
for JPEG. Animated GIF and WebP keep every frame and their timing.

Formats: each variant is written in its source's format, and a JPEG's or PNG's also as
AVIF and WebP (:data:`MODERN_SETTINGS`), for the media URL to serve by negotiation.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from PIL import (
    ExifTags,
    Image,
    ImageFile,
    ImageSequence,
    PngImagePlugin,
    UnidentifiedImageError,
)

from conveyor.core.media import EXTENSIONS, MAX_UPLOAD_BYTES, MODERN_FORMATS

if TYPE_CHECKING:
    from PIL import ImageCms

VARIANTS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("large", (800, 600)),
    ("medium", (400, 300)),
    ("thumb", (150, 150)),
)
"""Largest first: each variant is resized from the one before it."""

JPEG_QUALITY = 85
PNG_COMPRESSION = 3
"""zlib level for PNG variants: level 6 wrote files 12% smaller in 2.3x the time (a
500x500 logo with alpha: 80 ms against 35 ms), and then libvips was the faster."""
WEBP_QUALITY = 85
"""For the variants of a WebP source, stored as WebP."""
MODERN_SETTINGS: dict[str, dict[str, int]] = {
    "image/avif": {"quality": 72, "speed": 8},
    "image/webp": {"quality": 88, "method": 4},
}
"""How each modern format is written beside a JPEG or PNG variant: the lowest quality at
which no photograph of the test suite's scores a lower PSNR than its JPEG variant
(bench/RESULTS.md has the search and the bytes each saves)."""
DEFAULT_MAX_PIXELS = 40_000_000
MAX_FRAMES = 300
MAX_ANIMATION_PIXELS = 120_000_000
"""Frames x width x height an animation may decode to."""
MAX_TEXT_CHUNK_BYTES = 1024 * 1024
"""What one compressed PNG text chunk may inflate to (Pillow's own default, pinned here).
Metadata stored as is (EXIF, XMP, ICC, Photoshop, comments) is bounded by the file
size alone: a real editor's JPEG can carry megabytes of it, and reading it costs
nothing more than reading the file."""
MAX_TEXT_MEMORY_BYTES = 16 * 1024 * 1024
"""All of a PNG's inflated text chunks together."""

_FORMAT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
_OPENERS = ("JPEG", "PNG", "WEBP", "GIF")
_NEGOTIATED = ("JPEG", "PNG")
"""The sources whose variants get the modern formats beside their own: always stills
here (a PNG's animation is not kept), where GIF and WebP may be animations."""
_ROTATED = {5, 6, 7, 8}
_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""What turns an image stored with each EXIF orientation upright (as exif_transpose)."""
_NOT_WRITTEN = ("icc_profile", "exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop")
_MARKUP = re.compile(rb"<(?:script|html|svg|iframe|\?php)[\s>/]", re.IGNORECASE)
_ZIP_END = b"PK\x05\x06"
_ZIP_END_SIZE = 22


class ImageRejected(Exception):
    """The image can never be processed; ``code`` is stable, ``detail`` is for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Encoding:
    """A variant in another format than its source's."""

    mime_type: str
    extension: str
    data: bytes


@dataclass(frozen=True)
class Variant:
    label: str
    width: int
    height: int
    data: bytes
    """In the source's format."""
    modern: tuple[Encoding, ...] = ()
    """The same pixels in each of :data:`MODERN_FORMATS` that is smaller, best first,
    for a still JPEG or PNG; none for other sources."""


@dataclass(frozen=True)
class Rendition:
    mime_type: str
    extension: str
    width: int
    height: int
    frames: int
    variants: tuple[Variant, ...]


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest size within ``box`` with ``size``'s aspect ratio; never larger than ``size``."""
    width, height = size
    scale = min(1.0, box[0] / width, box[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _zip_appended(data: bytes) -> bool:
    """A ZIP archive ends the file: its end-of-central-directory record's comment length
    reaches exactly to the end. Checking the structure, not just the 4-byte signature,
    keeps random compressed bytes from looking like an archive."""
    start = data.rfind(_ZIP_END, max(0, len(data) - 65_557))
    if start < 0 or start + _ZIP_END_SIZE > len(data):
        return False
    comment_length = int.from_bytes(data[start + 20 : start + 22], "little")
    return start + _ZIP_END_SIZE + comment_length == len(data)


def check_not_polyglot(data: bytes) -> None:
    """Refuse files that are also something else: an archive appended to the image, or
    markup a browser could be tricked into running."""
    if _zip_appended(data):
        raise ImageRejected("polyglot", "the file is also a ZIP archive")
    if _MARKUP.search(data):
        raise ImageRejected("polyglot", "the file contains HTML or script markup")


def open_checked(data: bytes, declared_type: str, max_pixels: int) -> Image.Image:
    """Open (headers only) and check everything that can be checked before decoding."""
    if not data:
        raise ImageRejected("empty", "the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageRejected("too_large", f"{len(data)} bytes is over {MAX_UPLOAD_BYTES}")
    if declared_type not in EXTENSIONS:
        raise ImageRejected("unsupported_type", f"{declared_type!r} is not an accepted type")
    try:
        image = Image.open(io.BytesIO(data), formats=_OPENERS)
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from exc
    except ValueError as exc:
        if "too large" in str(exc).lower() or "too much memory" in str(exc).lower():
            raise ImageRejected("metadata_too_large", str(exc)) from exc
        raise ImageRejected("not_an_image", "the content is not a JPEG, PNG, WebP or GIF") from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageRejected("not_an_image", "the content is not a JPEG, PNG, WebP or GIF") from exc
    detected = _FORMAT_TYPES[image.format or ""]
    if detected != declared_type:
        raise ImageRejected(
            "content_type_mismatch", f"declared {declared_type}, content is {detected}"
        )
    width, height = image.size
    if width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels", f"{width}x{height} is over the limit of {max_pixels} pixels"
        )
    frames = getattr(image, "n_frames", 1)
    if frames > MAX_FRAMES or frames * width * height > MAX_ANIMATION_PIXELS:
        raise ImageRejected("too_many_frames", f"{frames} frames of {width}x{height}")
    check_not_polyglot(data)
    return image


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except (ValueError, TypeError, SyntaxError, OSError):
        return 1


@cache
def _srgb() -> ImageCms.ImageCmsProfile:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert from the source's ICC profile to sRGB where it matters; a broken profile
    is ignored rather than failing the image."""
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    # Imported here: only images that carry a colour profile need it, and the image
    # function's cold start is measured.
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = (ImageCms.getProfileDescription(source) or "").lower()
        if "srgb" in description and image.mode != "CMYK":
            return image
        output = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, source, _srgb(), outputMode=output)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image
    return converted if converted is not None else image


def normalise_mode(image: Image.Image) -> Image.Image:
    """8-bit L, LA, RGB or RGBA, whatever the source stored."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode.startswith("I;16") or mode == "I":
        # 16-bit samples: Pillow's convert("L") would clip everything above 255.
        return image.convert("I").point(lambda value: value / 257).convert("L")
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if mode in ("PA", "RGBa", "La"):
        return image.convert("RGBA" if mode != "La" else "LA")
    if mode == "1":
        return image.convert("L")
    return image.convert("RGB")  # CMYK without a profile, YCbCr, LAB, HSV, F


def flatten(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Composite transparency onto a solid background, for formats without alpha."""
    if image.mode not in ("RGBA", "LA"):
        return image if image.mode in ("RGB", "L") else image.convert("RGB")
    base = Image.new("RGB", image.size, background)
    base.paste(image.convert("RGBA"), mask=image.getchannel("A"))
    return base


def encode(frames: list[Image.Image], fmt: str, durations: list[int], loop: int) -> bytes:
    out = io.BytesIO()
    for frame in frames:
        # Colour was converted to sRGB, and nothing of the source's metadata may reach
        # a variant: Pillow's writers copy a profile, a comment or XMP from ``info``.
        for key in _NOT_WRITTEN:
            frame.info.pop(key, None)
    first = frames[0]
    # Timing and looping only for animations: a still GIF given a list of durations
    # fails inside Pillow's writer.
    animation = (
        {"save_all": True, "append_images": frames[1:], "duration": durations, "loop": loop}
        if len(frames) > 1
        else {}
    )
    if fmt == "JPEG":
        flatten(first).save(out, "JPEG", quality=JPEG_QUALITY)
    elif fmt == "PNG":
        first.save(out, "PNG", compress_level=PNG_COMPRESSION)
    elif fmt == "WEBP":
        first.save(out, "WEBP", quality=WEBP_QUALITY, method=4, **animation)
    else:
        first.save(out, "GIF", disposal=2, **animation)
    return out.getvalue()


MODERN_TYPES = tuple(kind for kind, _ in MODERN_FORMATS)


def encode_modern(
    frame: Image.Image, kinds: Sequence[str], smaller_than: int
) -> tuple[Encoding, ...]:
    """``frame`` (already stripped of metadata by :func:`encode`) in each of the modern
    formats ``kinds`` that comes out smaller than ``smaller_than`` bytes (the variant in
    its source's format: a client that accepts a modern format must never get more
    bytes for it), best first, transparency kept."""
    pixels = (
        frame
        if frame.mode in ("RGB", "RGBA")
        else frame.convert("RGBA" if "A" in frame.getbands() else "RGB")
    )
    found = []
    for mime_type, extension in MODERN_FORMATS:
        if mime_type not in kinds:
            continue
        out = io.BytesIO()
        pixels.save(out, extension[1:].upper(), **MODERN_SETTINGS[mime_type])
        if out.tell() < smaller_than:
            found.append(Encoding(mime_type, extension, out.getvalue()))
    return tuple(found)


def _decode_frames(image: Image.Image) -> Iterator[tuple[Image.Image, int]]:
    for frame in ImageSequence.Iterator(image):
        yield frame.convert("RGBA"), int(frame.info.get("duration", 100))


_RESIZED_AS_STORED = ("RGB", "L", "RGBA", "LA", "CMYK")
"""Modes that resize well as decoded; any other is normalised first (a palette would be
resized by nearest neighbour, 16-bit samples clipped)."""


def _decode_still(image: Image.Image, largest: tuple[int, int], orientation: int) -> Image.Image:
    """The largest variant: decoded at the smallest scale that still covers it, resized,
    then put in sRGB and turned upright, so that the colour conversion and the turn work
    on the variant's pixels, not on the decoded image's several times as many."""
    stored = (largest[1], largest[0]) if orientation in _ROTATED else largest
    if image.format in ("JPEG", "MPO"):
        image.draft(image.mode if image.mode in ("RGB", "L", "CMYK") else None, stored)
    image.load()
    decoded = image if image.mode in _RESIZED_AS_STORED else normalise_mode(image)
    if decoded.size != stored:
        # The decoder already did most of the reduction (at most 2x is left for a JPEG):
        # bicubic's smaller kernel costs 0.7x of Lanczos here, within 0.3 dB of it.
        decoded = decoded.resize(stored, Image.Resampling.BICUBIC, reducing_gap=3.0)
    elif decoded is image:
        decoded = image.copy()  # the caller closes the source
    upright = normalise_mode(to_srgb(decoded, image.info.get("icc_profile")))
    turn = _TURNS.get(orientation)
    return upright.transpose(turn) if turn is not None else upright


def render(
    data: bytes,
    declared_type: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    modern: Sequence[str] = MODERN_TYPES,
) -> Rendition:
    """Every variant of one image, or :class:`ImageRejected`; a still JPEG or PNG's also
    in each of the ``modern`` formats (all of them unless told: ``make bench`` measures
    what each one costs)."""
    image = open_checked(data, declared_type, max_pixels)
    fmt = "JPEG" if image.format == "MPO" else str(image.format)
    orientation = _orientation(image)
    width, height = image.size
    if orientation in _ROTATED:
        width, height = height, width
    sizes = [(label, fit((width, height), box)) for label, box in VARIANTS]
    frame_count = getattr(image, "n_frames", 1)
    try:
        if frame_count > 1:
            decoded = list(_decode_frames(image))
            frames = [frame for frame, _ in decoded]
            durations = [duration for _, duration in decoded]
        else:
            frames, durations = [_decode_still(image, sizes[0][1], orientation)], [0]
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        code = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise ImageRejected(code, f"the image data cannot be decoded: {exc}") from exc
    finally:
        image.close()

    loop = int(image.info.get("loop", 0))
    variants = []
    for label, size in sizes:
        if frames[0].size != size:
            frames = [
                frame.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0) for frame in frames
            ]
        encoded = encode(frames, fmt, durations, loop)
        others = encode_modern(frames[0], modern, len(encoded)) if fmt in _NEGOTIATED else ()
        variants.append(Variant(label, size[0], size[1], encoded, others))
    mime_type = _FORMAT_TYPES[fmt]
    return Rendition(
        mime_type, EXTENSIONS[mime_type][0], width, height, frame_count, tuple(variants)
    )


ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated upload is rejected, not half-rendered
PngImagePlugin.MAX_TEXT_CHUNK = MAX_TEXT_CHUNK_BYTES
PngImagePlugin.MAX_TEXT_MEMORY = MAX_TEXT_MEMORY_BYTES
