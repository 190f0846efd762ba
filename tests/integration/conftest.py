"""A real local stack (moto server child process, workers, pollers, gateway) per module
and deploy profile: every module that calls the API runs once behind each profile's edge
(the load balancer's events, and the HTTP API's)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conveyor.aws import images_table
from conveyor.client import ConveyorClient
from conveyor.local.runtime import LocalRuntime, RuntimeOptions, Started
from conveyor.local.state import EmulatorClients
from conveyor.topology import (
    DEFAULT_PROFILE,
    IMAGES_TABLE,
    TOPOLOGY,
    VISIBILITY_PER_TIMEOUT,
    Profile,
    Topology,
)

T = TypeVar("T")


def local_runtime(
    directory: Path, topology: Topology = TOPOLOGY, profile: Profile = DEFAULT_PROFILE
) -> LocalRuntime:
    """A stack on a free port with its own emulator, its state in ``directory``."""
    options = RuntimeOptions(state_dir=directory, port=0, endpoint_url=None, profile=profile)
    return LocalRuntime(options, topology)


BROKEN_PROPERTIES: dict[str, Any] = {
    "argvalues": [
        (
            "trusting",
            {"wrong-signature-refused", "stale-timestamp-refused", "tampered-body-refused"},
        ),
        ("forgetful", {"exact-replay-makes-no-second-order", "same-order-twice-same-answer"}),
    ],
    "ids": ["signatures-not-checked", "idempotency-off"],
}
"""Each publisher of ``broken_publisher.py`` that lacks a property, and the checks of
``conveyor verify`` that must fail on it (and only those): for ``pytest.mark.parametrize``."""


def broken(topology: Topology, handler: str) -> Topology:
    """``topology`` with the publisher's handler replaced (``broken_publisher.py``)."""
    publisher = dataclasses.replace(topology.function("publisher"), handler=handler)
    return dataclasses.replace(
        topology,
        functions=tuple(publisher if f.name == "publisher" else f for f in topology.functions),
    )


HOUR_S = 3600.0
"""The interval the tests run the canary at: the run at start is the one they read."""
RUN_DEADLINE_S = 240.0


def canary_runtime(directory: Path, profile: Profile, handler: str | None = None) -> LocalRuntime:
    """A stack that runs the canary at start (and then hourly); with ``handler``, its
    publisher replaced (``broken_publisher.py``)."""
    topology = broken(TOPOLOGY, handler) if handler else TOPOLOGY
    options = RuntimeOptions(
        state_dir=directory, port=0, endpoint_url=None, profile=profile, canary_every_s=HOUR_S
    )
    return LocalRuntime(options, topology)


def first_run(runtime: LocalRuntime) -> dict[str, Any]:
    """The report of the canary's first run, once it has finished."""
    assert runtime.canary is not None
    with runtime.canary.finished:
        done = runtime.canary.finished.wait_for(
            lambda: bool(runtime.canary and runtime.canary.runs), RUN_DEADLINE_S
        )
    assert done, "the canary did not finish its first run"
    return runtime.canary.latest()[0]


@pytest.fixture(scope="module", params=list(Profile), ids=str)
def profile(request: pytest.FixtureRequest) -> Profile:
    return Profile(request.param)


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory, profile: Profile
) -> Iterator[tuple[LocalRuntime, Started]]:
    runtime = local_runtime(tmp_path_factory.mktemp(f"stack-{profile}"), profile=profile)
    with runtime as started:
        yield runtime, started


@pytest.fixture(scope="module")
def stack(running: tuple[LocalRuntime, Started]) -> Started:
    return running[1]


@pytest.fixture(scope="module")
def runtime(running: tuple[LocalRuntime, Started]) -> LocalRuntime:
    """The runtime itself, for tests that look at its worker processes."""
    return running[0]


@pytest.fixture(scope="module")
def aws(stack: Started) -> EmulatorClients:
    return stack.clients


@pytest.fixture(scope="module")
def client(stack: Started) -> Iterator[ConveyorClient]:
    with stack.client() as http:
        yield http


FAULTY_TIMEOUT_S = 3


def faulty_stack_receives(queue: str) -> int:
    """How many receives the faulty stack's queue allows before its DLQ."""
    return TOPOLOGY.queue(queue).dead_letter.max_receive_count


DEAD_LETTER_WAIT_S = (
    2.5 * VISIBILITY_PER_TIMEOUT * FAULTY_TIMEOUT_S * faulty_stack_receives("billing")
)
"""Long enough for every receive and its visibility timeout, with room for a loaded
machine."""


def _faulty(topology: Topology, function: str, handler: str) -> Topology:
    """``function`` runs ``handler`` and times out after 3 s, so its queue's visibility
    timeout (six times that) is short enough to watch every receive in a test, and long
    enough that a cold worker's first call on a busy machine does not time out (a
    timed-out attempt would never reach the handler's bug)."""
    quick = topology.with_timeouts({function: FAULTY_TIMEOUT_S})
    changed = dataclasses.replace(quick.function(function), handler=handler)
    return dataclasses.replace(
        quick, functions=tuple(changed if f.name == function else f for f in quick.functions)
    )


@pytest.fixture(scope="session")
def faulty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """The stack with a billing bug (raises on customer ``poison``) and an image function
    whose DynamoDB calls are all throttled."""
    topology = _faulty(TOPOLOGY, "billing", "tests.integration.flaky_billing:handler")
    topology = _faulty(topology, "images", "tests.integration.flaky_images:handler")
    assert topology.problems() == []
    with local_runtime(tmp_path_factory.mktemp("faulty"), topology) as started:
        yield started


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


def settled(stack: Started, aws: EmulatorClients, upload_id: str) -> dict[str, Any] | None:
    """The image's item once it is processed or failed and its result event went out."""
    item = images_table.get(aws("dynamodb"), stack.info.resources.tables[IMAGES_TABLE], upload_id)
    # moto applies an UpdateItem's actions one at a time, so a read racing the claim that
    # creates the item can see its key alone (DynamoDB itself never shows that).
    if item is None or item.get("status") in (None, "processing"):
        return None
    return item if item.get("notified") else None


def log_lines(stack: Started, function: str) -> list[dict[str, Any]]:
    """The JSON lines a function's workers logged."""
    lines = (stack.logs_dir / f"{function}.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]
