"""The API with two clients over real HTTP: per-client idempotency, tenant isolation, the
status endpoints, and client management while the stack runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from conveyor.client import ConveyorClient
from conveyor.core.orders import Order, accept, archive_key_of
from conveyor.functions.consumer import FAILURE_REASON
from conveyor.local.runtime import LOCAL_SECRETS_MAX_AGE_S, Started
from conveyor.local.state import EmulatorClients
from conveyor.ops import clients as client_document
from conveyor.ops.logs import read_json_lines
from conveyor.ops.redrive import peek
from conveyor.topology import ARCHIVE_BUCKET, CLIENT_SECRETS
from tests import samples
from tests.integration.conftest import eventually

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

pytestmark = pytest.mark.integration
CLI = [str(Path(sys.executable).with_name("conveyor"))]


def order(order_id: str | None = None, price: str = "10.00", quantity: int = 2) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": "cust-mc",
        "currency": "EUR",
        "items": [{"sku": "KB-1", "quantity": quantity, "unit_price": price}],
    }
    if order_id is not None:
        body["order_id"] = order_id
    return body


def can_call(client: ConveyorClient) -> bool:
    """Whether the functions know the client yet (their secrets cache is 5 s locally)."""
    return client.order_status("no-such-order").status_code == 404


def once_every_cache_has_expired(changed_at: float) -> None:
    """The promise is a time: each worker's copy of the secrets is at most the cache
    time old, so once that has passed since a change, every worker has seen it."""
    time.sleep(max(0.0, changed_at + LOCAL_SECRETS_MAX_AGE_S + 0.5 - time.monotonic()))


def every_worker_says(client: ConveyorClient, callable_: bool) -> bool:
    # The publisher runs four workers; twelve calls leave none of them out in practice,
    # and each call must agree, so a stale worker cannot hide.
    return all(can_call(client) is callable_ for _ in range(12))


def add_client(stack: Started, name: str) -> ConveyorClient:
    secretsmanager = stack.clients("secretsmanager")
    secret_id = stack.info.resources.secrets[CLIENT_SECRETS]
    changed = time.monotonic()
    secret = client_document.edit(
        secretsmanager, secret_id, lambda document: client_document.add(document, name)
    )
    added = ConveyorClient(stack.info.gateway_url, name, secret)
    once_every_cache_has_expired(changed)
    assert every_worker_says(added, True)
    return added


@pytest.fixture(scope="module")
def other(stack: Started) -> ConveyorClient:
    return add_client(stack, f"shop-{uuid.uuid4().hex[:6]}")


def accepted_lines(stack: Started, order_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in read_json_lines(stack.logs_dir / "publisher.log")
        if e.get("order_id") == order_id and e.get("message") == "order accepted"
    ]


def billed_view(client: ConveyorClient, order_id: str) -> dict[str, Any] | None:
    answer = client.order_status(order_id)
    view: dict[str, Any] = answer.json()
    return view if answer.status_code == 200 and view["status"] == "billed" else None


def test_the_same_order_id_in_two_clients_is_two_orders_neither_can_read_the_others(
    client: ConveyorClient, other: ConveyorClient
) -> None:
    order_id = f"shared-{uuid.uuid4().hex[:8]}"
    assert client.send_order(order(order_id, price="10.00")).status_code == 202
    assert other.send_order(order(order_id, price="3.00")).status_code == 202
    mine = eventually(lambda: billed_view(client, order_id))
    theirs = eventually(lambda: billed_view(other, order_id))
    assert (mine["total"], theirs["total"]) == ("20.00", "6.00")

    mine_only = f"mine-{uuid.uuid4().hex[:8]}"
    assert client.send_order(order(mine_only)).status_code == 202
    eventually(lambda: billed_view(client, mine_only))
    hidden, unknown = other.order_status(mine_only), other.order_status("never-existed")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == unknown.json() == {"error": "not_found", "reason": "no such order"}

    upload = client.upload(samples.PHOTOS["coffee.png"])
    assert client.upload_status(upload.upload_id).status_code == 200
    refused = other.upload_status(upload.upload_id)
    assert refused.status_code == 404
    assert refused.json() == other.upload_status("0" * 32).json()


def test_a_conflicting_reuse_of_an_order_id_is_a_409_and_publishes_nothing(
    stack: Started, client: ConveyorClient
) -> None:
    order_id = f"reuse-{uuid.uuid4().hex[:8]}"
    assert client.send_order(order(order_id, price="9.99", quantity=2)).status_code == 202
    reused = client.send_order(order(order_id, price="999.99", quantity=200))
    assert reused.status_code == 409
    assert reused.json()["error"] == "idempotency_conflict"
    assert reused.json()["reason"]
    view = eventually(lambda: billed_view(client, order_id))
    assert view["total"] == "19.98", "the first order stands"
    assert len(accepted_lines(stack, order_id)) == 1


def test_twenty_concurrent_identical_posts_publish_exactly_once(
    stack: Started, client: ConveyorClient
) -> None:
    order_id = f"burst-{uuid.uuid4().hex[:8]}"
    body = order(order_id)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: client.send_order(body), range(20)))
    outcomes = Counter(
        (a.status_code, a.json().get("error") or a.json().get("status")) for a in answers
    )
    assert set(outcomes) <= {(202, "accepted"), (409, "request_in_progress")}, outcomes
    assert outcomes[(202, "accepted")] >= 1
    for answer in answers:
        if answer.status_code == 409:
            assert int(answer.headers["Retry-After"]) >= 1
    eventually(lambda: billed_view(client, order_id))
    assert len(accepted_lines(stack, order_id)) == 1, "exactly one publish"


@pytest.mark.parametrize("queue", ["billing", "archive"])
def test_a_conflicting_duplicate_on_a_consumers_queue_ends_in_its_dlq_with_its_reason(
    stack: Started, aws: EmulatorClients, client: ConveyorClient, queue: str
) -> None:
    order_id = f"dup-{uuid.uuid4().hex[:8]}"
    assert client.send_order(order(order_id)).status_code == 202
    first = eventually(lambda: billed_view(client, order_id))
    # The conflicting copy comes after the order itself was handled by this queue's
    # consumer: for archive, once its copy is stored (billed says nothing of that).
    archive = aws("s3")
    bucket = stack.info.resources.buckets[ARCHIVE_BUCKET]
    key = archive_key_of(client.client_id, order_id, datetime.fromisoformat(first["accepted_at"]))
    eventually(lambda: archive.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))
    marker = f"injected-conflict-{queue}-{order_id}"
    impostor = accept(
        Order.model_validate(order(order_id, price="1.00", quantity=7)),
        order_id="-",
        client_id=client.client_id,
        correlation_id=marker,
        now=datetime.now(UTC),
    )
    resources = stack.info.resources
    body = impostor.model_dump_json()
    aws("sqs").send_message(QueueUrl=resources.queues[queue], MessageBody=body)

    def dead_lettered() -> MessageTypeDef | None:
        for message in peek(aws("sqs"), resources.queues[f"{queue}-dlq"]):
            if json.loads(message["Body"]).get("correlation_id") == marker:
                return message
        return None

    dead = eventually(dead_lettered)
    assert dead["MessageAttributes"][FAILURE_REASON]["StringValue"] == "conflicting_duplicate"
    assert billed_view(client, order_id) == first, "the bill stands"


def test_an_order_is_followed_from_accepted_to_billed(client: ConveyorClient) -> None:
    order_id = f"follow-{uuid.uuid4().hex[:8]}"
    assert client.send_order(order(order_id)).status_code == 202
    first = client.order_status(order_id).json()
    assert first["status"] in ("accepted", "billed")
    assert first["order_id"] == order_id
    assert datetime.fromisoformat(first["accepted_at"]) <= datetime.now(UTC)
    view = eventually(lambda: billed_view(client, order_id))
    assert view["currency"] == "EUR"
    assert view["total"] == "20.00"
    assert view["accepted_at"] == first["accepted_at"]
    assert datetime.fromisoformat(view["billed_at"]) >= datetime.fromisoformat(view["accepted_at"])


def test_an_upload_is_followed_from_awaiting_to_processed_or_failed(client: ConveyorClient) -> None:
    photo = samples.PHOTOS["coffee.png"].read_bytes()
    grant = client.presign_upload("coffee.png", "image/png", len(photo))
    upload_id = grant.json()["upload_id"]
    assert client.upload_status(upload_id).json() == {
        "upload_id": upload_id,
        "status": "awaiting_upload",
    }
    stored = client.session.post(
        grant.json()["url"],
        data=grant.json()["fields"],
        files={"file": ("coffee.png", photo, "image/png")},
        timeout=30,
    )
    assert stored.status_code in (200, 204)

    def settled(upload: str) -> dict[str, Any] | None:
        view: dict[str, Any] = client.upload_status(upload).json()
        return view if view["status"] in ("processed", "failed") else None

    done = eventually(lambda: settled(upload_id))
    assert done["status"] == "processed"
    assert set(done["variants"]) == {"large", "medium", "thumb"}
    for variant in done["variants"].values():
        assert variant["url"].startswith(client.base_url.rsplit(":", 1)[0])
        fetched = requests.get(variant["url"], timeout=10)
        assert fetched.status_code == 200
        assert fetched.headers["Content-Type"] == "image/png"
    assert done["variants"]["thumb"]["width"] <= 150

    impostor = client.upload_bytes("impostor.png", b"GIF89a but not a PNG", "image/png")
    failed = eventually(lambda: settled(impostor.upload_id))
    assert failed == {
        "upload_id": impostor.upload_id,
        "status": "failed",
        "reason": failed["reason"],
    }
    assert failed["reason"] == "not_an_image"


def cli(stack: Started, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "clients", "--state-dir", str(stack.state_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def printed_secret(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"shown once, keep it safe\):\n(\S+)\n", result.stdout)
    assert found, result.stdout
    return found.group(1)


def test_clients_are_added_rotated_retired_and_removed_while_the_stack_runs(
    stack: Started,
) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    changed = time.monotonic()
    first = printed_secret(cli(stack, "add", name))
    assert len(first) >= 43, "32 random bytes"
    original = ConveyorClient(stack.info.gateway_url, name, first)
    once_every_cache_has_expired(changed)
    assert every_worker_says(original, True)
    listed = cli(stack, "list")
    assert re.search(rf"{name}\s+│\s+1\b", listed.stdout), listed.stdout
    assert first not in listed.stdout, "secrets are shown once, when made"

    changed = time.monotonic()
    second = printed_secret(cli(stack, "rotate", name))
    rotated = ConveyorClient(stack.info.gateway_url, name, second)
    once_every_cache_has_expired(changed)
    assert every_worker_says(rotated, True)
    assert every_worker_says(original, True), "the old secret works until it is retired"

    changed = time.monotonic()
    retired = cli(stack, "retire", name)
    assert "retired 1 old secret(s)" in retired.stdout
    once_every_cache_has_expired(changed)
    assert every_worker_says(original, False)
    assert every_worker_says(rotated, True)

    chosen = cli(stack, "rotate", name, "--secret", "short")
    assert chosen.returncode == 1
    assert "at least 16" in chosen.stdout
    assert cli(stack, "add", name).returncode == 1, "a name is added once"
    changed = time.monotonic()
    assert cli(stack, "remove", name).returncode == 0
    once_every_cache_has_expired(changed)
    assert every_worker_says(rotated, False)
    assert cli(stack, "remove", name).returncode == 1
    logs = "".join(p.read_text(errors="replace") for p in stack.logs_dir.glob("*.log"))
    assert first not in logs
    assert second not in logs


def test_two_operators_editing_at_once_both_land(stack: Started) -> None:
    secret_id = stack.info.resources.secrets[CLIENT_SECRETS]
    both_have_read = threading.Barrier(2, timeout=30)
    names = [f"op-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    reads: Counter[str] = Counter()

    def operator(name: str) -> str:
        # A client of its own per operator, as two people on two machines would have.
        secretsmanager = EmulatorClients(stack.info.emulator_url)("secretsmanager")

        def add_after_the_other_has_read(document: client_document.Document) -> str:
            reads[name] += 1
            if reads[name] == 1:
                both_have_read.wait()  # both edits start from the same version
            return client_document.add(document, name)

        return client_document.edit(secretsmanager, secret_id, add_after_the_other_has_read)

    with ThreadPoolExecutor(max_workers=2) as pool:
        made = dict(zip(names, pool.map(operator, names), strict=True))
    stored = client_document.read(stack.clients("secretsmanager"), secret_id)
    assert {name: stored[name] for name in names} == {n: [s] for n, s in made.items()}
    assert sorted(reads.values()) == [1, 2], "exactly one collided, and was made again"


def test_many_cli_edits_at_once_each_land_or_say_to_retry(stack: Started) -> None:
    names = [f"many-{uuid.uuid4().hex[:6]}" for _ in range(6)]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        results = dict(zip(names, pool.map(lambda n: cli(stack, "add", n), names), strict=True))
    stored = client_document.read(
        stack.clients("secretsmanager"), stack.info.resources.secrets[CLIENT_SECRETS]
    )
    for name, result in results.items():
        if result.returncode == 0:
            assert stored[name] == [printed_secret(result)], name
        else:
            assert "run it again" in result.stdout, result.stdout
            assert name not in stored
    assert any(r.returncode == 0 for r in results.values())
