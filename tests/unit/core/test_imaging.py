"""Image variants from real photographs in every form, and hostile files."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image, ImageChops, ImageStat

from conveyor.core import imaging
from conveyor.core.imaging import ImageRejected, Rendition, fit, flatten, render
from tests import samples

BOXES = dict(imaging.VARIANTS)


def opened(rendition: Rendition, label: str) -> Image.Image:
    variant = next(v for v in rendition.variants if v.label == label)
    image = Image.open(io.BytesIO(variant.data))
    assert image.size == (variant.width, variant.height)
    return image


def assert_fits(rendition: Rendition) -> None:
    for variant in rendition.variants:
        box = BOXES[variant.label]
        assert variant.width <= box[0]
        assert variant.height <= box[1]
        assert variant.width <= rendition.width, "never upscaled"
        assert variant.height <= rendition.height, "never upscaled"
        touching = (
            variant.width == box[0]
            or variant.height == box[1]
            or ((variant.width, variant.height) == (rendition.width, rendition.height))
        )
        assert touching, "as large as the box allows"
        aspect = rendition.width / rendition.height
        assert abs(variant.width / variant.height - aspect) < 2 / min(
            variant.width, variant.height
        ), "aspect kept"


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    a, b = a.convert("RGB"), b.convert("RGB").resize(a.size)
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


CASES: list[tuple[str, Callable[[], bytes], str, str, str]] = [
    # name, sample, declared type, expected output format, expected mode
    ("jpeg-baseline", samples.jpeg_baseline, "image/jpeg", "JPEG", "RGB"),
    ("jpeg-progressive", samples.jpeg_progressive, "image/jpeg", "JPEG", "RGB"),
    ("jpeg-exif-rotated", samples.jpeg_exif_rotated, "image/jpeg", "JPEG", "RGB"),
    ("jpeg-cmyk", samples.jpeg_cmyk, "image/jpeg", "JPEG", "RGB"),
    ("png-alpha", samples.png_alpha, "image/png", "PNG", "RGBA"),
    ("png-16-bit", samples.png_16bit_gray, "image/png", "PNG", "L"),
    ("png-palette", samples.png_palette, "image/png", "PNG", "RGB"),
    ("webp", samples.webp, "image/webp", "WEBP", "RGB"),
    ("gif-animated", samples.gif_animated, "image/gif", "GIF", "P"),
]


@pytest.mark.parametrize(
    ("name", "sample", "declared", "fmt", "mode"), CASES, ids=[c[0] for c in CASES]
)
def test_every_form_gets_three_variants_in_its_own_format(
    name: str, sample: Callable[[], bytes], declared: str, fmt: str, mode: str
) -> None:
    rendition = render(sample(), declared)
    assert [v.label for v in rendition.variants] == ["large", "medium", "thumb"]
    assert rendition.mime_type == declared
    assert_fits(rendition)
    for variant in rendition.variants:
        image = opened(rendition, variant.label)
        assert image.format == fmt
        assert image.mode == mode
        assert "icc_profile" not in image.info, "variants are sRGB, untagged"


def test_a_large_jpeg_fills_each_box() -> None:
    rendition = render(samples.jpeg_baseline(), "image/jpeg")
    assert [(v.width, v.height) for v in rendition.variants] == [(600, 600), (300, 300), (150, 150)]
    progressive = render(samples.jpeg_progressive(), "image/jpeg")
    assert [(v.width, v.height) for v in progressive.variants] == [
        (800, 533),
        (400, 267),
        (150, 100),
    ]


def test_variants_look_like_the_original() -> None:
    original = samples.photo("astronaut.png")
    rendition = render(samples.jpeg_baseline(), "image/jpeg")
    for label in ("large", "medium", "thumb"):
        assert mean_difference(opened(rendition, label), original) < 6


def test_exif_orientation_is_applied() -> None:
    rendition = render(samples.jpeg_exif_rotated(), "image/jpeg")
    assert (rendition.width, rendition.height) == (854, 1280), "reported upright"
    large = opened(rendition, "large")
    assert large.size == (400, 600), "portrait, as displayed"
    upright = samples.upright_portrait()
    sideways = upright.transpose(Image.Transpose.ROTATE_90).resize(large.size)
    assert mean_difference(large, upright) < 8
    assert mean_difference(large, sideways) > 3 * mean_difference(large, upright)
    assert large.getexif().get(0x0112) in (None, 1), "no orientation left to apply twice"


def metadata_left(variant: Image.Image) -> dict[str, int]:
    """What a variant carries besides pixels: JPEG segments other than JFIF, and info."""
    segments = {name: len(data) for name, data in getattr(variant, "applist", []) if name != "APP0"}
    kept = {k: len(str(v)) for k, v in variant.info.items() if k in ("exif", "xmp", "icc_profile")}
    return {**segments, **kept}


def test_a_gps_tagged_rotated_photo_comes_out_upright_with_no_location() -> None:
    source = Image.open(io.BytesIO(samples.jpeg_exif_rotated()))
    assert source.getexif().get_ifd(0x8825), "the sample carries a GPS position"
    rendition = render(samples.jpeg_exif_rotated(), "image/jpeg")
    for variant in rendition.variants:
        out = opened(rendition, variant.label)
        assert out.width < out.height, "upright portrait"
        assert metadata_left(out) == {}, "no EXIF (so no GPS), XMP or profile"
        assert not out.getexif().get_ifd(0x8825)


@pytest.mark.parametrize("name", samples.EDITOR_PHOTO_NAMES)
def test_real_editor_photographs_render_and_keep_none_of_their_metadata(name: str) -> None:
    data = samples.editor_photo(name)
    with Image.open(io.BytesIO(data)) as source:
        carried = {n for n, _ in getattr(source, "applist", [])} | set(source.info)
        reference = source.convert("RGB")
        reference.thumbnail((800, 600), Image.Resampling.LANCZOS)
    assert carried & {"APP1", "APP2", "APP13", "exif", "icc_profile", "progressive"}, name
    rendition = render(data, "image/jpeg")
    assert_fits(rendition)
    large = opened(rendition, "large")
    assert large.size == reference.size
    assert mean_difference(large, reference) < 6, "looks like the straightforward result"
    for variant in rendition.variants:
        assert metadata_left(opened(rendition, variant.label)) == {}
    rendition = render(samples.jpeg_cmyk(), "image/jpeg")
    assert mean_difference(opened(rendition, "large"), samples.photo("chelsea.png")) < 10


def test_alpha_is_kept_in_png() -> None:
    large = opened(render(samples.png_alpha(), "image/png"), "large")
    low, high = large.getchannel("A").getextrema()
    assert isinstance(low, int)
    assert isinstance(high, int)
    assert low < 10
    assert high > 245


def test_sixteen_bit_samples_are_scaled_not_clipped() -> None:
    large = opened(render(samples.png_16bit_gray(), "image/png"), "large")
    expected = ImageStat.Stat(samples.photo("coffee.png").convert("L")).mean[0]
    assert abs(ImageStat.Stat(large).mean[0] - expected) < 3


def test_a_palette_png_keeps_its_colours() -> None:
    large = opened(render(samples.png_palette(), "image/png"), "large")
    assert mean_difference(large, samples.photo("coffee.png")) < 10


def test_an_animated_gif_keeps_every_frame_and_its_timing() -> None:
    rendition = render(samples.gif_animated(), "image/gif")
    assert rendition.frames == samples.GIF_FRAMES
    for variant in rendition.variants:
        image = opened(rendition, variant.label)
        assert getattr(image, "n_frames", 1) == samples.GIF_FRAMES
        assert image.info.get("duration") == 80


def test_a_small_image_is_never_upscaled() -> None:
    tiny = samples.encode(samples.photo("chelsea.png").resize((120, 80)), "PNG")
    rendition = render(tiny, "image/png")
    assert {(v.width, v.height) for v in rendition.variants} == {(120, 80)}


def test_transparency_is_flattened_onto_white_for_jpeg() -> None:
    clear = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    flat = flatten(clear)
    assert flat.mode == "RGB"
    assert flat.getpixel((0, 0)) == (255, 255, 255)
    encoded = Image.open(io.BytesIO(imaging.encode([clear], "JPEG", [0], 0)))
    assert encoded.mode == "RGB"


def test_a_broken_icc_profile_is_ignored_not_fatal() -> None:
    data = samples.encode(samples.photo("rocket.jpg"), "JPEG", icc_profile=b"not a profile")
    assert len(render(data, "image/jpeg").variants) == 3


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((4000, 3000), (800, 600), (800, 600)),
        ((3000, 4000), (800, 600), (450, 600)),
        ((100, 50), (800, 600), (100, 50)),
        ((10000, 1), (150, 150), (150, 1)),
    ],
)
def test_fit(size: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]) -> None:
    assert fit(size, box) == expected


HOSTILE: list[tuple[str, Callable[[], bytes], str, str]] = [
    ("random-bytes", samples.random_bytes, "image/jpeg", "not_an_image"),
    ("truncated-jpeg", samples.truncated_jpeg, "image/jpeg", "truncated"),
    (
        "png-100000x100000",
        lambda: samples.png_declaring(100_000, 100_000),
        "image/png",
        "too_many_pixels",
    ),
    ("zero-bytes", lambda: b"", "image/jpeg", "empty"),
    ("jpeg-zip-polyglot", samples.jpeg_zip_polyglot, "image/jpeg", "polyglot"),
    ("gif-with-script", samples.gif_with_script, "image/gif", "polyglot"),
    ("png-declared-as-jpeg", samples.png_palette, "image/jpeg", "content_type_mismatch"),
    ("over-20-mib", lambda: b"\xff\xd8\xff" + bytes(21 * 1024 * 1024), "image/jpeg", "too_large"),
    ("not-an-accepted-type", samples.webp, "image/svg+xml", "unsupported_type"),
]


@pytest.mark.parametrize(
    ("name", "sample", "declared", "code"), HOSTILE, ids=[h[0] for h in HOSTILE]
)
def test_hostile_files_are_rejected_with_a_reason(
    name: str, sample: Callable[[], bytes], declared: str, code: str
) -> None:
    with pytest.raises(ImageRejected) as rejected:
        render(sample(), declared)
    assert rejected.value.code == code
    assert rejected.value.detail


def test_the_pixel_limit_is_configurable() -> None:
    data = samples.jpeg_progressive()  # 1800 x 1200
    with pytest.raises(ImageRejected, match="too_many_pixels"):
        render(data, "image/jpeg", max_pixels=1800 * 1200 - 1)
    assert render(data, "image/jpeg", max_pixels=1800 * 1200).width == 1800


def psnr(a: Image.Image, b: Image.Image) -> float:
    import math

    rms = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).rms
    mse = sum(value**2 for value in rms) / 3
    return 10 * math.log10(255**2 / mse) if mse else 99.0


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("name", sorted(samples.PHOTOS))
def test_each_modern_format_decodes_back_at_least_as_close_as_the_jpeg_variant(
    name: str,
) -> None:
    source = samples.photo(name)
    rendition = render(samples.encode(source, "JPEG", quality=95), "image/jpeg")
    for variant in rendition.variants:
        reference = source.resize((variant.width, variant.height), Image.Resampling.LANCZOS)
        jpeg = psnr(decoded(variant.data), reference)
        kinds = [m.mime_type for m in variant.modern]
        assert kinds == [k for k in imaging.MODERN_TYPES if k in kinds], "best first"
        assert "image/avif" in kinds, "AVIF is smaller than every JPEG variant here"
        for modern in variant.modern:
            image = decoded(modern.data)
            assert image.format == modern.extension[1:].upper()
            assert image.size == (variant.width, variant.height)
            assert psnr(image, reference) >= jpeg, (variant.label, modern.mime_type)
            assert metadata_left(image) == {}, "no EXIF, XMP or profile"
            assert len(modern.data) < len(variant.data), "only a smaller one is kept"


def test_the_modern_formats_keep_a_pngs_transparency() -> None:
    rendition = render(samples.png_alpha(), "image/png")
    for modern in opened_modern(rendition, "large"):
        low, high = modern.convert("RGBA").getchannel("A").getextrema()
        assert isinstance(low, int)
        assert isinstance(high, int)
        assert low < 10
        assert high > 245


def opened_modern(rendition: Rendition, label: str) -> list[Image.Image]:
    variant = next(v for v in rendition.variants if v.label == label)
    return [decoded(m.data) for m in variant.modern]


@pytest.mark.parametrize(
    ("sample", "declared"),
    [(samples.gif_animated, "image/gif"), (samples.webp, "image/webp")],
    ids=["gif", "webp"],
)
def test_gif_and_webp_sources_keep_their_own_format_only(
    sample: Callable[[], bytes], declared: str
) -> None:
    assert all(v.modern == () for v in render(sample(), declared).variants)


def test_a_modern_format_no_smaller_than_the_source_variant_is_not_kept() -> None:
    frame = samples.photo("coffee.png").resize((400, 266))
    assert [e.mime_type for e in imaging.encode_modern(frame, imaging.MODERN_TYPES, 10**9)] == [
        "image/avif",
        "image/webp",
    ]
    assert imaging.encode_modern(frame, imaging.MODERN_TYPES, 1) == ()
    only_webp = imaging.encode_modern(frame, ("image/webp",), 10**9)
    assert [e.mime_type for e in only_webp] == ["image/webp"]
