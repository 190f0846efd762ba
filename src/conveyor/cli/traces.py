"""``conveyor trace``: one order's or upload's path through the stack, as a waterfall."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from conveyor.cli import render
from conveyor.cli.app import StateDir, app, fail
from conveyor.cli.render import console
from conveyor.local.state import DEFAULT_STATE_DIR
from conveyor.local.traces import TRACES_FILE
from conveyor.ops.traces import TraceNotFoundError, find


@app.command()
def trace(
    reference: Annotated[
        str,
        typer.Argument(
            help="An order id, an upload id, or a trace id (every answer's X-Trace-Id)."
        ),
    ],
    directory: StateDir = DEFAULT_STATE_DIR,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the waterfall as JSON on stdout.")
    ] = False,
) -> None:
    """Show where one order or upload spent its time: every function and AWS call it
    went through, when each started and how long it took, how long its messages waited
    in a queue, and each retry as its own attempt.

    Reads the spans the local stack keeps in its state directory (they survive a
    restart; `conveyor up --fresh` starts them anew). The newest trace is shown when an
    id names more than one."""
    try:
        found = find(directory / TRACES_FILE, reference)
    except TraceNotFoundError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(found.as_json(), indent=2))
        return
    console.print(render.waterfall(found))
