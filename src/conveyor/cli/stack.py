"""Commands that run the local stack: ``up``, ``demo``, ``soak``, and the ones that look
at it: ``status``, ``logs``."""

from __future__ import annotations

import secrets
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from conveyor.cli import render
from conveyor.cli.app import (
    Fresh,
    Port,
    ProfileOption,
    StateDir,
    app,
    fail,
    running,
    wait_for_interrupt,
)
from conveyor.cli.render import console
from conveyor.local import demo as demo_flow
from conveyor.local.canary import REPORTS
from conveyor.local.chaos import FaultPlan
from conveyor.local.runtime import LocalRuntime, RuntimeOptions, Started
from conveyor.local.soak import DEFAULT_PLAN
from conveyor.local.state import DEFAULT_STATE_DIR, EmulatorClients, logs_dir
from conveyor.local.status import Status, read_status, runtime_overview
from conveyor.ops.traffic import submissions
from conveyor.topology import CANARY_EVERY_MINUTES, DEFAULT_PROFILE, TOPOLOGY


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _start(runtime: LocalRuntime) -> tuple[Started, float]:
    """The started stack and the seconds it took; interrupted, it is stopped and the
    command exits 130. The caller says it runs, inside its own stop handling: from the
    moment ``runtime.json`` exists, a Ctrl-C is a normal stop."""
    # SIGTERM during start-up should clean up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    began = time.perf_counter()
    try:
        with console.status("starting the local stack") as spinner:
            started = runtime.start(progress=spinner.update)
    except KeyboardInterrupt:
        console.print("interrupted; stopped")
        raise typer.Exit(130) from None
    except Exception as exc:
        fail(str(exc))
    return started, time.perf_counter() - began


def _stop(runtime: LocalRuntime) -> None:
    with console.status("stopping"):
        runtime.stop()
    console.print("stopped")


@app.command()
def up(
    directory: StateDir = DEFAULT_STATE_DIR,
    port: Port = 8080,
    profile: ProfileOption = DEFAULT_PROFILE,
    fresh: Fresh = False,
    canary: Annotated[
        bool,
        typer.Option(
            "--canary",
            help="Run the canary: conveyor verify's client checks against this stack, at "
            "start and then every --canary-every seconds, as -c canary=true does in AWS. "
            "Its results show in the console and in canary.jsonl in the state directory.",
        ),
    ] = False,
    canary_every: Annotated[
        float, typer.Option(min=10.0, help="Seconds between the canary's runs.")
    ] = CANARY_EVERY_MINUTES * 60.0,
) -> None:
    """Start the emulator (from the state it kept), provision everything, run the
    functions; Ctrl-C stops it all and keeps the state."""
    options = RuntimeOptions(
        state_dir=directory,
        port=port,
        profile=profile,
        fresh=fresh,
        canary_every_s=canary_every if canary else None,
    )
    runtime = LocalRuntime(options)
    started, seconds = _start(runtime)
    try:
        console.print(render.started_panel(started, seconds))
        if canary:
            console.print(
                f"the canary runs now and every {canary_every:g} s; its results are in the "
                f"console and in {directory / REPORTS}"
            )
        console.print("running; press Ctrl-C to stop")
        wait_for_interrupt()
    except KeyboardInterrupt:
        pass  # before the wait took Ctrl-C over: a stop all the same
    finally:
        _stop(runtime)


@app.command()
def status(directory: StateDir = DEFAULT_STATE_DIR) -> None:
    """Queue depths, billed / archived / processed counts, function invocations and the
    metric totals the runtime read from the functions' EMF lines."""
    info = running(directory)
    try:
        current = read_status(EmulatorClients(info.emulator_url), info.resources, TOPOLOGY)
    except Exception as exc:
        fail(f"the local stack is not answering ({exc}); is `conveyor up` still running?")
    console.print(render.profile_line(info.profile))
    console.print(render.status_table(current))
    console.print(render.status_counts(current))
    try:
        overview = runtime_overview(info.gateway_url)
    except Exception as exc:
        console.print(
            f"[yellow]no function or metric counters: the gateway did not answer[/] ({exc})"
        )
        return
    console.print(render.functions_table(overview["functions"]))
    console.print(render.metrics_table(overview["metrics"]))


@app.command()
def demo(
    directory: StateDir = DEFAULT_STATE_DIR,
    port: Port = 8080,
    profile: ProfileOption = DEFAULT_PROFILE,
    fresh: Fresh = False,
    orders: Annotated[int, typer.Option(min=1, help="How many requests to send.")] = 240,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Parallel clients.")] = 8,
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Stop the stack after the summary.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipeline.")] = 120.0,
) -> None:
    """Start the stack, send signed orders (some bad on purpose), wait, and summarise."""
    options = RuntimeOptions(state_dir=directory, port=port, profile=profile, fresh=fresh)
    runtime = LocalRuntime(options)
    started, seconds = _start(runtime)
    ok = False
    try:
        console.print(render.started_panel(started, seconds))
        ok = _orders_demo(started, orders, concurrency, timeout)
        ok = _media_demo(started, timeout) and ok
        if not exit_after:
            console.print("the stack keeps running; press Ctrl-C to stop")
            wait_for_interrupt()
    except KeyboardInterrupt:
        pass
    finally:
        _stop(runtime)
    if not ok:
        raise typer.Exit(1)


