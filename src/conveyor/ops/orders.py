"""Follow an order through ``GET /orders/{order_id}``, as any client would."""

from __future__ import annotations

import time
from typing import Any

from conveyor.client import ConveyorClient

BILLED = "billed"


def await_billed(client: ConveyorClient, order_id: str, timeout_s: float) -> dict[str, Any]:
    """The order's last status answer: billed, or whatever it was when time ran out."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.order_status(order_id)
        view: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
        if view.get("status") == BILLED or time.monotonic() > deadline:
            return view
        time.sleep(0.2)
