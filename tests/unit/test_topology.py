"""The declared wiring is sound, and each function's environment comes from its grants."""

from __future__ import annotations

import dataclasses
import importlib
import os
import subprocess
import sys

import pytest

from conveyor.local.provision import Resources
from conveyor.local.runtime import function_environment
from conveyor.topology import (
    RUNTIME_SETTINGS,
    TOPOLOGY,
    DeadLetter,
    Grant,
    Kind,
    SqsTrigger,
)


def test_the_declared_topology_has_no_problems() -> None:
    assert TOPOLOGY.problems() == []


def test_the_orders_wiring_is_what_the_design_says() -> None:
    assert {(s.topic, s.queue) for s in TOPOLOGY.subscriptions} >= {
        ("orders", "billing"),
        ("orders", "archive"),
    }
    for name in ("billing", "archive"):
        queue = TOPOLOGY.queue(name)
        assert queue.dead_letter.max_receive_count == 5, "AWS's advice, throttles counted"
        assert queue.dead_letter.retention_s == 14 * 86_400
        consumer = next(f for f, t in TOPOLOGY.sqs_triggered() if t.queue == name)
        assert queue.visibility_timeout_s == 6 * consumer.timeout_s
        assert consumer.trigger == SqsTrigger(name, batch_size=10, report_batch_item_failures=True)
    assert next((f.name, r.path) for f, r in TOPOLOGY.routes()) == ("publisher", "/orders")


@pytest.mark.parametrize("function", TOPOLOGY.functions, ids=lambda f: f.name)
def test_every_handler_is_importable(function: object) -> None:
    module, attribute = function.handler.split(":")  # type: ignore[attr-defined]
    assert callable(getattr(importlib.import_module(module), attribute))


def test_problems_catches_a_visibility_timeout_too_short_for_its_consumer() -> None:
    billing = TOPOLOGY.queue("billing")
    broken = dataclasses.replace(
        TOPOLOGY,
        queues=tuple(
            dataclasses.replace(q, visibility_timeout_s=30) if q is billing else q
            for q in TOPOLOGY.queues
        ),
    )
    assert broken.problems() == ["queue billing visibility 30s is not 6x billing's timeout (60s)"]


def test_queue_consumers_run_locally_as_many_at_once_as_their_mapping_allows_in_aws() -> None:
    for function, trigger in TOPOLOGY.sqs_triggered():
        assert function.concurrency == trigger.max_concurrency, function.name
    billing = TOPOLOGY.function("billing")
    greedy = dataclasses.replace(
        TOPOLOGY,
        functions=tuple(
            dataclasses.replace(f, concurrency=3) if f is billing else f for f in TOPOLOGY.functions
        ),
    )
    assert greedy.problems() == [
        "billing runs 3 local workers, more than its event source mapping's maximum concurrency (2)"
    ]


def _billing_with(reserved_concurrency: int | None = None, **trigger_changes: int) -> list[str]:
    billing = TOPOLOGY.function("billing")
    assert isinstance(billing.trigger, SqsTrigger)
    trigger = dataclasses.replace(billing.trigger, **trigger_changes)  # type: ignore[arg-type]
    function = dataclasses.replace(
        billing,
        trigger=trigger,
        reserved_concurrency=reserved_concurrency,
        concurrency=min(billing.concurrency, max(1, trigger.max_concurrency)),
    )
    changed = dataclasses.replace(
        TOPOLOGY,
        functions=tuple(function if f is billing else f for f in TOPOLOGY.functions),
    )
    return changed.problems()


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"max_concurrency": 1}, "billing maximum concurrency must be 2..1000"),
        ({"max_concurrency": 1001}, "billing maximum concurrency must be 2..1000"),
        ({"batching_window_s": 301}, "billing batching window must be 0..300 s"),
        ({"batching_window_s": -1}, "billing batching window must be 0..300 s"),
        ({"batch_size": 11}, "billing batch size must be 1..10 with this batching window"),
        ({"batch_size": 0}, "billing batch size must be 1..10 with this batching window"),
        (
            {"batch_size": 10_001, "batching_window_s": 5},
            "billing batch size must be 1..10000 with this batching window",
        ),
        (
            {"reserved_concurrency": 1},
            "billing reserves 1 concurrent executions, fewer than its event source mapping's "
            "maximum concurrency (2): the mapping would be throttled",
        ),
    ],
)
def test_problems_rejects_what_aws_rejects(changes: dict[str, int], problem: str) -> None:
    assert problem in _billing_with(**changes)


