"""Safe to restore from a SnapStart snapshot: what init could share across restores is
made afresh by the runtime's after-restore hook."""

from __future__ import annotations

import importlib.util
import random
import sys
import types
from collections.abc import Callable

import pytest

from conveyor.aws import clients, snapshot
from conveyor.functions import publisher


def test_hooks_are_registered_with_lambdas_runtime_when_it_offers_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered: list[Callable[[], object]] = []
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_after_restore = registered.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    # A copy of the module, imported as a cold start in Lambda would import it.
    spec = importlib.util.spec_from_file_location("snapshot_in_lambda", snapshot.__file__)
    assert spec is not None
    assert spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    assert registered == [random.seed], "random state is reseeded on every restore"

    def hook() -> None:
        pass

    assert fresh.after_restore(hook) is hook
    assert registered[-1] is hook


def test_a_restore_drops_every_client_and_reseeds_random(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    hooks = list(snapshot.HOOKS)
    assert clients.clear_cache in hooks
    assert publisher.idempotent.cache_clear in hooks
    before = clients.client("sqs")
    random.seed(7)  # the state a snapshot would carry into every environment
    shared = random.random()
    random.seed(7)
    for hook in hooks:
        hook()
    assert random.random() != shared
    assert clients.client("sqs") is not before
