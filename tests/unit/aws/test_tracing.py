"""The functions' spans: what a record's span says of its outcome, how the context is
read from a carrier, and the X-Ray daemon's datagrams (read back by the local receiver)."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conveyor.aws import tracing, xray_udp
from conveyor.aws.snapshot import HOOKS
from conveyor.core import spans
from conveyor.local.iam import Guard, Locator, role_policy
from conveyor.local.traces import TraceReceiver, spans_of
from conveyor.ops import traces
from conveyor.topology import TOPOLOGY

_exporter = InMemorySpanExporter()
tracing._tracer_provider.add_span_processor(SimpleSpanProcessor(_exporter))


@pytest.fixture
def finished() -> Iterator[InMemorySpanExporter]:
    _exporter.clear()
    yield _exporter
    _exporter.clear()


PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def message(carrier: dict[str, str] | None = None) -> tracing.ReceivedMessage:
    return tracing.ReceivedMessage(
        message_id="m-1",
        queue="conveyor-billing",
        receive_count=2,
        sent_at_ms=1_700_000_000_000,
        carrier=carrier if carrier is not None else {tracing.TRACEPARENT: PARENT},
    )


def one(exporter: InMemorySpanExporter, kind: trace.SpanKind) -> ReadableSpan:
    """The one span of ``kind``; for a consumer, the record's (not its invocation's)."""
    [span] = [
        s
        for s in exporter.get_finished_spans()
        if s.kind is kind and (kind is not trace.SpanKind.CONSUMER or s.name.endswith("process"))
    ]
    return span


def test_a_record_continues_the_trace_its_message_carries_and_links_its_invocation(
    finished: InMemorySpanExporter,
) -> None:
    @tracing.invocation()
    def handler(event: dict[str, object], context: object) -> None:
        with tracing.record(message()):
            tracing.annotate(order_id="o-1")

    handler({}, None)
    record = one(finished, trace.SpanKind.CONSUMER)
    assert record.name == "conveyor-billing process"
    assert trace.format_trace_id(record.context.trace_id) == PARENT.split("-")[1]
    assert record.parent is not None
    assert trace.format_span_id(record.parent.span_id) == PARENT.split("-")[2]
    attributes = dict(record.attributes or {})
    assert attributes[spans.OUTCOME] == spans.PROCESSED
    assert attributes[spans.RECEIVE_COUNT] == 2
    assert attributes[spans.SENT_AT_MS] == 1_700_000_000_000
    assert attributes[spans.ORDER_ID] == "o-1"
    invocations = [s for s in finished.get_finished_spans() if s is not record]
    [invocation] = invocations
    assert [link.context.span_id for link in record.links] == [invocation.context.span_id]


@pytest.mark.parametrize(
    ("raised", "outcome"),
    [
        (RuntimeError("bug"), spans.FAILED),
        (
            ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem"),
            spans.THROTTLED,
        ),
    ],
    ids=["bug", "throttled"],
)
def test_a_record_that_raises_is_failed_or_throttled_and_marked_as_an_error(
    finished: InMemorySpanExporter, raised: Exception, outcome: str
) -> None:
    with pytest.raises(type(raised)), tracing.record(message()):
        raise raised
    span = one(finished, trace.SpanKind.CONSUMER)
    assert dict(span.attributes or {})[spans.OUTCOME] == outcome
    assert span.status.status_code is trace.StatusCode.ERROR


def test_a_record_sent_to_its_dead_letter_queue_is_quarantined(
    finished: InMemorySpanExporter,
) -> None:
    with tracing.record(message()):
        tracing.mark(spans.QUARANTINED)
    tracing.mark(spans.FAILED)  # outside any record: nothing to mark
    span = one(finished, trace.SpanKind.CONSUMER)
    assert dict(span.attributes or {})[spans.OUTCOME] == spans.QUARANTINED


@pytest.mark.parametrize(
    "carrier",
    [{}, {tracing.TRACEPARENT: "00-not-a-trace-01"}, {tracing.TRACEPARENT: ""}],
    ids=["none", "malformed", "empty"],
)
def test_a_message_without_a_usable_context_starts_a_trace_of_its_own(
    finished: InMemorySpanExporter, carrier: dict[str, str]
) -> None:
    assert tracing.context_from(carrier) is None
    with tracing.record(message(carrier)):
        pass
    span = one(finished, trace.SpanKind.CONSUMER)
    assert span.parent is None
    assert trace.format_trace_id(span.context.trace_id) != PARENT.split("-")[1]


def test_an_http_invocation_continues_the_callers_trace_and_names_it(
    finished: InMemorySpanExporter,
) -> None:
    seen: list[str] = []

    @tracing.invocation(carrier=lambda event: {tracing.TRACEPARENT: str(event["tp"])})
    def handler(event: dict[str, object], context: object) -> dict[str, object]:
        seen.append(tracing.current_trace_id())
        seen.append(tracing.traceparent())
        return {"statusCode": 503}

    handler({"tp": PARENT}, None)
    span = one(finished, trace.SpanKind.SERVER)
    assert seen[0] == PARENT.split("-")[1]
    assert seen[1].split("-")[1] == seen[0], "what it hands on is in the same trace"
    assert dict(span.attributes or {})["http.response.status_code"] == 503
    assert span.status.status_code is trace.StatusCode.ERROR
    assert tracing.current_trace_id() == "", "outside any span"


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("169.254.79.129:2000", ("169.254.79.129", 2000)),
        ("tcp:127.0.0.1:2000 udp:127.0.0.2:2001", ("127.0.0.2", 2001)),
    ],
)
def test_the_daemon_address_is_read_in_both_of_its_forms(
    value: str, address: tuple[str, int]
) -> None:
    assert xray_udp.parse_address(value) == address


def test_a_daemon_address_without_a_port_is_refused() -> None:
    with pytest.raises(ValueError, match="not host:port"):
        xray_udp.parse_address("localhost")


def test_each_span_is_a_datagram_under_the_limit_and_one_too_large_is_left_out(
    finished: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test", tracer_provider=tracing._tracer_provider)
    for n in range(400):
        with tracer.start_as_current_span(f"span-{n}", attributes={"padding": "x" * 300}):
            pass
    with tracer.start_as_current_span("too-large", attributes={"padding": "x" * 70_000}):
        pass
    datagrams = xray_udp.datagrams(finished.get_finished_spans())
    assert len(datagrams) == 400
    assert all(len(d) <= xray_udp.MAX_DATAGRAM for d in datagrams)
    assert all(d.startswith(xray_udp.HEADER + xray_udp.SAMPLED) for d in datagrams)
    names = [span["name"] for d in datagrams for span in spans_of(d)]
    assert sorted(names) == sorted(f"span-{n}" for n in range(400))


def test_an_x_ray_segment_or_garbage_holds_none_of_our_spans() -> None:
    assert spans_of(xray_udp.HEADER + b'{"trace_id": "1-5759e988-bd862e3fe1be46a994272793"}') == []


def test_the_local_receiver_keeps_what_the_exporter_sends(
    tmp_path: Path, finished: InMemorySpanExporter
) -> None:
    receiver = TraceReceiver()
    receiver.start(tmp_path / "traces.jsonl")
    try:
        with trace.get_tracer(
            "test", tracer_provider=tracing._tracer_provider
        ).start_as_current_span("sent", attributes={spans.ORDER_ID: "o-9"}):
            pass
        # A damaged datagram first: it is dropped, and the receiver goes on.
        host, port = xray_udp.parse_address(receiver.address)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(xray_udp.HEADER + xray_udp.SAMPLED + b"!not base64!", (host, port))
        exporter = xray_udp.XRayUdpExporter(receiver.address)
        exporter.export(finished.get_finished_spans())
        exporter.shutdown()
        deadline = time.monotonic() + 10
        while receiver.received < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        receiver.stop()
    [kept] = traces.load(tmp_path / "traces.jsonl")
    assert kept["name"] == "sent"
    assert kept["attributes"][spans.ORDER_ID] == "o-9"
    assert kept["service"]


def test_starting_a_function_does_not_load_the_span_encoding_until_a_span_is_sent() -> None:
    """protobuf and the OTLP messages are a fifth of ``import boto3``: an environment that
    never handles a sampled trace never loads them."""
    probe = (
        "import gc, sys, conveyor.aws.tracing\n"
        "assert gc.get_freeze_count() > 0, 'the libraries are out of the collector s way'\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google.protobuf', "
        "'opentelemetry.exporter', 'opentelemetry.proto'))))"
    )
    env = {**os.environ, xray_udp.DAEMON_ADDRESS: "127.0.0.1:2000", "AWS_DEFAULT_REGION": "x"}
    loaded = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def send_and_read(
    receiver: TraceReceiver, path: Path, finished: InMemorySpanExporter, service: str
) -> list[dict[str, object]]:
    """Spans from ``service`` through the exporter to ``receiver``; what it kept."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(finished))
    with provider.get_tracer("test").start_as_current_span(f"from {service}"):
        pass
    receiver.start(path)
    before = receiver.received
    try:
        exporter = xray_udp.XRayUdpExporter(receiver.address)
        exporter.export(finished.get_finished_spans())
        exporter.shutdown()
        deadline = time.monotonic() + 10
        while receiver.received == before and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        receiver.stop()
    return traces.load(path)


