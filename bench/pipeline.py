"""End to end on one machine: orders per second from POST to billed-and-archived through
the local runtime, beside the emulator's own ceiling measured in the same run, and where
the CPU time goes (per process)."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from conveyor.client import ConveyorClient
from conveyor.local.logs import read_json_lines
from conveyor.local.runtime import LocalRuntime, RuntimeOptions
from conveyor.local.state import emulator_client

LEVELS = (1, 8, 32)
ORDERS_PER_LEVEL = 240
CEILING_MESSAGES = 240


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def _order(n: int, level: int) -> dict[str, Any]:
    return {
        "order_id": f"bench-{level}-{n}",
        "customer_id": f"c{n % 50}",
        "currency": "EUR",
        "items": [{"sku": "KB-1", "quantity": 1 + n % 3, "unit_price": "19.99"}],
    }


def _count(path: Path, message: str) -> int:
    return sum(1 for e in read_json_lines(path) if e.get("message") == message)


def orders_level(runtime: LocalRuntime, client: ConveyorClient, level: int) -> dict[str, float]:
    billed0 = _count(runtime.logs_dir / "billing.log", "order billed")
    archived0 = _count(runtime.logs_dir / "archive.log", "order archived")
    latencies: list[float] = []
    lock = threading.Lock()

    def post(n: int) -> None:
        started = time.perf_counter()
        response = client.send_order(_order(n, level))
        assert response.status_code == 202, response.text
        with lock:
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=level) as pool:
        list(pool.map(post, range(ORDERS_PER_LEVEL)))
    while (
        _count(runtime.logs_dir / "billing.log", "order billed") - billed0 < ORDERS_PER_LEVEL
        or _count(runtime.logs_dir / "archive.log", "order archived") - archived0 < ORDERS_PER_LEVEL
    ):
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "orders/s": round(ORDERS_PER_LEVEL / elapsed, 1),
        "POST p50 ms": round(statistics.median(latencies), 1),
        "POST p99 ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
    }


def ceiling(endpoint: str, level: int) -> float:
    """Messages per second for a direct client: publish to a topic, receive from the
    subscribed queue, delete; ``level`` threads at once."""
    sns, sqs = emulator_client(endpoint, "sns"), emulator_client(endpoint, "sqs")
    topic = sns.create_topic(Name=f"bench-ceiling-{level}")["TopicArn"]
    url = sqs.create_queue(QueueName=f"bench-ceiling-{level}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )

    def one(_: int) -> None:
        sns.publish(TopicArn=topic, Message="{}")
        while True:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1
            ).get("Messages", [])
            if messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
                return

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=level) as pool:
        list(pool.map(one, range(CEILING_MESSAGES)))
    return round(CEILING_MESSAGES / (time.perf_counter() - started), 1)


def run() -> tuple[dict[str, Any], list[str]]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as state:
        runtime = LocalRuntime(RuntimeOptions(state_dir=Path(state), port=0, endpoint_url=None))
        runtime.start()
        try:
            assert runtime.info is not None
            assert runtime.credentials is not None
            assert runtime.emulator is not None
            assert runtime.emulator.pid is not None
            credentials = runtime.credentials
            client = ConveyorClient(credentials.endpoint, credentials.client_id, credentials.secret)
            processes = {
                "emulator": [runtime.emulator.pid],
                "workers": [p for pool in runtime.pools.values() for p in pool.pids()],
            }
            for level in LEVELS:
                cpu0 = {k: sum(_cpu_seconds(p) for p in v) for k, v in processes.items()}
                runtime_cpu0 = time.process_time()
                measured = orders_level(runtime, client, level)
                cpu = {
                    k: round(sum(_cpu_seconds(p) for p in v) - cpu0[k], 1)
                    for k, v in processes.items()
                }
                cpu["runtime (gateway, pollers, this client)"] = round(
                    time.process_time() - runtime_cpu0, 1
                )
                measured["ceiling msgs/s"] = ceiling(runtime.info.emulator_url, level)
                measured["share of ceiling"] = round(
                    measured["orders/s"] / measured["ceiling msgs/s"], 2
                )
                results[f"{level} clients"] = {**measured, "CPU s by process": cpu}
                print(json.dumps({f"{level} clients": results[f"{level} clients"]}), flush=True)
            results["per invocation"] = {
                name: {
                    "mean ms": round(pool.stats.total_duration_ms / pool.stats.invocations, 1),
                    "invocations": pool.stats.invocations,
                }
                for name, pool in runtime.pools.items()
                if pool.stats.invocations
            }
            for poller in runtime.pollers:
                stats = results["per invocation"].get(poller.function)
                if stats is not None and poller.stats.batches:
                    stats["messages per batch"] = round(
                        poller.stats.received / poller.stats.batches, 1
                    )
            print(json.dumps({"per invocation": results["per invocation"]}), flush=True)
        finally:
            runtime.stop()
    missed = [
        f"{k}: {v['share of ceiling']:.0%} of the emulator's ceiling, not 60%"
        for k, v in results.items()
        if v["share of ceiling"] < 0.6
    ]
    return results, missed


if __name__ == "__main__":
    _, failures = run()
    print("\n".join(failures) or "all pipeline targets met")
    sys.exit(1 if failures else 0)
