"""``GET /media/processed/...``: the local stand-in for the CloudFront distribution.

Only image objects under ``processed/`` are served; anything else, including keys that
try to climb out of it, is a 404, as the distribution's origin path makes it in the
cloud. The runtime serves this from an origin of its own (another port), and the
Content-Type comes from the key's extension, never from what the object was stored
with, with ``nosniff`` and a CSP that forbids script: whatever lands under
``processed/`` (the emulator enforces no POST policy) can never run as a page beside
the console.

A variant's URL is negotiated as the distribution's CloudFront Function negotiates it:
the best of the formats its URL offers that the request's ``Accept`` names
(:func:`negotiated`), with ``Vary: Accept``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.exceptions import ClientError

from conveyor.aws.clients import has_code
from conveyor.core.media import (
    OFFER_QUERY,
    PROCESSED_PREFIX,
    TYPE_OF_EXTENSION,
    VARIANT_HEADERS,
    VARY,
    negotiated,
)
from conveyor.local.edges import HttpResponse, json_error
from conveyor.local.gateway import Handler

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MEDIA_PATH = "/media/"


def media_base_url(origin: str) -> str:
    """Where variants are downloaded from the local media origin at ``origin``: the
    CDN's origin path is ``processed/``, served here under ``/media/``."""
    return f"{origin}{MEDIA_PATH}{PROCESSED_PREFIX.rstrip('/')}"


def downloads(s3: S3Client, bucket: str) -> Handler:
    def serve(method: str, target: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        if method not in ("GET", "HEAD"):
            return json_error(405, "method_not_allowed", "use GET", {"Allow": "GET, HEAD"})
        url = urlsplit(target)
        key = unquote(url.path.removeprefix(MEDIA_PATH))
        content_type = TYPE_OF_EXTENSION.get(PurePosixPath(key).suffix)
        if (
            not key.startswith(PROCESSED_PREFIX)
            or ".." in key.split("/")
            or "//" in key
            or content_type is None
        ):
            return json_error(404, "not_found", "only processed images are served")
        offered = parse_qs(url.query).get(OFFER_QUERY, [None])[-1]
        chosen = negotiated(key, headers.get("accept"), offered)
        response = _get(s3, bucket, chosen)
        if response is None:
            return json_error(404, "not_found", f"no such image: {key}")
        return HttpResponse(
            200,
            response["Body"].read(),
            {
                "Content-Type": TYPE_OF_EXTENSION[PurePosixPath(chosen).suffix],
                "Cache-Control": response.get("CacheControl", "no-cache"),
                "ETag": response.get("ETag", ""),
                **VARIANT_HEADERS,
                **VARY,
            },
        )

    return serve


def _get(s3: S3Client, bucket: str, key: str) -> Any:
    try:
        return s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if has_code(exc, "NoSuchKey", "404"):
            return None
        raise
