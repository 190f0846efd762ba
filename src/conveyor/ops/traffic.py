"""Order traffic: a realistic batch of signed orders, sent concurrently.

Most orders are valid; some carry a bad signature or a bad body on purpose, so whoever
sends them (the demo, the soak, the pipeline bench) sees rejections with their reasons
next to what was billed and archived.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from conveyor.client import ConveyorClient

CATALOG = {
    "KB-MECH-87": "89.90",
    "MOUSE-WL-2": "34.50",
    "USB-C-HUB7": "45.00",
    "MON-27-4K": "329.00",
    "CABLE-HDMI2": "12.99",
    "DESK-LAMP-L": "27.75",
    "HEADSET-BT": "119.00",
    "SSD-1TB-NV": "79.49",
}
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY", "SEK")


@dataclass(frozen=True)
class Submission:
    """One request the demo makes, and what it is meant to show."""

    kind: str  # "valid", "bad-signature", "bad-body", "wrong-type", "too-large"
    body: bytes
    content_type: str = "application/json"
    signed_with: str | None = None  # a wrong secret for "bad-signature"

    def send(self, client: ConveyorClient) -> requests.Response:
        """POST it, signed with the client's secret or, for a bad signature, the wrong one."""
        signer = (
            client
            if self.signed_with is None
            else ConveyorClient(
                client.base_url, client.client_id, self.signed_with, session=client.session
            )
        )
        return signer.request("POST", "/orders", self.body, content_type=self.content_type)


def _valid_order(rng: random.Random, index: int) -> dict[str, Any]:
    skus = rng.sample(sorted(CATALOG), k=rng.randint(1, 4))
    currency = rng.choice(CURRENCIES)
    return {
        "order_id": f"demo-{index:05d}-{rng.randrange(16**6):06x}",
        "customer_id": f"cust-{rng.randint(1, 40):03d}",
        "currency": currency,
        "items": [
            {
                "sku": sku,
                "quantity": rng.randint(1, 5),
                "unit_price": CATALOG[sku].split(".")[0] if currency == "JPY" else CATALOG[sku],
            }
            for sku in skus
        ],
        "metadata": {"channel": rng.choice(["web", "mobile", "partner-api"])},
    }


def _bad_body(rng: random.Random, index: int) -> bytes:
    order = _valid_order(rng, index)
    match rng.randrange(5):
        case 0:
            order["items"][0]["quantity"] = -1
        case 1:
            del order["currency"]
        case 2:
            order["items"][0]["unit_price"] = 19.99  # a float, not a decimal string
        case 3:
            order["currency"] = "EURO"
        case _:
            return b'{"customer_id": "cust-001", "items": ['  # truncated JSON
    return json.dumps(order).encode()


_BAD_KINDS = ("bad-signature", "bad-body", "bad-signature", "bad-body", "wrong-type", "too-large")


def _submission(kind: str, rng: random.Random, index: int) -> Submission:
    match kind:
        case "bad-signature":
            body = json.dumps(_valid_order(rng, index)).encode()
            return Submission(kind, body, signed_with="not-the-secret")
        case "bad-body":
            return Submission(kind, _bad_body(rng, index))
        case "wrong-type":
            return Submission(kind, b"customer=cust-001", "text/plain")
        case "too-large":
            return Submission(kind, json.dumps({"pad": "x" * 70_000}).encode())
        case _:
            return Submission("valid", json.dumps(_valid_order(rng, index)).encode())


def submissions(count: int, seed: int = 7) -> list[Submission]:
    """One request in ten is bad on purpose, cycling through every kind of rejection;
    the order of the batch is shuffled."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not cryptography
    kinds = [
        _BAD_KINDS[(i // 10) % len(_BAD_KINDS)] if i % 10 == 9 else "valid" for i in range(count)
    ]
    rng.shuffle(kinds)
    return [_submission(kind, rng, index) for index, kind in enumerate(kinds)]


@dataclass
class SendReport:
    accepted: list[str] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def send_all(
    client: ConveyorClient,
    batch: list[Submission],
    concurrency: int = 8,
    on_done: Callable[[], None] = lambda: None,
) -> SendReport:
    report = SendReport()
    started = time.perf_counter()

    def send(item: Submission) -> tuple[Submission, int, dict[str, Any]]:
        response = item.send(client)
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": "not-json", "reason": response.text[:80]}
        return item, response.status_code, payload

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for item, status, payload in pool.map(send, batch):
            expected_accept = item.kind == "valid"
            if status == 202:
                report.accepted.append(str(payload["order_id"]))
            else:
                report.rejected[f"{status} {payload.get('error', '?')}"] += 1
            if (status == 202) != expected_accept:
                report.unexpected.append(f"{item.kind} -> {status}")
            on_done()
    report.elapsed_s = time.perf_counter() - started
    return report
