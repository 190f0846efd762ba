"""Which stored format answers a variant's URL: the best one the URL offers and the
client accepts, else the variant as stored."""

from __future__ import annotations

import pytest

from conveyor.core.media import accepted_types, negotiated, offer

CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "offered", "served"),
    [
        ("image/avif,image/webp", "avif,webp", "large/a.avif"),
        (CHROMIUM, "avif,webp", "large/a.avif"),
        ("image/webp,*/*", "avif,webp", "large/a.webp"),
        ("image/avif;q=0,image/webp", "avif,webp", "large/a.webp"),
        ("image/avif", "webp", "large/a.jpg"),
        ("*/*", "avif,webp", "large/a.jpg"),
        ("image/*", "avif,webp", "large/a.jpg"),
        (None, "avif,webp", "large/a.jpg"),
        (CHROMIUM, None, "large/a.jpg"),
        (CHROMIUM, "", "large/a.jpg"),
    ],
    ids=[
        "both-best-first",
        "chromium",
        "webp-only",
        "avif-refused",
        "not-offered",
        "any-type",
        "any-image",
        "no-accept",
        "stored-before-formats",
        "empty-offer",
    ],
)
def test_the_best_offered_format_the_client_names_answers(
    accept: str | None, offered: str | None, served: str
) -> None:
    assert negotiated("large/a.jpg", accept, offered) == served


def test_wildcards_and_refusals_are_read_as_written() -> None:
    assert accepted_types("image/webp;q=0.5, image/avif;Q=0, */*") == {"image/webp", "*/*"}
    assert accepted_types(None) == set()
    assert accepted_types("image/webp;q=zero") == {"image/webp"}


def test_a_url_offers_its_modern_formats_best_first() -> None:
    assert offer([".avif", ".webp"]) == "?formats=avif,webp"
    assert offer([]) == ""
