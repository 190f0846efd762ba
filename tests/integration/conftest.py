"""A real local stack (moto server child process, workers, pollers, gateway) per module."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conveyor import images_table
from conveyor.client import ConveyorClient
from conveyor.local.runtime import LocalRuntime, RuntimeOptions
from conveyor.local.state import EmulatorClients
from conveyor.topology import TOPOLOGY, SqsTrigger, Topology

T = TypeVar("T")


def start_stack(directory: Path, topology: Topology = TOPOLOGY) -> LocalRuntime:
    runtime = LocalRuntime(RuntimeOptions(state_dir=directory, port=0, endpoint_url=None), topology)
    runtime.start()
    return runtime


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    runtime = start_stack(tmp_path_factory.mktemp("stack"))
    yield runtime
    runtime.stop()


@pytest.fixture(scope="module")
def aws(stack: LocalRuntime) -> EmulatorClients:
    assert stack.info is not None
    return EmulatorClients(stack.info.emulator_url)


@pytest.fixture(scope="module")
def client(stack: LocalRuntime) -> Iterator[ConveyorClient]:
    assert stack.credentials is not None
    with stack.credentials.client() as http:
        yield http


def _faulty(topology: Topology, function: str, handler: str) -> Topology:
    """``function`` runs ``handler`` and times out after 1 s, so its queue's visibility
    timeout (six times that) is short enough to watch three receives in a test."""
    original = topology.function(function)
    assert isinstance(original.trigger, SqsTrigger)
    queue = original.trigger.queue
    changed = dataclasses.replace(original, handler=handler, timeout_s=1)
    return dataclasses.replace(
        topology,
        functions=tuple(changed if f.name == function else f for f in topology.functions),
        queues=tuple(
            dataclasses.replace(q, visibility_timeout_s=6) if q.name == queue else q
            for q in topology.queues
        ),
    )


@pytest.fixture(scope="session")
def faulty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """The stack with a billing bug (raises on customer ``poison``) and an image function
    whose DynamoDB calls are all throttled."""
    topology = _faulty(TOPOLOGY, "billing", "tests.integration.flaky_billing:handler")
    topology = _faulty(topology, "images", "tests.integration.flaky_images:handler")
    assert topology.problems() == []
    runtime = start_stack(tmp_path_factory.mktemp("faulty"), topology)
    yield runtime
    runtime.stop()


def eventually(
    probe: Callable[[], T | None], timeout_s: float = 60.0, interval_s: float = 0.1
) -> T:
    """Poll until ``probe`` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last: {value!r})")
        time.sleep(interval_s)


def settled(stack: LocalRuntime, aws: EmulatorClients, upload_id: str) -> dict[str, Any] | None:
    """The image's item once it is processed or failed and its result event went out."""
    assert stack.info is not None
    item = images_table.get(aws("dynamodb"), stack.info.resources.tables["images"], upload_id)
    # moto applies an UpdateItem's actions one at a time, so a read racing the claim that
    # creates the item can see its key alone (DynamoDB itself never shows that).
    if item is None or item.get("status") in (None, "processing"):
        return None
    return item if item.get("notified") else None
