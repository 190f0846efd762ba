"""The verification's HTTP: signed and unsigned requests, and the presigned POST of an
upload, on the standard library alone (it runs where a canary runs, with no host tools).

A request made on purpose to be refused is made exactly as a client would send it: the
signature is computed as :mod:`conveyor.core.signing` says, then the request is spoiled
in one way (another secret, a stale time, a changed body, an added query).
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from conveyor.core.signing import sign

TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    ms: float

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def evidence(self) -> dict[str, Any]:
        """What the check's report shows of this answer."""
        shown: dict[str, Any] = {"status": self.status, "ms": round(self.ms, 1)}
        request_id = self.header("X-Request-Id")
        if request_id:
            shown["request_id"] = request_id
        payload = self.json()
        if isinstance(payload, dict) and "error" in payload:
            shown["error"] = payload["error"]
        return shown


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to report, not to follow."""

    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def send(
    method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None
) -> Answer:
    """One request; every HTTP status is an answer, never an exception."""
    request = urllib.request.Request(  # noqa: S310 - the target's own http(s) URL
        url, data=body if body or method == "POST" else None, method=method
    )
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    began = time.perf_counter()
    try:
        with _OPENER.open(request, timeout=TIMEOUT_S) as response:
            data = response.read()
            status, found = response.status, dict(response.headers.items())
    except urllib.error.HTTPError as error:
        data, status, found = error.read(), error.code, dict(error.headers.items())
    return Answer(status, found, data, (time.perf_counter() - began) * 1000)


@dataclass(frozen=True)
class Client:
    """One API client: its id and secret."""

    client_id: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Api:
    """The API at ``base_url``, called as ``client``; every request carries a request
    id that names the verification run, so operators can tell its lines apart."""

    base_url: str
    client: Client
    run_id: str

    def request_id(self, check: str) -> str:
        return f"verify-{self.run_id}-{check}"[:128]

    def call(
        self,
        check: str,
        method: str,
        path: str,
        payload: Any = None,
        *,
        as_client: Client | None = None,
        signed_at: float | None = None,
        sign_body: bytes | None = None,
        query: str = "",
    ) -> Answer:
        """A request signed as the API documents, unless told to spoil it: signed by
        another client (``as_client``), at another time (``signed_at``), over another
        body than the one sent (``sign_body``), or sent with a ``query`` it did not sign."""
        body = b"" if payload is None else json.dumps(payload).encode()
        signer = as_client or self.client
        headers = {
            **sign(
                signer.client_id,
                signer.secret,
                method,
                path,
                body if sign_body is None else sign_body,
                time.time() if signed_at is None else signed_at,
            ),
            "X-Request-Id": self.request_id(check),
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        url = self.base_url.rstrip("/") + path + (f"?{query}" if query else "")
        return send(method, url, body, headers)

    def replay(self, check: str, method: str, path: str, payload: Any) -> tuple[Answer, Answer]:
        """The same bytes, signature included, sent twice: a captured request replayed."""
        body = json.dumps(payload).encode()
        headers = {
            **sign(self.client.client_id, self.client.secret, method, path, body, time.time()),
            "X-Request-Id": self.request_id(check),
            "Content-Type": "application/json",
        }
        url = self.base_url.rstrip("/") + path
        return send(method, url, body, headers), send(method, url, body, headers)


def post_form(url: str, fields: Mapping[str, str], filename: str, data: bytes) -> Answer:
    """A presigned POST: the policy's fields, then the file (S3 wants it last)."""
    boundary = f"conveyor-verify-{secrets.token_hex(12)}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: {fields.get("Content-Type", "")}\r\n\r\n'.encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return send(
        "POST", url, b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )


def object_url(upload_url: str, key: str) -> str:
    """The URL of ``key`` in the bucket a presigned POST goes to (path or host style)."""
    base = upload_url if upload_url.endswith("/") else upload_url + "/"
    return base + key


def plain_http(url: str) -> str:
    """``url`` with its scheme made plain ``http``."""
    parts = urlsplit(url)
    return parts._replace(scheme="http").geturl()
