"""The local stand-in for Lambda's X-Ray daemon: it takes the functions' spans, as the
daemon takes them in AWS, and keeps them in the state directory.

Each worker gets ``AWS_XRAY_DAEMON_ADDRESS`` pointing here, so the functions export
through the same :mod:`conveyor.aws.xray_udp` exporter they use in Lambda. Every span is
one JSON line in ``traces.jsonl``, written as it arrives: a stop, clean or not, loses
none that arrived, and a restart appends to the same file (``--fresh`` starts it anew).
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from conveyor.aws.xray_udp import HEADER, SAMPLED
from conveyor.local.iam import Guard

TRACES_FILE = "traces.jsonl"
RECEIVE_BUFFER = 4 * 1024 * 1024
"""Loopback UDP drops what does not fit while the reader is busy: room for bursts."""

log = logging.getLogger(__name__)

_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which in (None, "kvlist_value", "bytes_value"):
        return None
    return getattr(value, which)


def _attributes(pairs: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        assert isinstance(pair, KeyValue)
        found[pair.key] = _value(pair.value)
    return found


def spans_of(datagram: bytes) -> list[dict[str, Any]]:
    """The spans in one datagram, as the JSON objects ``traces.jsonl`` holds; a
    datagram in another format (an X-Ray segment) holds none of ours."""
    if not datagram.startswith(HEADER + SAMPLED):
        return []
    request = ExportTraceServiceRequest.FromString(
        base64.b64decode(datagram[len(HEADER + SAMPLED) :])
    )
    spans: list[dict[str, Any]] = []
    for resource_spans in request.resource_spans:
        service = _attributes(resource_spans.resource.attributes).get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": _KINDS.get(span.kind, "unspecified"),
                        "service": service,
                        "start_ns": span.start_time_unix_nano,
                        "end_ns": span.end_time_unix_nano,
                        "error": span.status.code == 2,
                        "attributes": _attributes(span.attributes),
                        "links": [
                            {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()}
                            for link in span.links
                        ],
                    }
                )
    return spans


class TraceReceiver:
    """Listens on 127.0.0.1 for the functions' spans and appends them to a file, from
    :meth:`start` until :meth:`stop`.

    Once :attr:`roles` names the functions' roles, a function's spans are kept only if
    its role may ``xray:PutTraceSegments``, as X-Ray takes them only then; each check is
    recorded like the functions' own calls, so the least-privilege proof sees the use.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.address = ""
        self.received = 0
        self.roles: Mapping[str, Guard] = {}
        self._verdicts: dict[str, bool] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _allowed(self, service: str) -> bool:
        """Whether ``service``'s spans are kept: asked once per function, as its role
        does not change while the stack runs."""
        if not self.roles:
            return True
        if service not in self._verdicts:
            self._verdicts[service] = self._may_send(service)
        return self._verdicts[service]

    def _may_send(self, service: str) -> bool:
        role = self.roles.get(service)
        try:
            if role is None:
                raise PermissionError(f"no function {service!r} runs here")
            role.check("xray", "PutTraceSegments", {})
        except (ClientError, PermissionError) as exc:
            log.warning("the spans of %s are dropped: %s", service, exc)
            return False
        return True

    def start(self, path: Path, *, fresh: bool = False) -> str:
        """Listen, appending to ``path`` (emptied first when ``fresh``); the address."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if fresh:
            path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        listener.bind((self.host, 0))
        listener.settimeout(0.2)
        self.address = "{}:{}".format(*listener.getsockname())
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._receive, args=(listener, path), name="traces", daemon=True
        )
        self._thread.start()
        return self.address

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _receive(self, listener: socket.socket, path: Path) -> None:
        with listener, path.open("a", encoding="utf-8") as out:
            while not self._stop.is_set():
                try:
                    datagram = listener.recv(65_535)
                except TimeoutError:
                    continue
                try:
                    spans = spans_of(datagram)
                except Exception:  # a damaged datagram must not stop the rest
                    log.warning("a trace datagram could not be read; it was dropped")
                    continue
                for span in spans:
                    if not self._allowed(span["service"]):
                        continue
                    out.write(json.dumps(span, separators=(",", ":")) + "\n")
                out.flush()
                self.received += len(spans)
