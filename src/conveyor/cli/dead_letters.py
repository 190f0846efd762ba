"""Commands for dead letters: ``dlq`` lists them with their reasons, ``redrive`` moves
them back to their source queue."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli import render
from conveyor.cli.app import StateDir, app, fail, running
from conveyor.cli.render import console
from conveyor.local.provision import Resources
from conveyor.local.state import DEFAULT_STATE_DIR, EmulatorClients, logs_dir
from conveyor.ops.redrive import QueuePair, dead_letters, redrive
from conveyor.topology import DLQ_SUFFIX, TOPOLOGY


def _queue_pair(resources: Resources, name: str) -> QueuePair:
    """A topology queue and its DLQ, for a queue named either way."""
    source = name.removesuffix(DLQ_SUFFIX)
    known = [q.name for q in TOPOLOGY.queues]
    if source not in known:
        fail(f"no queue {name!r}; the queues are {', '.join(known)}")
    return resources.queue_pair(source)


@app.command()
def dlq(
    queue: Annotated[str, typer.Argument(help="A queue (billing) or its DLQ (billing-dlq).")],
    directory: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """List what is in a dead-letter queue: receive counts and the last error of each.

    Listing receives each message once, which raises its receive count by one; the
    counts shown are from before. `conveyor status` gives the depth without receiving."""
    info = running(directory)
    pair = _queue_pair(info.resources, queue)
    logs = sorted(logs_dir(Path(directory)).glob("*.log"))
    letters = dead_letters(EmulatorClients(info.emulator_url)("sqs"), pair.dlq_url, logs)
    console.print(render.dead_letters_table(pair.dlq_name, letters))


@app.command(name="redrive")
def redrive_command(
    queue: Annotated[str, typer.Argument(help="The queue to move its DLQ's messages back to.")],
    directory: StateDir = DEFAULT_STATE_DIR,
    max_messages: Annotated[
        int | None, typer.Option("--max", min=1, help="Move at most this many.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would move.")] = False,
    rate: Annotated[
        int | None,
        typer.Option("--rate", min=1, max=500, help="Move at most this many a second."),
    ] = None,
) -> None:
    """Move dead letters back to their source queue, never losing or duplicating one."""
    info = running(directory)
    pair = _queue_pair(info.resources, queue)
    sqs = EmulatorClients(info.emulator_url)("sqs")
    if dry_run:
        letters = dead_letters(sqs, pair.dlq_url)
        shown = letters[:max_messages] if max_messages else letters
        for letter in shown:
            console.print(f"would move {letter.message_id} ({letter.subject}) to {pair.name}")
        console.print(f"{len(shown)} message(s) would move; nothing was changed")
        return
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    result = redrive(
        sqs,
        pair,
        Path(directory),
        max_messages=max_messages,
        rate=rate,
        stop=stop,
        progress=lambda state: console.print(
            f"move task {state.status.lower()}: {state.moved} of "
            f"{'?' if state.to_move is None else state.to_move} moved"
        ),
    )
    console.print(
        f"moved {result.moved} message(s) from {pair.dlq_name} to {pair.name} ({result.method})"
    )
    if result.failure:
        fail(f"the move task failed: {result.failure}")
    if result.failed_again:
        console.print(
            f"{result.failed_again} of them failed again during the run and are back in "
            f"{pair.dlq_name}; they were not moved twice (`conveyor dlq {pair.name}` says why)"
        )
    if result.finished_interrupted:
        console.print(
            f"finished {result.finished_interrupted} message(s) an interrupted run "
            "had already sent (deleted from the DLQ, not sent again)"
        )
    if result.stopped_early:
        console.print("stopped on request; run it again to move the rest")
