"""The console's answers when there is no gateway behind it to name."""

from __future__ import annotations

import json
from pathlib import Path

from conveyor.local.console import Console
from conveyor.local.runtime import LocalRuntime, RuntimeOptions


def test_a_stack_without_its_gateway_says_it_stopped_not_that_the_address_is_wrong(
    tmp_path: Path,
) -> None:
    # The runtime lets go of its gateway first when it stops, while the page still polls.
    runtime = LocalRuntime(RuntimeOptions(state_dir=tmp_path, port=0, endpoint_url=None))
    console = Console(runtime, "http://127.0.0.1:1")
    answer = console("GET", "/console/api/overview", {"host": "127.0.0.1:8080"}, b"")
    assert answer.status == 503
    assert json.loads(answer.body) == {"error": "stopped", "reason": "the local stack has stopped"}
