"""``conveyor soak``: orders and images through the local runtime under injected faults,
then a check that nothing accepted was lost or done twice.

The invariant: every order answered 202 is billed exactly once and archived exactly
once, or sits in a DLQ; every uploaded image ends ``processed`` or ``failed`` with a
reason, or sits in the DLQ; no 5xx reached a client except 503s that told it to retry
(the client retries those with the same order id).

Timeouts are shortened so that retries happen within the run: billing and archive time
out after 4 s and the image function after 8 s, so their queues hide a message for 24 s
and 48 s. They stay well above a cold worker's first invocation on a busy machine: at
2 s, a worker replaced after a timeout timed out again on its first call, and on a
machine running two test suites at once almost every order ended in a DLQ. Sending
pauses while the backlog is large (see MAX_BACKLOG). The emulator is not restarted:
moto keeps its state in memory, so a restart would lose every queued message, which no
runtime could survive.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from conveyor.aws import images_table, orders_table
from conveyor.client import ConveyorClient, UploadError
from conveyor.core.orders import ARCHIVE_PREFIX
from conveyor.local.chaos import DUPLICATE, THROTTLED_BATCH, FaultPlan
from conveyor.local.provision import Resources
from conveyor.local.runtime import LocalRuntime, RuntimeOptions, Started
from conveyor.local.state import EmulatorClients
from conveyor.local.status import queue_depth
from conveyor.ops.logs import read_json_lines
from conveyor.ops.redrive import BATCH_THROTTLED, NO_REASON, dead_letters, peek
from conveyor.ops.traffic import Submission, submissions
from conveyor.ops.uploads import sample_photos
from conveyor.topology import (
    ARCHIVE_BUCKET,
    ARCHIVE_FUNCTION,
    ARCHIVE_QUEUE,
    BILLING_FUNCTION,
    BILLING_QUEUE,
    DEFAULT_PROFILE,
    IMAGES_FUNCTION,
    IMAGES_QUEUE,
    IMAGES_TABLE,
    ORDERS_TABLE,
    TOPOLOGY,
    Profile,
    Topology,
    dlq_of,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

SOAK_TIMEOUT_S = {BILLING_FUNCTION: 4, ARCHIVE_FUNCTION: 4, IMAGES_FUNCTION: 8}
"""Seconds each consumer may run in the soak; its queue hides a message six times that."""
DEFAULT_PLAN = FaultPlan(
    raise_rate=0.05,
    crash_rate=0.05,
    aws_error_rate=0.02,
    duplicate_rate=0.05,
    throttle_rate=0.05,
)
"""What `conveyor soak` (and so `make soak`) injects unless told otherwise."""
MAX_RETRIES = 20
"""Enough to outlast an in-progress idempotency record left by an invocation that died:
it expires with that invocation's time (the publisher's timeout)."""


def fast_topology(topology: Topology = TOPOLOGY) -> Topology:
    """Consumers time out after seconds, not minutes, so retries happen within the run."""
    return topology.with_timeouts(SOAK_TIMEOUT_S)


@dataclass
class SoakReport:
    orders_sent: int = 0
    orders_accepted: int = 0
    orders_rejected: int = 0
    told_to_retry: int = 0
    unexpected_5xx: int = 0
    images_uploaded: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    billed: int = 0
    archived: int = 0
    in_dlq: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    images: Counter[str] = field(default_factory=Counter)
    images_unaccounted: list[str] = field(default_factory=list)
    dead_without_reason: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    settled: bool = False
    configured: list[str] = field(default_factory=list)
    """The kinds of fault the plan asked for."""

    @property
    def never_injected(self) -> list[str]:
        """Kinds of fault the plan asked for that never fired: a soak that did not inject
        a fault proved nothing about it."""
        return [kind for kind in self.configured if not self.injected[kind]]

    @property
    def ok(self) -> bool:
        return (
            self.settled
            and not self.lost
            and not self.duplicated
            and not self.unexpected_5xx
            and not self.images_unaccounted
            and not self.never_injected
        )

    def rows(self) -> list[tuple[str, str]]:
        rows = [
            ("orders sent", str(self.orders_sent)),
            ("accepted (202)", str(self.orders_accepted)),
            ("rejected on purpose (4xx)", str(self.orders_rejected)),
            ("503 answered, retried by the client", str(self.told_to_retry)),
            ("other 5xx", str(self.unexpected_5xx)),
            ("images uploaded", str(self.images_uploaded)),
        ]
        rows += [(f"injected: {kind}", str(self.injected[kind])) for kind in self.configured]
        rows += [("billed", str(self.billed)), ("archived", str(self.archived))]
        rows += [(f"in DLQ: {q}", str(n)) for q, n in sorted(self.in_dlq.items())]
        rows += [(f"images {s}", str(n)) for s, n in sorted(self.images.items())]
        rows += [
            ("lost", str(len(self.lost))),
            ("done twice", str(len(self.duplicated))),
            ("images unaccounted for", str(len(self.images_unaccounted))),
            ("dead letters without a recorded reason", str(len(self.dead_without_reason))),
            ("faults asked for that never fired", ", ".join(self.never_injected) or "none"),
            ("settled", "yes" if self.settled else "NO"),
            ("elapsed", f"{self.elapsed_s:.1f} s"),
        ]
        return rows


def _send_with_retries(
    client: ConveyorClient, submission: Submission, report: SoakReport
) -> tuple[int, Any]:
    for attempt in range(MAX_RETRIES):
        response = submission.send(client)
        if response.status_code == 503:
            wait = min(0.05 * 2**attempt, 2.0)
        elif response.status_code == 409 and "Retry-After" in response.headers:
            # The same order is still being accepted (or its attempt died mid-way, and
            # its record expires with the invocation's time): ask again when told to.
            wait = float(response.headers["Retry-After"])
        else:
            break
        report.told_to_retry += 1
        time.sleep(wait)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {}


def _upload_with_retries(client: ConveyorClient, path: Path, report: SoakReport) -> str:
    for attempt in range(MAX_RETRIES):
        try:
            return client.upload(path).upload_id
        except UploadError as error:
            if error.status != 503 or attempt == MAX_RETRIES - 1:
                if error.status >= 500:
                    report.unexpected_5xx += 1
                raise
            report.told_to_retry += 1
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


SETTLE_POLL_S = 2.0
"""How often the wait polls queue depths: every call costs the emulator time in
proportion to the backlog (moto checks each message's visibility), so poll gently."""


PACE_EVERY = 200
MAX_BACKLOG = 400
"""The soak pauses sending while more messages than this wait in the consumer queues: a
backlog costs the emulator time on every call (moto scans each queue's messages), which
real SQS does not, so an unbounded one would measure the emulator, not the system."""


def _backlog(sqs: SQSClient, urls: list[str]) -> int:
    return sum(sum(queue_depth(sqs, url)) for url in urls)


def _wait_for_backlog(
    sqs: SQSClient, urls: list[str], at_most: int, timeout_s: float, quiet: int = 2
) -> bool:
    """Wait until the queues hold at most ``at_most`` messages, ``quiet`` reads in a row
    (to settle, two: a message can be between receive and delete); False if that did not
    happen in time."""
    deadline = time.monotonic() + timeout_s
    seen = 0
    while time.monotonic() < deadline:
        seen = seen + 1 if _backlog(sqs, urls) <= at_most else 0
        if seen >= quiet:
            return True
        time.sleep(SETTLE_POLL_S)
    return False


def _bodies(messages: list[MessageTypeDef]) -> list[dict[str, Any]]:
    bodies = []
    for message in messages:
        try:
            body = json.loads(message["Body"])
        except ValueError:
            continue
        if isinstance(body, dict):
            bodies.append(body)
    return bodies


def _order_ids(messages: list[MessageTypeDef]) -> set[str]:
    return {str(b["order_id"]) for b in _bodies(messages) if "order_id" in b}


def _upload_ids(messages: list[MessageTypeDef]) -> set[str]:
    """Upload ids of the S3 events in a list of messages (S3 URL-encodes event keys)."""
    keys = [
        unquote_plus(record.get("s3", {}).get("object", {}).get("key", ""))
        for body in _bodies(messages)
        for record in body.get("Records", [])
    ]
    return {key.rsplit("/", 1)[-1].split(".")[0] for key in keys if key}


def run_soak(
    state_dir: Path,
    orders: int,
    images: int,
    plan: FaultPlan = DEFAULT_PLAN,
    concurrency: int = 16,
    timeout_s: float = 300,
    progress: Callable[[str], None] = lambda _: None,
    profile: Profile = DEFAULT_PROFILE,
) -> SoakReport:
    report = SoakReport(configured=plan.configured())
    # A soak's stack is thrown away after it: keeping its state would only slow it.
    options = RuntimeOptions(
        state_dir=state_dir, port=0, endpoint_url=None, profile=profile, persist=False
    )
    runtime = LocalRuntime(options, fast_topology(), faults=plan)
    began = time.monotonic()
    started = runtime.start(progress)
    try:
        _drive(started, report, orders, images, concurrency, timeout_s, progress)
    finally:
        runtime.stop()
    report.elapsed_s = time.monotonic() - began
    return report


def _drive(
    started: Started,
    report: SoakReport,
    orders: int,
    images: int,
    concurrency: int,
    timeout_s: float,
    progress: Callable[[str], None],
) -> None:
    client = started.client()
    aws = started.clients
    resources = started.info.resources

    progress(f"sending {orders} orders and {images} images under faults")
    batch = submissions(orders, seed=11)
    accepted: list[str] = []
    consumer_queues = [resources.queues[t.queue] for _, t in TOPOLOGY.sqs_triggered()]
    # At most ``concurrency`` requests out at once, and no batch barrier: a request that
    # waits out another's in-progress record (up to the publisher's timeout) holds up
    # only its own sender, not every request after it.
    slots = threading.BoundedSemaphore(concurrency)
    lock = threading.Lock()

    def sent(item: Submission) -> None:
        try:
            status, payload = _send_with_retries(client, item, report)
            with lock:
                report.orders_sent += 1
                if status == 202:
                    accepted.append(str(payload["order_id"]))
                elif status >= 500:
                    report.unexpected_5xx += 1
                else:
                    report.orders_rejected += 1
        finally:
            slots.release()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = []
        for index, item in enumerate(batch):
            if index and index % PACE_EVERY == 0:
                _wait_for_backlog(aws("sqs"), consumer_queues, MAX_BACKLOG, timeout_s, quiet=1)
            slots.acquire()
            futures.append(pool.submit(sent, item))
        for future in futures:
            future.result()
    report.orders_accepted = len(accepted)
    photos = sample_photos()
    uploads = [_upload_with_retries(client, photos[n % len(photos)], report) for n in range(images)]
    report.images_uploaded = len(uploads)

    progress("waiting for the pipelines to settle")
    report.settled = _wait_for_backlog(aws("sqs"), consumer_queues, 0, timeout_s)
    _check(started, report, accepted, uploads)


def _check(started: Started, report: SoakReport, accepted: list[str], uploads: list[str]) -> None:
    aws, resources = started.clients, started.info.resources
    dead = {q.name: peek(aws("sqs"), resources.queues[q.dlq_name]) for q in TOPOLOGY.queues}
    report.in_dlq = Counter({dlq_of(q): len(m) for q, m in dead.items() if m})
    _check_orders(aws, resources, report, accepted, dead)
    _check_images(aws, resources, report, uploads, _upload_ids(dead[IMAGES_QUEUE]))
    _count_injected(started.logs_dir, report)
    log_files = sorted(started.logs_dir.glob("*.log"))
    for queue in TOPOLOGY.queues:
        for letter in dead_letters(aws("sqs"), resources.queues[queue.dlq_name], log_files):
            if letter.reason == NO_REASON:
                report.dead_without_reason.append(f"{queue.dlq_name}:{letter.message_id}")


def _check_orders(
    aws: EmulatorClients,
    resources: Resources,
    report: SoakReport,
    accepted: list[str],
    dead: dict[str, list[MessageTypeDef]],
) -> None:
    billed: set[str] = set()
    for page in (
        aws("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=resources.tables[ORDERS_TABLE],
            ProjectionExpression="order_id, #status",
            ExpressionAttributeNames={"#status": "status"},
        )
    ):
        # The publisher records each order as accepted first; only a bill counts here.
        billed.update(
            item["order_id"]["S"]
            for item in page["Items"]
            if item["status"]["S"] == orders_table.STATUS_BILLED
        )
    versions: Counter[str] = Counter()
    for listing in (
        aws("s3")
        .get_paginator("list_object_versions")
        .paginate(Bucket=resources.buckets[ARCHIVE_BUCKET], Prefix=ARCHIVE_PREFIX)
    ):
        for version in listing.get("Versions", []):
            versions[version["Key"].rsplit("/", 1)[-1].removesuffix(".json")] += 1
    billing_dlq, archive_dlq = _order_ids(dead[BILLING_QUEUE]), _order_ids(dead[ARCHIVE_QUEUE])
    report.billed = len(billed & set(accepted))
    report.archived = len(set(versions) & set(accepted))
    for order_id in accepted:
        if order_id not in billed and order_id not in billing_dlq:
            report.lost.append(f"billing:{order_id}")
        if order_id not in versions and order_id not in archive_dlq:
            report.lost.append(f"archive:{order_id}")
        if versions[order_id] > 1:
            report.duplicated.append(f"archive:{order_id}")


def _check_images(
    aws: EmulatorClients,
    resources: Resources,
    report: SoakReport,
    uploads: list[str],
    in_dlq: set[str],
) -> None:
    for upload_id in uploads:
        item = images_table.get(aws("dynamodb"), resources.tables[IMAGES_TABLE], upload_id)
        status = str(item["status"]) if item else "missing"
        if status in (images_table.PROCESSED, images_table.FAILED):
            report.images[status] += 1
            if status == images_table.FAILED and not (item or {}).get("reason"):
                report.images_unaccounted.append(upload_id)
        elif upload_id in in_dlq:
            report.images["in DLQ"] += 1
        else:
            report.images_unaccounted.append(upload_id)


def _count_injected(logs: Path, report: SoakReport) -> None:
    billed_lines = Counter(
        e.get("order_id")
        for e in read_json_lines(logs / f"{BILLING_QUEUE}.log")
        if e.get("message") == "order billed"
    )
    report.duplicated += [f"billing:{o}" for o, n in billed_lines.items() if n > 1]
    for function in TOPOLOGY.functions:
        for entry in read_json_lines(logs / f"{function.name}.log"):
            if "chaos" in entry:
                report.injected[entry["chaos"]] += 1
    runtime = read_json_lines(logs / "runtime.log")
    report.injected[DUPLICATE] = sum(
        1 for e in runtime if e.get("message") == "chaos: duplicate delivery"
    )
    report.injected[THROTTLED_BATCH] = sum(
        1 for e in runtime if e.get("message") == BATCH_THROTTLED
    )