def _orders_demo(started: Started, orders: int, concurrency: int, timeout: float) -> bool:
    # Orders of their own each run: the stack keeps earlier runs' orders, and the same
    # ids again would be answered as replays, never billed a second time.
    batch = submissions(orders, seed=secrets.randbelow(2**32))
    bars = render.progress()
    with bars:
        sending = bars.add_task("sending orders", total=len(batch))
        billed = bars.add_task("billed", total=None)
        archived = bars.add_task("archived", total=None)

        def show(accepted: int, current: Status) -> None:
            bars.update(billed, total=accepted, completed=current.billed)
            bars.update(archived, total=accepted, completed=current.archived)

        result = demo_flow.run_orders(
            started,
            TOPOLOGY,
            batch,
            concurrency,
            timeout,
            on_sent=lambda: bars.advance(sending),
            on_status=show,
        )
    console.print(render.demo_summary(result))
    console.print(render.status_table(result.status))
    if result.report.unexpected:
        console.print(f"[red]unexpected answers:[/] {result.report.unexpected[:5]}")
    if not result.complete:
        console.print(f"[red]not every accepted order was billed and archived in {timeout:.0f}s[/]")
    return result.ok


def _media_demo(started: Started, timeout: float) -> bool:
    paths = demo_flow.media_files(started.state_dir)
    console.print(f"uploading {len(paths)} files ({len(paths) - 1} photographs, 1 impostor)")
    bars = render.progress()
    with bars:
        uploading = bars.add_task("uploading", total=len(paths))
        settling = bars.add_task("processing", total=len(paths))
        result = demo_flow.run_media(
            started,
            paths,
            timeout,
            on_uploaded=lambda: bars.advance(uploading),
            on_settled=lambda: bars.advance(settling),
        )
    console.print(render.images_table(result.batch))
    render.print_request_ids(result.batch)
    render.print_download_links(result.batch)
    if not result.ok:
        console.print("[red]the media demo did not end as expected[/]")
    return result.ok


@app.command()
def soak(
    directory: StateDir = DEFAULT_STATE_DIR / "soak",
    orders: Annotated[int, typer.Option(min=1, help="Order requests to send.")] = 5000,
    images: Annotated[int, typer.Option(min=0, help="Images to upload.")] = 40,
    raise_rate: Annotated[
        float, typer.Option(help="Records failing as if they raised.")
    ] = DEFAULT_PLAN.raise_rate,
    crash_rate: Annotated[
        float, typer.Option(help="Invocations whose worker dies.")
    ] = DEFAULT_PLAN.crash_rate,
    aws_error_rate: Annotated[
        float, typer.Option(help="AWS calls throttled.")
    ] = DEFAULT_PLAN.aws_error_rate,
    duplicate_rate: Annotated[
        float, typer.Option(help="Messages delivered twice.")
    ] = DEFAULT_PLAN.duplicate_rate,
    throttle_rate: Annotated[
        float, typer.Option(help="Batches the mapping finds the function throttled for.")
    ] = DEFAULT_PLAN.throttle_rate,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipelines.")] = 600.0,
    profile: ProfileOption = DEFAULT_PROFILE,
) -> None:
    """Push orders and images through a local stack while injecting faults, then check
    that nothing accepted was lost or done twice. Exits 1 if the invariant breaks."""
    from conveyor.local.soak import run_soak

    plan = FaultPlan(
        raise_rate=raise_rate,
        crash_rate=crash_rate,
        aws_error_rate=aws_error_rate,
        duplicate_rate=duplicate_rate,
        throttle_rate=throttle_rate,
    )
    with console.status("soaking") as spinner:
        report = run_soak(
            directory,
            orders,
            images,
            plan,
            timeout_s=timeout,
            progress=spinner.update,
            profile=profile,
        )
    console.print(render.soak_table(report))
    if not report.ok:
        console.print(
            f"[red]invariant broken[/]: lost {report.lost[:10]}, "
            f"done twice {report.duplicated[:10]}, "
            f"images unaccounted {report.images_unaccounted[:10]}, "
            f"faults that never fired {report.never_injected}"
        )
        raise typer.Exit(1)
    console.print("[green]nothing lost, nothing done twice[/]")


@app.command()
def logs(
    directory: StateDir = DEFAULT_STATE_DIR,
    function: Annotated[str | None, typer.Option(help="Only this function's log.")] = None,
    correlation_id: Annotated[
        str | None, typer.Option(help="Only entries of this correlation id (X-Request-Id).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new entries.")
    ] = False,
) -> None:
    """Every local worker's and the runtime's log, merged in time order."""
    from conveyor.ops.logs import LogFollower, parsed
    from conveyor.ops.logs import render as render_entry

    folder = logs_dir(Path(directory))
    if not folder.is_dir():
        fail(f"no logs in {folder}; start the stack with `conveyor up`")
    sources = sorted(path.stem for path in folder.glob("*.log"))
    if function is not None and function not in sources:
        fail(f"no log of {function!r}; the logs are {', '.join(sources)}")
    follower = LogFollower(sorted(folder.glob("*.log")), from_start=True)
    while True:  # each line is read once: what a pass prints, it prints in time order
        for entry in parsed(follower.read(), function, correlation_id):
            console.print(render_entry(entry), markup=False, highlight=False, soft_wrap=True)
        if not follow:
            return
        try:
            time.sleep(0.5)
        except KeyboardInterrupt:
            return
