"""One order, one upload, one trace each, across every function and queue they pass
through, on the local stack of each profile; a poisoned message's every receive is an
attempt in its order's trace."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.client import ConveyorClient
from conveyor.local.runtime import Started
from conveyor.local.state import EmulatorClients
from conveyor.local.traces import TRACES_FILE
from conveyor.ops import traces
from conveyor.ops.traces import Hop, Waterfall
from tests import samples
from tests.integration.conftest import (
    DEAD_LETTER_WAIT_S,
    eventually,
    faulty_stack_receives,
    log_lines,
    settled,
)

pytestmark = pytest.mark.integration


def order(customer: str = "cust-trace") -> dict[str, Any]:
    return {
        "order_id": f"tr-{uuid.uuid4().hex[:12]}",
        "customer_id": customer,
        "currency": "EUR",
        "items": [{"sku": "KB-1", "quantity": 1, "unit_price": "5.00"}],
    }


def trace_when(
    stack: Started, reference: str, done: Callable[[Waterfall], bool], timeout_s: float = 60
) -> Waterfall:
    """The trace ``reference`` names, once ``done`` holds of it (spans arrive as their
    hops end)."""

    def probe() -> Waterfall | None:
        try:
            found = traces.find(stack.state_dir / TRACES_FILE, reference)
        except traces.TraceNotFoundError:
            return None
        return found if done(found) else None

    return eventually(probe, timeout_s=timeout_s)


def records(trace: Waterfall, queue_suffix: str) -> list[Hop]:
    return [h for h in trace.hops if h.name.endswith(f"{queue_suffix} process")]


def children(trace: Waterfall, parent: Hop) -> list[Hop]:
    """The hops right under ``parent`` in the waterfall's parent order."""
    index = trace.hops.index(parent)
    found = []
    for hop in trace.hops[index + 1 :]:
        if hop.depth <= parent.depth:
            break
        if hop.depth == parent.depth + 1:
            found.append(hop)
    return found


def test_an_order_is_one_trace_through_the_publisher_sns_both_queues_and_their_writes(
    stack: Started, client: ConveyorClient
) -> None:
    sent = order()
    answer = client.send_order(sent)
    assert answer.status_code == 202, answer.text
    trace_id = answer.headers["X-Trace-Id"]
    assert len(trace_id) == 32

    def complete(trace: Waterfall) -> bool:
        return all(
            [r.outcome for r in records(trace, q)] == ["processed"] for q in ("billing", "archive")
        )

    trace = trace_when(stack, sent["order_id"], complete)
    assert trace.trace_id == trace_id, "the answer names the trace the order is found in"
    assert set(trace.services) == {"publisher", "billing", "archive"}

    [root] = [h for h in trace.hops if h.depth == 0]
    assert (root.service, root.kind) == ("publisher", "server")
    [publish] = [h for h in children(trace, root) if h.kind == "producer"]
    assert publish.name.endswith("orders send")
    for queue, write in (("billing", "DynamoDB.PutItem"), ("archive", "S3.PutObject")):
        [record] = records(trace, queue)
        assert record in children(trace, publish), f"{queue} continues the published message"
        assert record.start_ms >= publish.start_ms
        assert record.waited_ms is not None, "the queue wait is shown"
        assert record.waited_ms >= 0
        assert record.attempt == 1
        assert write in [h.name for h in children(trace, record)], f"{queue}'s own write"
        assert any(
            line.get("trace_id") == trace_id and line.get("order_id") == sent["order_id"]
            for line in log_lines(stack, queue)
        ), f"{queue}'s log lines carry the trace id"

    result = CliRunner().invoke(
        app, ["trace", sent["order_id"], "--json", "--state-dir", str(stack.state_dir)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["trace_id"] == trace_id


def test_an_upload_is_one_trace_from_its_presign_through_the_queue_to_its_variants(
    stack: Started, aws: EmulatorClients, client: ConveyorClient, tmp_path: Path
) -> None:
    photo = tmp_path / "traced.jpg"
    photo.write_bytes(samples.jpeg_exif_rotated())
    upload = client.upload(photo)
    assert len(upload.trace_id) == 32
    eventually(lambda: settled(stack, aws, upload.upload_id))

    trace = trace_when(
        stack,
        upload.upload_id,
        lambda t: [r.outcome for r in records(t, "images")] == ["processed"],
    )
    assert trace.trace_id == upload.trace_id
    assert set(trace.services) == {"presign", "images"}
    [root] = [h for h in trace.hops if h.depth == 0]
    assert (root.service, root.name) == ("presign", "presign")
    [record] = records(trace, "images")
    assert record in children(trace, root), "the object's metadata carried the trace"
    assert record.waited_ms is not None
    assert record.waited_ms >= 0
    under = [h.name for h in children(trace, record)]
    assert "S3.GetObject" in under
    assert under.count("S3.PutObject") >= 3, "a variant per size at least"
    assert any(name.endswith("media-events send") for name in under), "the result event"


def test_a_poisoned_orders_every_receive_is_an_attempt_in_its_trace(
    faulty_stack: Started,
) -> None:
    sent = order(customer="poison")
    with faulty_stack.client() as http:
        answer = http.send_order(sent)
    assert answer.status_code == 202, answer.text
    allowed = faulty_stack_receives("billing")

    trace = trace_when(
        faulty_stack,
        sent["order_id"],
        lambda t: len(records(t, "billing")) == allowed,
        timeout_s=DEAD_LETTER_WAIT_S,
    )
    assert trace.trace_id == answer.headers["X-Trace-Id"]
    attempts = records(trace, "billing")
    assert sorted(h.attempt or 0 for h in attempts) == list(range(1, allowed + 1))
    assert {h.outcome for h in attempts} == {"failed"}
    assert all(h.error for h in attempts)
    assert trace.retries == allowed - 1
    # Every attempt continues the same published message.
    [publish] = [h for h in trace.hops if h.kind == "producer"]
    assert all(h in children(trace, publish) for h in attempts)
    # Each later attempt waited out the visibility timeout of the one before.
    ordered = sorted(attempts, key=lambda h: h.attempt or 0)
    assert all(b.start_ms > a.start_ms + a.duration_ms for a, b in itertools.pairwise(ordered))
