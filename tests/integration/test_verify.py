"""``conveyor verify``'s checks against the local stack, behind each profile's edge: every
check passes on a sound stack (or is skipped with its reason where it cannot apply), and
each property switched off makes exactly the checks that prove it fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.cli.render import console
from conveyor.cli.verify import Reach, _local_reach, _target
from conveyor.local.runtime import Started
from conveyor.topology import TOPOLOGY, Profile
from conveyor.verify import checks
from conveyor.verify.checks import Outcome, Result
from tests.integration.conftest import BROKEN_PROPERTIES, broken, local_runtime

pytestmark = pytest.mark.integration

CANNOT_APPLY_LOCALLY = {"https-only", "alarms-armed", "logs-retained"}
"""The local gateway is plain HTTP; local mode has no alarms or log groups."""


def reach(stack: Started) -> Reach:
    return _local_reach(stack.info, "the test's stack")


def verify(stack: Started, only: tuple[str, ...] = ()) -> list[Result]:
    with _target(reach(stack), None, console) as target:
        return checks.run(target, checks.chosen(only))


def failing(results: list[Result]) -> set[str]:
    return {r.name for r in results if r.outcome is Outcome.FAIL}


def test_every_check_passes_on_a_sound_stack_or_says_why_it_cannot_apply(
    stack: Started,
) -> None:
    results = verify(stack)
    assert [r.name for r in results] == list(checks.NAMES)
    outcomes = {r.name: r.outcome for r in results}
    assert failing(results) == set(), {r.name: r.detail for r in results}
    assert {n for n, o in outcomes.items() if o is Outcome.SKIP} == CANNOT_APPLY_LOCALLY
    for result in results:
        if result.outcome is Outcome.PASS and result.name != "no-dead-letters":
            assert str(result.evidence.get("request_id", "")).startswith("verify-"), result.name


def test_the_run_leaves_no_client_and_no_order_behind(stack: Started) -> None:
    from conveyor.ops import clients as documents
    from conveyor.topology import CLIENT_SECRETS, ORDERS_TABLE

    secretsmanager = stack.clients("secretsmanager")
    secret = stack.info.resources.secrets[CLIENT_SECRETS]
    before = set(documents.read(secretsmanager, secret))
    with _target(reach(stack), None, console) as target:
        results = checks.run(target, checks.chosen(["order-billed", "tenant-isolation"]))
        made = target.api.client.client_id
    assert failing(results) == set(), {r.name: r.detail for r in results}
    assert set(documents.read(secretsmanager, secret)) == before, "the run's clients are gone"
    left = stack.clients("dynamodb").query(
        TableName=stack.info.resources.tables[ORDERS_TABLE],
        KeyConditionExpression="client_id = :c",
        ExpressionAttributeValues={":c": {"S": made}},
    )
    assert left["Count"] == 0, "the run's orders are removed"


def test_a_message_in_a_dlq_fails_exactly_the_dead_letter_check(stack: Started) -> None:
    sqs = stack.clients("sqs")
    dlq = stack.info.resources.queues["archive-dlq"]
    sqs.send_message(QueueUrl=dlq, MessageBody='{"planted": "by the test"}')
    try:
        results = verify(stack, ("no-dead-letters", "order-billed"))
    finally:
        sqs.purge_queue(QueueUrl=dlq)
    assert failing(results) == {"no-dead-letters"}
    [dead] = [r for r in results if r.name == "no-dead-letters"]
    assert dead.detail == "archive-dlq holds 1"


def test_a_variant_without_its_headers_fails_exactly_the_variants_check(
    stack: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.core.media import VARIANT_HEADERS
    from conveyor.local import downloads

    loose = {k: v for k, v in VARIANT_HEADERS.items() if k != "X-Content-Type-Options"}
    monkeypatch.setattr(downloads, "VARIANT_HEADERS", loose)
    results = verify(stack, ("upload-becomes-variants", "bucket-refuses-direct-read"))
    assert failing(results) == {"upload-becomes-variants"}
    assert "without X-Content-Type-Options" in results[0].detail


@pytest.fixture(scope="module")
def broken_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Started]]:
    """Two stacks whose publisher lacks a property each (``broken_publisher.py``)."""
    found: dict[str, Started] = {}
    runtimes = []
    try:
        for name in ("trusting", "forgetful"):
            topology = broken(TOPOLOGY, f"tests.integration.broken_publisher:{name}")
            runtime = local_runtime(tmp_path_factory.mktemp(name), topology, Profile.LEAN)
            runtimes.append(runtime)
            found[name] = runtime.start()
        yield found
    finally:
        for runtime in runtimes:
            runtime.stop()


CLIENT_CHECKS = tuple(c.name for c in checks.CLIENT)


@pytest.mark.parametrize(("broken_property", "caught_by"), **BROKEN_PROPERTIES)
def test_a_publisher_without_a_property_fails_exactly_the_checks_of_that_property(
    broken_stacks: dict[str, Started], broken_property: str, caught_by: set[str]
) -> None:
    results = verify(broken_stacks[broken_property], CLIENT_CHECKS)
    assert failing(results) == caught_by, {r.name: r.detail for r in results}


def test_the_photograph_is_a_real_one() -> None:
    photo = checks.photograph()
    assert photo.content_type == "image/jpeg"
    assert photo.data[:3] == b"\xff\xd8\xff"
    assert len(photo.data) > 50_000
    assert Path(photo.filename).suffix == ".jpg"