def test_fewer_than_five_receives_need_the_mapping_reserved_against_throttles() -> None:
    billing = TOPOLOGY.queue("billing")
    three = dataclasses.replace(billing, dead_letter=DeadLetter(max_receive_count=3))
    consumer = TOPOLOGY.function("billing")
    unreserved = dataclasses.replace(consumer, reserved_concurrency=None)
    changed = dataclasses.replace(
        TOPOLOGY,
        queues=tuple(three if q is billing else q for q in TOPOLOGY.queues),
        functions=tuple(unreserved if f is consumer else f for f in TOPOLOGY.functions),
    )
    assert changed.problems() == [
        "queue billing allows 3 receives: a throttled batch counts as one, so allow at least "
        "5 or reserve billing's mapping's maximum concurrency"
    ]
    function = changed.function("billing")
    reserved = dataclasses.replace(function, reserved_concurrency=2)
    safe = dataclasses.replace(
        changed, functions=tuple(reserved if f is function else f for f in changed.functions)
    )
    assert safe.problems() == []


def test_what_aws_accepts_passes() -> None:
    assert _billing_with(batch_size=500, batching_window_s=30, reserved_concurrency=2) == []
    assert _billing_with(max_concurrency=1000, batching_window_s=300) == []


def test_problems_catches_unknown_resources_and_wildcards() -> None:
    publisher = TOPOLOGY.function("publisher")
    bad = dataclasses.replace(
        publisher,
        grants=(
            Grant(Kind.TABLE, "nope", ("dynamodb:PutItem",)),
            Grant(Kind.TOPIC, "orders", ("sns:*",)),
        ),
    )
    broken = dataclasses.replace(
        TOPOLOGY, functions=tuple(bad if f is publisher else f for f in TOPOLOGY.functions)
    )
    assert broken.problems() == [
        "publisher: unknown table nope",
        "publisher: wildcard action on orders",
    ]


def test_a_function_environment_holds_its_grants_and_nothing_of_the_runtimes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOME_RUNTIME_SECRET", "must-not-leak")
    resources = Resources(
        prefix="p",
        topics={"orders": "arn:topic"},
        queues={"billing-dlq": "url:dlq"},
        tables={"orders": "p-orders"},
        secrets={"client-secrets": "arn:secret"},
    )
    env = function_environment(
        TOPOLOGY, TOPOLOGY.function("billing"), resources, "http://127.0.0.1:1", "http://m:2"
    )
    assert env["ORDERS_TABLE"] == "p-orders"
    assert env["DEAD_LETTER_QUEUE_URL"] == "url:dlq"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["MAX_RECEIVE_COUNT"] == "5", "a consumer can tell its last attempt"
    assert "ORDERS_TOPIC_ARN" not in env, "billing has no grant on the topic"
    assert "CLIENT_SECRETS_ID" not in env
    assert "SOME_RUNTIME_SECRET" not in env
    assert "MEDIA_BASE_URL" not in env, "only presign answers with download links"
    media = Resources(
        prefix="p",
        buckets={"media": "p-media"},
        tables={"images": "p-images"},
        secrets={"client-secrets": "arn:secret"},
    )
    presign = function_environment(
        TOPOLOGY, TOPOLOGY.function("presign"), media, "http://127.0.0.1:1", "http://m:2"
    )
    assert presign["MEDIA_BASE_URL"] == "http://m:2/media/processed"


_PLUGIN_LOOKUPS = """
import importlib.metadata, sys
groups = []
scan = importlib.metadata.entry_points
def spy(**selection):
    groups.append(selection.get("group"))
    return scan(**selection)
importlib.metadata.entry_points = spy  # before pydantic binds the name
import conveyor.functions.publisher
print("pydantic" in groups)
"""


@pytest.mark.parametrize("deployed", [True, False], ids=["as deployed", "without the setting"])
def test_functions_build_their_models_without_scanning_for_pydantic_plugins(
    deployed: bool,
) -> None:
    # The scan reads every installed distribution's metadata on a cold start.
    env = {k: v for k, v in os.environ.items() if k not in RUNTIME_SETTINGS}
    if deployed:
        env.update(TOPOLOGY.settings(TOPOLOGY.function("publisher")))
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    found = subprocess.run(
        [sys.executable, "-c", _PLUGIN_LOOKUPS], env=env, capture_output=True, text=True, check=True
    )
    assert found.stdout.split() == [str(not deployed)]


def test_the_canary_is_sound_and_only_where_asked() -> None:
    from conveyor.topology import CANARY_FUNCTION, Schedule

    assert CANARY_FUNCTION not in {f.name for f in TOPOLOGY.functions}
    watched = TOPOLOGY.with_canary(10)
    assert watched.problems() == []
    assert watched.function(CANARY_FUNCTION).trigger == Schedule(10)
    assert Schedule(1).expression == "rate(1 minute)"
    assert Schedule(10).expression == "rate(10 minutes)"
    assert TOPOLOGY.with_canary(3).problems() == [
        "canary may run 240 s, not less than its interval (3 min): runs would overlap"
    ]
    assert "canary must run every 1..1440 minutes" in TOPOLOGY.with_canary(2000).problems()
