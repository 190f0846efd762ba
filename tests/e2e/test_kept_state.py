"""The local stack keeps its state: stopped mid-traffic, by Ctrl-C or by a kill of every
one of its processes, ``conveyor up`` starts again from what it had accepted, and
finishes it, once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from conveyor.client import ConveyorClient
from conveyor.functions.images import LEASE_S
from conveyor.local.state import EmulatorClients
from conveyor.ops.logs import read_json_lines
from conveyor.topology import IMAGES_QUEUE, TOPOLOGY
from tests import samples
from tests.e2e.test_cli import CLI, alive, descendants
from tests.integration.conftest import eventually

pytestmark = pytest.mark.e2e

ENOUGH_ACCEPTED = 25
UPLOAD_RECOVERY_S = LEASE_S + TOPOLOGY.queue(IMAGES_QUEUE).visibility_timeout_s + 60
"""How long an upload may take after the restart: a stop that lands while the image is
being processed leaves its claim (a lease of LEASE_S) and its message, which comes back
at once (receives are not kept) but is then held for the queue's visibility timeout, as
in AWS after a crash, before the retry that processes it."""
"""Orders accepted before the stack is stopped, with more being sent."""


def start(state: Path, *flags: str) -> subprocess.Popen[str]:
    (state / "runtime.json").unlink(missing_ok=True)
    process = subprocess.Popen(
        [*CLI, "up", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CONVEYOR_STATE_DIR": str(state), "COLUMNS": "140"},
    )
    eventually(
        lambda: (state / "runtime.json").exists() or process.poll() is not None, timeout_s=60
    )
    assert process.poll() is None, process.stdout.read() if process.stdout else ""
    return process


def client_of(state: Path) -> ConveyorClient:
    credentials = json.loads((state / "credentials.json").read_text())
    return ConveyorClient(credentials["endpoint"], credentials["client_id"], credentials["secret"])


def stop(process: subprocess.Popen[str], how: str) -> str:
    """Stop the stack; with SIGKILL, every one of its processes at once, the emulator
    (in a session of its own) included, as a crash of the machine's user session would."""
    everything = descendants(process.pid) | {process.pid}
    if how == "sigint":
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
    else:
        for pid in everything:
            os.kill(pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=30)
    eventually(lambda: not [pid for pid in everything if alive(pid)], timeout_s=30)
    return output


def order(n: int) -> dict[str, Any]:
    return {
        "order_id": f"kept-{n}-{uuid.uuid4().hex[:6]}",
        "customer_id": "cust-kept",
        "currency": "EUR",
        "items": [{"sku": "KB-1", "quantity": 1, "unit_price": "9.90"}],
    }


class Traffic:
    """Clients sending orders until told to stop or until the stack stops answering."""

    def __init__(self, client: ConveyorClient, senders: int = 4) -> None:
        self.client = client
        self.accepted: list[str] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, args=(i,)) for i in range(senders)]

    def _send(self, sender: int) -> None:
        n = 0
        while not self.stopping.is_set():
            sent = order(sender * 10_000 + n)
            n += 1
            try:
                answer = self.client.send_order(sent)
            except requests.RequestException:
                return  # the stack stopped under this request: it was never accepted
            if answer.status_code == 202:
                with self._lock:
                    self.accepted.append(sent["order_id"])

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=60)


@pytest.mark.timeout(180 + UPLOAD_RECOVERY_S + 180)
@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_what_was_accepted_before_a_stop_is_finished_once_after_the_next_start(
    tmp_path: Path, how: str
) -> None:
    first = start(tmp_path)
    client = client_of(tmp_path)
    photo = samples.PHOTOS["rocket.jpg"]
    upload_id = client.upload(photo).upload_id  # S3 answered 204: accepted
    with Traffic(client) as traffic:
        eventually(lambda: len(traffic.accepted) >= ENOUGH_ACCEPTED, timeout_s=60)
        stop(first, how)  # mid-traffic: the senders are still sending
    accepted = list(traffic.accepted)
    assert len(accepted) >= ENOUGH_ACCEPTED

    second = start(tmp_path)
    try:
        again = client_of(tmp_path)

        def billed_orders() -> bool:
            return all(again.order_status(o).json().get("status") == "billed" for o in accepted)

        eventually(billed_orders, timeout_s=180, interval_s=1.0)
        eventually(
            lambda: again.upload_status(upload_id).json().get("status") == "processed",
            timeout_s=UPLOAD_RECOVERY_S,
            interval_s=1.0,
        )
        info = json.loads((tmp_path / "runtime.json").read_text())
        aws = EmulatorClients(info["emulator_url"])
        versions = aws("s3").list_object_versions(
            Bucket=info["resources"]["buckets"]["archive"], Prefix="archive/orders/"
        )
        archived = Counter(
            v["Key"].rsplit("/", 1)[1].removesuffix(".json") for v in versions["Versions"]
        )
        assert {o: archived[o] for o in accepted} == dict.fromkeys(accepted, 1), "archived once"
        billed_lines = Counter(
            e.get("order_id")
            for e in read_json_lines(tmp_path / "logs" / "billing.log")
            if e.get("message") == "order billed"
        )
        assert not [o for o in accepted if billed_lines[o] > 1], "billed once"
        sqs = aws("sqs")
        for name, url in info["resources"]["queues"].items():
            if name.endswith("-dlq"):
                depth = sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
                assert depth == "0", f"{name} holds what was not there before"
    finally:
        output = stop(second, "sigint")
    # A clean stop leaves a snapshot; a kill, the journal since the last one.
    said = {"sigint": "state        snapshot of", "sigkill": "replayed from the journal"}[how]
    assert said in output, output


def test_fresh_throws_the_kept_state_away(tmp_path: Path) -> None:
    first = start(tmp_path)
    client = client_of(tmp_path)
    kept = order(1)
    assert client.send_order(kept).status_code == 202
    stop(first, "sigint")
    second = start(tmp_path, "--fresh")
    try:
        assert client_of(tmp_path).order_status(kept["order_id"]).status_code == 404
    finally:
        output = stop(second, "sigint")
    assert "state        empty" in output, output


def test_a_state_that_cannot_be_loaded_is_refused_with_the_way_out(tmp_path: Path) -> None:
    stop(start(tmp_path), "sigint")
    (tmp_path / "emulator" / "snapshot.pickle").write_bytes(b"damaged")
    refused = subprocess.run(
        [*CLI, "up", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CONVEYOR_STATE_DIR": str(tmp_path), "COLUMNS": "200"},
    )
    assert refused.returncode == 1
    said = " ".join((refused.stdout + refused.stderr).split())
    assert "cannot be loaded" in said
    assert "conveyor up --fresh" in said
