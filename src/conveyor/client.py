"""A small signed HTTP client for producers, the CLI and the tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from conveyor.core.media import TYPE_OF_EXTENSION
from conveyor.core.signing import sign


def content_type_of(path: Path) -> str:
    """The content type a file's extension claims (the pipeline checks the claim)."""
    return TYPE_OF_EXTENSION.get(path.suffix.lower(), "application/octet-stream")


@dataclass(frozen=True)
class Upload:
    upload_id: str
    filename: str
    size: int
    content_type: str
    request_id: str
    """The presign call's X-Request-Id: the correlation id of the upload's log lines."""
    trace_id: str = ""
    """The upload's trace (``conveyor trace``), as its presign answer named it."""


class UploadError(Exception):
    def __init__(self, filename: str, status: int, detail: str) -> None:
        super().__init__(f"{filename}: {status} {detail}")
        self.filename = filename
        self.status = status
        self.detail = detail


class HmacAuth(requests.auth.AuthBase):
    """Signs whatever request ``requests`` is about to send, over its exact body bytes."""

    def __init__(self, client_id: str, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.client_id = client_id
        self.secret = secret
        self.clock = clock

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        path = urlsplit(request.url or "").path
        request.headers.update(
            sign(self.client_id, self.secret, str(request.method), path, bytes(body), self.clock())
        )
        return request


class ConveyorClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        secret: str,
        *,
        timeout_s: float = 15.0,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.secret = secret
        self.timeout_s = timeout_s
        self.clock = clock
        self.session = session or requests.Session()
        self.auth = HmacAuth(client_id, secret, clock)

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        signed: bool = True,
    ) -> requests.Response:
        return self.session.request(
            method,
            self.base_url + path,
            data=body,
            headers={"Content-Type": content_type, **(headers or {})},
            auth=self.auth if signed else None,
            timeout=self.timeout_s,
        )

    def post_json(
        self, path: str, payload: Any, headers: Mapping[str, str] | None = None
    ) -> requests.Response:
        return self.request("POST", path, json.dumps(payload).encode(), headers=headers)

    def send_order(
        self, order: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> requests.Response:
        return self.post_json("/orders", order, headers)

    def order_status(self, order_id: str) -> requests.Response:
        """``GET /orders/{order_id}``: one of this client's orders."""
        return self.request("GET", f"/orders/{quote(order_id, safe='')}")

    def upload_status(self, upload_id: str) -> requests.Response:
        """``GET /uploads/{upload_id}``: one of this client's uploads."""
        return self.request("GET", f"/uploads/{quote(upload_id, safe='')}")

    def presign_upload(self, filename: str, content_type: str, size: int) -> requests.Response:
        return self.post_json(
            "/uploads", {"filename": filename, "content_type": content_type, "size": size}
        )

    def upload(self, path: Path, content_type: str | None = None) -> Upload:
        """Presign, then POST the file straight to S3; raises :class:`UploadError`."""
        content_type = content_type or content_type_of(path)
        return self.upload_bytes(path.name, path.read_bytes(), content_type)

    def upload_bytes(self, filename: str, data: bytes, content_type: str) -> Upload:
        """Presign, then POST ``data`` straight to S3; raises :class:`UploadError` with the
        status and body of the step that refused it."""
        presigned = self.presign_upload(filename, content_type, len(data))
        if presigned.status_code != 200:
            raise UploadError(filename, presigned.status_code, presigned.text)
        grant = presigned.json()
        stored = self.session.post(
            grant["url"],
            data=grant["fields"],
            files={"file": (filename, data, content_type)},
            timeout=self.timeout_s,
        )
        if stored.status_code not in (200, 201, 204):
            raise UploadError(filename, stored.status_code, stored.text[:300])
        return Upload(
            str(grant["upload_id"]),
            filename,
            len(data),
            content_type,
            presigned.headers.get("X-Request-Id", ""),
            presigned.headers.get("X-Trace-Id", ""),
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ConveyorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