def test_the_local_daemon_keeps_spans_only_from_a_role_that_may_put_trace_segments(
    tmp_path: Path, finished: InMemorySpanExporter
) -> None:
    """As X-Ray refuses a role without ``xray:PutTraceSegments``; the use is recorded for
    the least-privilege proof."""
    where = Locator.of({})
    allowed = Guard(
        "publisher", role_policy(TOPOLOGY, TOPOLOGY.function("publisher")), where, tmp_path
    )
    bare = Guard("billing", {"Statement": []}, where, tmp_path)
    receiver = TraceReceiver()
    receiver.roles = {"publisher": allowed, "billing": bare}
    kept = send_and_read(receiver, tmp_path / "kept.jsonl", finished, "publisher")
    assert [span["name"] for span in kept] == ["from publisher"]
    finished.clear()
    assert send_and_read(receiver, tmp_path / "refused.jsonl", finished, "billing") == []
    finished.clear()
    assert send_and_read(receiver, tmp_path / "stranger.jsonl", finished, "stranger") == []
    recorded = [
        json.loads(line) for line in (tmp_path / "publisher.jsonl").read_text().splitlines()
    ]
    assert recorded == [{"action": "xray:PutTraceSegments", "resource": "*", "allowed": True}]
    assert json.loads((tmp_path / "billing.jsonl").read_text())["allowed"] is False


def test_ids_come_from_a_generator_of_their_own_reseeded_after_a_restore(
    finished: InMemorySpanExporter,
) -> None:
    """Spans never move the global ``random`` (other code, and Hypothesis, watch it), and
    a SnapStart restore gives each environment ids of its own."""
    before = random.getstate()
    with tracing.record(message({})):
        pass
    assert random.getstate() == before
    generator = tracing._tracer_provider.id_generator
    assert isinstance(generator, tracing._Ids)
    snapshot = generator._random.getstate()
    for hook in HOOKS:
        hook()
    assert generator._random.getstate() != snapshot
