"""A small signed HTTP client for producers, the CLI and the tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from conveyor.core.signing import sign


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

    def signed_headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        return sign(self.client_id, self.secret, method, path, body, self.clock())

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
        all_headers = {"Content-Type": content_type, **(headers or {})}
        if signed:
            all_headers.update(self.signed_headers(method, path, body))
        return self.session.request(
            method, self.base_url + path, data=body, headers=all_headers, timeout=self.timeout_s
        )

    def post_json(
        self, path: str, payload: Any, headers: Mapping[str, str] | None = None
    ) -> requests.Response:
        return self.request("POST", path, json.dumps(payload).encode(), headers=headers)

    def send_order(
        self, order: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> requests.Response:
        return self.post_json("/orders", order, headers)

    def close(self) -> None:
        self.session.close()
