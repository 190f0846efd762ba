"""One trace per order and per upload, across every function and queue: OpenTelemetry.

Each function's invocation is a span, each AWS call a span (the botocore
instrumentation), and each record of a batch a span whose parent is the context that
came with the message, so an order's billing and archiving sit in the trace its
``POST /orders`` began, however long the message waited. The context travels as W3C
``traceparent``: in the caller's HTTP header, in an SNS/SQS message attribute (the
botocore instrumentation adds it to every publish), and for an upload in the object's
metadata (the presigned POST pins it).

Sampling is the standard ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG``, set by the
deployment (``-c trace_sample``): a trace is sampled or not where it starts, and every
hop after follows. An unsampled trace still has its id, in logs and answers.

Spans leave through :mod:`conveyor.aws.xray_udp` when the environment names a daemon;
without one they are made and dropped, which costs microseconds.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import random
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from conveyor.aws import xray_udp
from conveyor.aws.snapshot import after_restore
from conveyor.core.spans import (
    ANNOTATION_PREFIX,
    FAILED,
    MESSAGE_ID,
    OUTCOME,
    PROCESSED,
    QUEUE,
    RECEIVE_COUNT,
    SENT_AT_MS,
    THROTTLED,
)

TRACEPARENT = "traceparent"
TRACE_ID_HEADER = "X-Trace-Id"
"""Every HTTP answer names its trace, as it names its request (``X-Request-Id``)."""

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
    }
)

logger = Logger()
_propagator = TraceContextTextMapPropagator()


class _Ids(IdGenerator):
    """Random trace and span ids from a generator of this module's own.

    The SDK's default draws from the global ``random``: tracing would then move the state
    every other user of that module sees, and after a SnapStart restore every execution
    environment would draw the same ids. This one is reseeded from the OS on a restore.
    """

    def __init__(self) -> None:
        self._random = random.Random()  # noqa: S311 - ids, not secrets; seeded from os.urandom
        after_restore(self._random.seed)

    def generate_span_id(self) -> int:
        span_id = self._random.getrandbits(64)
        return span_id if span_id != trace.INVALID_SPAN_ID else self.generate_span_id()

    def generate_trace_id(self) -> int:
        trace_id = self._random.getrandbits(128)
        return trace_id if trace_id != trace.INVALID_TRACE_ID else self.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return True


def _provider() -> TracerProvider:
    service = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "conveyor")
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}), id_generator=_Ids()
    )
    daemon = os.environ.get(xray_udp.DAEMON_ADDRESS)
    if daemon:
        # One span, one datagram, when it ends: nothing waits in a buffer when the
        # environment freezes or a timeout kills it, and a send is a few microseconds.
        provider.add_span_processor(SimpleSpanProcessor(xray_udp.XRayUdpExporter(daemon)))
    return provider


_tracer_provider = _provider()
_tracer = _tracer_provider.get_tracer("conveyor")
propagate.set_global_textmap(_propagator)
# The instrumentation's own version check reads every installed distribution's
# metadata, a cost paid at every cold start for nothing: the versions are pinned.
BotocoreInstrumentor().instrument(  # type: ignore[no-untyped-call]
    tracer_provider=_tracer_provider, skip_dep_check=True
)
# Tracing's libraries make the heap a full garbage collection walks larger, and one such
# collection during a cold start cost 20-30 ms. What is loaded by now lives as long as
# the process, so it is moved out of the collector's way: a function's whole import is
# 4-11% shorter for it (bench/RESULTS.md).
gc.freeze()

_cold = True
_record_outcome: ContextVar[list[str] | None] = ContextVar("record_outcome", default=None)

Handler = TypeVar("Handler", bound=Callable[[dict[str, Any], Any], Any])
Carrier = Callable[[dict[str, Any]], Mapping[str, str]]


def current_trace_id() -> str:
    """The current trace's id (32 hex digits), or "" outside any span."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else ""


def traceparent() -> str:
    """The current span as a W3C ``traceparent`` value, for a carrier this module's
    instrumentation does not fill itself (an object's metadata)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT, "")


def context_from(carrier: Mapping[str, str]) -> Context | None:
    """The remote parent a carrier names; None when it names none (or a malformed one)."""
    if not carrier.get(TRACEPARENT):
        return None
    extracted = _propagator.extract(dict(carrier))
    return extracted if trace.get_current_span(extracted).get_span_context().is_valid else None


def annotate(**attributes: str | int) -> None:
    """Name what the current span is about (``order_id=...``), so a trace can be found
    by it."""
    span = trace.get_current_span()
    for key, value in attributes.items():
        span.set_attribute(f"{ANNOTATION_PREFIX}{key}", value)


def _show_trace(span: trace.Span) -> None:
    logger.append_keys(trace_id=trace.format_trace_id(span.get_span_context().trace_id))


def invocation(carrier: Carrier | None = None) -> Callable[[Handler], Handler]:
    """Make each invocation of a handler a span; ``carrier`` reads the caller's trace
    context from the event (an HTTP request's headers), which then is the parent."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(event: dict[str, Any], context: Any) -> Any:
            global _cold  # noqa: PLW0603 - one flag per execution environment
            parent = context_from(carrier(event)) if carrier else None
            attributes: dict[str, Any] = {
                "faas.invocation_id": getattr(context, "aws_request_id", ""),
                "faas.coldstart": _cold,
            }
            _cold = False
            kind = SpanKind.SERVER if carrier else SpanKind.CONSUMER
            name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", handler.__module__)
            with _tracer.start_as_current_span(
                name, context=parent, kind=kind, attributes=attributes
            ) as span:
                _show_trace(span)
                result = handler(event, context)
                status = result.get("statusCode") if isinstance(result, dict) else None
                if isinstance(status, int):
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                return result

        return wrapper  # type: ignore[return-value]

    return decorate


@dataclass(frozen=True)
class ReceivedMessage:
    """What a record span is told of the message it handles."""

    message_id: str
    queue: str
    receive_count: int
    sent_at_ms: int
    carrier: Mapping[str, str]


@contextlib.contextmanager
def record(message: ReceivedMessage) -> Iterator[trace.Span]:
    """A span for one record of a batch, in the trace its message carries, linked to
    the invocation that handled it; its outcome is ``processed`` unless the handler
    says otherwise (:func:`mark`) or raises (``failed``, or ``throttled`` when AWS said
    to slow down)."""
    invocation_span = trace.get_current_span().get_span_context()
    links = [Link(invocation_span)] if invocation_span.is_valid else []
    outcome: list[str] = []
    token = _record_outcome.set(outcome)
    with _tracer.start_as_current_span(
        f"{message.queue} process",
        context=context_from(message.carrier) or Context(),
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={
            MESSAGE_ID: message.message_id,
            QUEUE: message.queue,
            RECEIVE_COUNT: message.receive_count,
            SENT_AT_MS: message.sent_at_ms,
        },
        record_exception=True,
        set_status_on_exception=True,
    ) as span:
        _show_trace(span)
        try:
            yield span
        except Exception as exc:
            span.set_attribute(OUTCOME, THROTTLED if _throttled(exc) else FAILED)
            raise
        else:
            span.set_attribute(OUTCOME, outcome[-1] if outcome else PROCESSED)
        finally:
            _record_outcome.reset(token)
            if invocation_span.is_valid:
                logger.append_keys(trace_id=trace.format_trace_id(invocation_span.trace_id))


def mark(outcome: str) -> None:
    """Say how the record being handled ended, where it did not simply succeed."""
    recorded = _record_outcome.get()
    if recorded is not None:
        recorded.append(outcome)


def _throttled(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
    return code in THROTTLING_CODES
