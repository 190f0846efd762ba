"""Spans out of a function to the X-Ray daemon Lambda runs beside it, as OTLP over UDP.

With active tracing on, Lambda runs an X-Ray daemon in every execution environment and
names it in ``AWS_XRAY_DAEMON_ADDRESS``. The daemon takes OTLP spans as well as X-Ray
segments: one datagram is the daemon's JSON header line, a format prefix (``T1S`` for
sampled spans), then the base64 of an OTLP ``ExportTraceServiceRequest``. This is the
path the AWS Distro for OpenTelemetry takes in Lambda. Against an HTTPS export it needs
no request signing, no round trip before the environment freezes, no X-Ray interface
endpoint in the private profile's VPC, and no permission beyond active tracing's own.

Locally the runtime listens on 127.0.0.1 for the same datagrams
(:mod:`conveyor.local.traces`), so the functions run this very exporter there too.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

DAEMON_ADDRESS = "AWS_XRAY_DAEMON_ADDRESS"
HEADER = b'{"format":"json","version":1}\n'
SAMPLED = b"T1S"
MAX_DATAGRAM = 64_000
"""Under UDP's 65,507-byte payload: a span larger than this is left out (the daemon could
not take it either)."""


def parse_address(value: str) -> tuple[str, int]:
    """``host:port``, or the daemon's ``tcp:host:port udp:host:port`` form (the UDP one)."""
    chosen = value.strip()
    for part in chosen.split():
        if part.startswith("udp:"):
            chosen = part.removeprefix("udp:")
    host, _, port = chosen.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{DAEMON_ADDRESS}={value!r} is not host:port")
    return host, int(port)


def datagram(spans: Sequence[ReadableSpan]) -> bytes:
    # Imported at the first sampled span, not at start: protobuf and the OTLP messages
    # are a fifth of `import boto3`, and at a 5% sample most environments never send.
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return HEADER + SAMPLED + base64.b64encode(encode_spans(spans).SerializeToString())


def datagrams(spans: Sequence[ReadableSpan]) -> list[bytes]:
    """A datagram per span (the span processor hands over one at a time), each under
    :data:`MAX_DATAGRAM`."""
    sent = (datagram([span]) for span in spans)
    return [payload for payload in sent if len(payload) <= MAX_DATAGRAM]


class XRayUdpExporter(SpanExporter):
    def __init__(self, address: str) -> None:
        self.address = parse_address(address)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            for payload in datagrams(spans):
                self._socket.sendto(payload, self.address)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._socket.close()
