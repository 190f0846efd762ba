"""``/console``: the local web console and the small JSON API behind it.

The page is plain HTML, CSS and JavaScript from ``console_assets/``; everything it shows
comes from ``/console/api/...``, read from the runtime (function stats, EMF totals) and
the emulator (queues, tables, dead letters). The helpers that act (send an order, upload
an image, redrive a DLQ) sign with the dev credentials, so they are only mounted when
the gateway listens on loopback, and every request must name this gateway as its host
(a page elsewhere cannot reach them through DNS rebinding) and, when a browser says
where it comes from, come from this page's own origin.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError

from conveyor.aws import images_table, orders_table
from conveyor.aws.clients import has_code
from conveyor.aws.dynamo import newest_in_status
from conveyor.client import UploadError
from conveyor.core.media import EXTENSIONS
from conveyor.core.orders import archive_key_of
from conveyor.local.downloads import media_base_url
from conveyor.local.edges import HttpResponse, json_error
from conveyor.local.status import queue_depth
from conveyor.local.traces import TRACES_FILE
from conveyor.ops import diagram, traces
from conveyor.ops.redrive import dead_letters, redrive
from conveyor.topology import ARCHIVE_BUCKET, IMAGES_TABLE, ORDERS_TABLE

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from conveyor.local.runtime import LocalRuntime, Started

Route = Callable[["Started", Mapping[str, str], bytes], HttpResponse]

log = logging.getLogger(__name__)

CONSOLE_PATH = "/console"
API = f"{CONSOLE_PATH}/api/"
RECENT = 12
TRACE_ROUTE = "trace/"
DEAD_LETTERS_SHOWN = 20
MODULES = ("console", "common", "overview", "orders", "uploads", "traces", "canary", "dead_letters")
"""The page's ES modules: the entry module, what the views share, and one per view."""
_ASSETS = {
    "": ("index.html", "text/html; charset=utf-8"),
    "/": ("index.html", "text/html; charset=utf-8"),
    "/console.css": ("console.css", "text/css; charset=utf-8"),
    **{f"/{module}.js": (f"{module}.js", "text/javascript; charset=utf-8") for module in MODULES},
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_UPLOAD_TYPES = tuple(EXTENSIONS)


def _json(payload: Any, status: int = 200) -> HttpResponse:
    body = json.dumps(payload, default=_plain, separators=(",", ":")).encode()
    return HttpResponse(status, body, {"Content-Type": "application/json", **_SECURITY_HEADERS})


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Console:
    """The console's routes, bound to one running (or starting) local runtime."""

    def __init__(self, runtime: LocalRuntime, media_url: str) -> None:
        self.runtime = runtime
        self.media_url = media_url
        # The page shows thumbnails from the media origin, and nothing else from there.
        csp = _SECURITY_HEADERS["Content-Security-Policy"]
        self._page_headers = {
            **_SECURITY_HEADERS,
            "Content-Security-Policy": csp.replace(
                "img-src 'self' data:", f"img-src 'self' data: {media_url}"
            ),
        }
        self.actions = is_loopback(runtime.options.host)
        self._dead_letters = threading.Lock()  # a peek must not hide what a redrive moves
        # Every route but the overview needs a started stack, and gets it as an argument.
        self._routes: dict[tuple[str, str], Route] = {
            ("GET", "pipelines"): lambda s, h, b: self.pipelines(),
            ("GET", "orders"): lambda s, h, b: self.orders(s),
            ("GET", "images"): lambda s, h, b: self.images(s),
            ("GET", "dead-letters"): lambda s, h, b: self.dead_letter_depths(s),
            ("GET", "canary"): lambda s, h, b: self.canary(),
        }
        if self.actions:
            self._routes |= {
                ("POST", "orders"): self.send_order,
                ("POST", "uploads"): self.upload,
                ("POST", "redrive"): self.redrive,
                # A POST: listing receives the messages, which raises their receive counts.
                ("POST", "dead-letters"): self.list_dead_letters,
            }

    # -- dispatch -------------------------------------------------------------------

    def __call__(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> HttpResponse:
        refused = self._refused(method, headers)
        if refused is not None:
            return refused
        path = urlsplit(target).path
        if not path.startswith(API):
            return self._asset(method, path.removeprefix(CONSOLE_PATH))
        name = path.removeprefix(API)
        if (method, name) == ("GET", "overview"):
            return self._guarded(method, name, self.overview)
        route = self._route(method, name)
        if route is None:
            return self._no_route(name)
        started = self.runtime.started
        if started is None:
            return json_error(503, "starting", "the local stack is starting; retry shortly")
        return self._guarded(method, name, lambda: route(started, headers, body))

    def _route(self, method: str, name: str) -> Route | None:
        if method == "GET" and name.startswith(TRACE_ROUTE):
            reference = unquote(name.removeprefix(TRACE_ROUTE))
            return lambda started, _headers, _body: self.trace(started, reference)
        return self._routes.get((method, name))

    def _guarded(self, method: str, name: str, call: Callable[[], HttpResponse]) -> HttpResponse:
        try:
            return call()
        except Exception as exc:
            log.exception("console %s %s failed", method, name)
            return json_error(503, "unavailable", f"the local stack did not answer: {exc}")

    def _no_route(self, name: str) -> HttpResponse:
        allowed = sorted(m for m, n in [*self._routes, ("GET", "overview")] if n == name)
        if not allowed:
            return json_error(404, "not_found", f"no console API {name!r}")
        allow = ", ".join(allowed)
        return json_error(405, "method_not_allowed", f"use {allow}", {"Allow": allow})

    def _refused(self, method: str, headers: Mapping[str, str]) -> HttpResponse | None:
        host = headers.get("host", "")
        gateway = self.runtime.gateway
        if gateway is None:  # the runtime let go of it: it is stopping
            return json_error(503, "stopped", "the local stack has stopped")
        port = gateway.url.rsplit(":", 1)[1]
        if host not in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            return json_error(
                421,
                "wrong_host",
                f"the console answers only at its own address: open {gateway.url}{CONSOLE_PATH}",
            )
        origin = headers.get("origin")
        if method not in ("GET", "HEAD") and origin is not None and origin != f"http://{host}":
            return json_error(403, "cross_origin", "the console acts only for its own page")
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return json_error(403, "cross_origin", "the console acts only for its own page")
        return None

    def _asset(self, method: str, name: str) -> HttpResponse:
        if method not in ("GET", "HEAD"):
            return json_error(405, "method_not_allowed", "use GET", {"Allow": "GET, HEAD"})
        if name not in _ASSETS:
            return json_error(404, "not_found", f"no console page {name!r}")
        filename, content_type = _ASSETS[name]
        data = resources.files("conveyor.local").joinpath("console_assets", filename).read_bytes()
        # The page's file picker offers the types the pipeline accepts, from their one home.
        data = data.replace(b"{{upload_types}}", ",".join(_UPLOAD_TYPES).encode())
        return HttpResponse(200, data, {"Content-Type": content_type, **self._page_headers})

    # -- reads ----------------------------------------------------------------------

    def trace(self, started: Started, reference: str) -> HttpResponse:
        """One trace's waterfall, from the spans the stack keeps (they outlive a stop)."""
        try:
            found = traces.find(started.state_dir / TRACES_FILE, reference)
        except traces.TraceNotFoundError as exc:
            return json_error(404, "not_found", str(exc))
        return _json(found.as_json())

    def pipelines(self) -> HttpResponse:
        parts = diagram.pipelines(diagram.graph(self.runtime.topology))
        return _json(
            [
                {
                    "title": part.title,
                    "nodes": [{**asdict(n), "column": part.columns[n.id]} for n in part.nodes],
                    "edges": [asdict(e) for e in part.edges],
                }
                for part in parts
            ]
        )

    def overview(self) -> HttpResponse:
        runtime = self.runtime
        started = runtime.started
        payload: dict[str, Any] = {
            "phase": runtime.phase,
            "detail": runtime.phase_detail,
            "actions": self.actions,
            "problems": [],
            "functions": {},
            "queues": {},
            "metrics": runtime.metrics.snapshot(),
        }
        for name, pool in list(runtime.pools.items()):
            stats = pool.stats
            alive = pool.alive()
            payload["functions"][name] = {
                "invocations": stats.invocations,
                "errors": stats.errors,
                "last_duration_ms": round(stats.last_duration_ms, 1),
                "workers": alive,
                "concurrency": pool.function.concurrency,
            }
            if started is not None and alive < pool.function.concurrency:
                payload["problems"].append(
                    f"function {name}: {alive} of {pool.function.concurrency} workers running "
                    "(a worker is being replaced)"
                )
        if started is None:
            return _json(payload)
        problem = runtime.emulator_problem()
        if problem:
            payload["problems"].append(problem)
            return _json(payload)
        sqs = started.clients("sqs")
        try:
            for name, url in started.info.resources.queues.items():
                visible, in_flight = queue_depth(sqs, url)
                payload["queues"][name] = {"visible": visible, "in_flight": in_flight}
        except Exception as exc:
            payload["problems"].append(f"the AWS emulator did not answer: {exc}")
        return _json(payload)

    def canary(self) -> HttpResponse:
        """The canary's kept runs, newest first; ``enabled`` false without ``--canary``."""
        runs = self.runtime.canary
        if runs is None:
            return _json({"enabled": False, "every_s": None, "runs": []})
        return _json({"enabled": True, "every_s": runs.every_s, "runs": runs.latest()})

    def orders(self, started: Started) -> HttpResponse:
        info = started.info
        dynamodb, s3 = started.clients("dynamodb"), started.clients("s3")
        bucket = info.resources.buckets[ARCHIVE_BUCKET]
        rows = []
        for item in newest_in_status(
            dynamodb, info.resources.tables[ORDERS_TABLE], orders_table.STATUS_BILLED, RECENT
        ):
            key = archive_key_of(
                item["client_id"], item["order_id"], datetime.fromisoformat(item["accepted_at"])
            )
            rows.append(
                {
                    "order_id": item["order_id"],
                    "customer_id": item["customer_id"],
                    "total": item["total"],
                    "currency": item["currency"],
                    "status": item["status"],
                    "billed_at": item.get("billed_at"),
                    "archive_key": key,
                    "archived": _exists(s3, bucket, key),
                    "correlation_id": item.get("correlation_id"),
                }
            )
        return _json(rows)

    def images(self, started: Started) -> HttpResponse:
        dynamodb = started.clients("dynamodb")
        table = started.info.resources.tables[IMAGES_TABLE]
        found = [
            item
            for status in (images_table.PROCESSING, images_table.PROCESSED, images_table.FAILED)
            for item in newest_in_status(dynamodb, table, status, RECENT)
        ]
        found.sort(key=lambda item: str(item.get("updated_at", "")), reverse=True)
        media_base = media_base_url(self.media_url)
        rows = []
        for item in found[:RECENT]:
            variants = item.get("variants") or {}
            rows.append(
                {
                    "image_id": item["image_id"],
                    "status": item["status"],
                    "filename": item.get("original_filename", ""),
                    "width": item.get("width"),
                    "height": item.get("height"),
                    "reason": item.get("reason"),
                    "updated_at": item.get("updated_at"),
                    "variants": {
                        label: {
                            "url": images_table.variant_url(item, label, media_base),
                            "width": v["width"],
                            "height": v["height"],
                            "bytes": v["bytes"],
                            "formats": [
                                {"type": f["type"], "bytes": f["bytes"]}
                                for f in images_table.stored_formats(item, label)
                            ],
                        }
                        for label, v in sorted(variants.items(), key=lambda kv: -kv[1]["width"])
                    },
                }
            )
        return _json(rows)

    def dead_letter_depths(self, started: Started) -> HttpResponse:
        """Each DLQ's depth, from its attributes: refreshing the page receives nothing."""
        sqs = started.clients("sqs")
        queues = []
        for queue in self.runtime.topology.queues:
            visible, in_flight = queue_depth(sqs, started.info.resources.queues[queue.dlq_name])
            queues.append(
                {"queue": queue.name, "dlq": queue.dlq_name, "depth": visible + in_flight}
            )
        return _json(queues)

    # -- actions --------------------------------------------------------------------

    def send_order(self, started: Started, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        if not headers.get("content-type", "").startswith("application/json"):
            return json_error(415, "unsupported_media_type", "send the order as application/json")
        try:
            order = json.loads(body)
        except ValueError:
            return json_error(400, "invalid_json", "the body is not JSON")
        with started.client() as client:
            answer = client.send_order(order)
        return _relayed(answer.status_code, answer.text)

    def upload(self, started: Started, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in _UPLOAD_TYPES:
            return json_error(
                415,
                "unsupported_media_type",
                f"send the image as one of {', '.join(_UPLOAD_TYPES)}",
            )
        if not body:
            return json_error(400, "empty_upload", "the image is empty")
        filename = unquote(headers.get("x-filename", "")) or "upload"
        try:
            with started.client() as client:
                upload = client.upload_bytes(filename, body, content_type)
        except UploadError as exc:
            return _relayed(exc.status, exc.detail)
        answer = {"upload_id": upload.upload_id, "size": upload.size}
        return _relayed(202, json.dumps({**answer, "request_id": upload.request_id}))

    def list_dead_letters(
        self, started: Started, headers: Mapping[str, str], body: bytes
    ) -> HttpResponse:
        queue = self._queue_named(headers, body)
        if isinstance(queue, HttpResponse):
            return queue
        pair = started.info.resources.queue_pair(queue)
        logs = sorted(started.logs_dir.glob("*.log"))
        with self._dead_letters:
            letters = dead_letters(
                started.clients("sqs"), pair.dlq_url, logs, limit=DEAD_LETTERS_SHOWN
            )
        return _json({"queue": queue, "messages": [asdict(letter) for letter in letters]})

    def redrive(self, started: Started, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        queue = self._queue_named(headers, body)
        if isinstance(queue, HttpResponse):
            return queue
        with self._dead_letters:
            result = redrive(
                started.clients("sqs"), started.info.resources.queue_pair(queue), started.state_dir
            )
        return _json({"queue": queue, **asdict(result)})

    def _queue_named(self, headers: Mapping[str, str], body: bytes) -> str | HttpResponse:
        """The topology queue a ``{"queue": ...}`` body names, or the error to answer."""
        if not headers.get("content-type", "").startswith("application/json"):
            return json_error(415, "unsupported_media_type", 'send {"queue": ...} as JSON')
        try:
            queue = json.loads(body).get("queue")
        except (ValueError, AttributeError):
            return json_error(400, "invalid_json", 'send {"queue": "<name>"}')
        known = [q.name for q in self.runtime.topology.queues]
        if queue not in known:
            return json_error(400, "unknown_queue", f"the queues are {', '.join(known)}")
        return str(queue)


def _relayed(status: int, text: str) -> HttpResponse:
    """The pipeline's own answer, refusals included, inside a 200: the helper did its job,
    and the page shows the reason (a 4xx here would be a browser console error)."""
    try:
        answer = json.loads(text)
    except ValueError:
        answer = {"error": "not_json", "reason": text[:300]}
    return _json({"status": status, "answer": answer})


def _exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if has_code(exc, "404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True
