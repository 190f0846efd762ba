"""The ``conveyor`` Typer app and what its commands share: options, failing with a
message, and loading a running stack's files."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer

from conveyor.cli.render import console
from conveyor.local.state import Credentials, NotRunningError, RuntimeInfo
from conveyor.topology import Profile

app = typer.Typer(
    help="Conveyor: secure, event-driven serverless pipelines, running on this machine.",
    no_args_is_help=True,
    add_completion=False,
)

StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="CONVEYOR_STATE_DIR",
        help="Where the local stack keeps its runtime file, dev credentials and logs.",
    ),
]
Port = Annotated[int, typer.Option(help="Port of the local gateway (0 picks a free one).")]
Fresh = Annotated[
    bool,
    typer.Option(
        "--fresh",
        help="Throw away the state the local stack kept (orders, images, queues, clients) "
        "and start empty. Without it, the stack starts from what it held when it stopped.",
    ),
]
ProfileOption = Annotated[
    Profile,
    typer.Option(
        "--profile",
        envvar="CONVEYOR_PROFILE",
        help="The deploy profile whose edge to behave as: private (behind a load balancer, "
        "ALB events) or lean (behind an API Gateway HTTP API, payload format 2.0 events).",
    ),
]


def fail(message: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def running(directory: Path) -> RuntimeInfo:
    try:
        return RuntimeInfo.load(directory)
    except NotRunningError as exc:
        fail(str(exc))


def dev_credentials(directory: Path) -> Credentials:
    try:
        return Credentials.load(directory)
    except NotRunningError as exc:
        fail(str(exc))


def wait_for_interrupt() -> None:
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    while not stop.wait(0.5):
        pass
