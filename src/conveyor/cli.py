"""``conveyor``: run the system on this machine and talk to it."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conveyor.client import ConveyorClient
from conveyor.demo import Submission, send_all, submissions
from conveyor.local.runtime import LocalRuntime, RuntimeOptions
from conveyor.local.state import (
    Credentials,
    EmulatorClients,
    NotRunningError,
    RuntimeInfo,
)
from conveyor.local.status import Status, read_status, runtime_overview
from conveyor.topology import IMAGES_TABLE, TOPOLOGY
from conveyor.uploads import Batch, await_results, sample_photos, upload_all

app = typer.Typer(
    help="Conveyor: secure, event-driven serverless pipelines, running on this machine.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="CONVEYOR_STATE_DIR",
        help="Where the local stack keeps its runtime file, dev credentials and logs.",
    ),
]
Port = Annotated[int, typer.Option(help="Port of the local gateway (0 picks a free one).")]


def _fail(message: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _running(directory: Path) -> RuntimeInfo:
    try:
        return RuntimeInfo.load(directory)
    except NotRunningError as exc:
        _fail(str(exc))


def _dev_credentials(directory: Path) -> Credentials:
    try:
        return Credentials.load(directory)
    except NotRunningError as exc:
        _fail(str(exc))


def _wait_for_interrupt() -> None:
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    while not stop.wait(0.5):
        pass


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _start_runtime(directory: Path, port: int) -> LocalRuntime:
    runtime = LocalRuntime(RuntimeOptions(state_dir=directory, port=port))
    # SIGTERM during start-up should clean up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.perf_counter()
    try:
        with console.status("starting the local stack") as spinner:
            runtime.start(progress=spinner.update)
    except KeyboardInterrupt:
        console.print("interrupted; stopped")
        raise typer.Exit(130) from None
    except Exception as exc:
        _fail(str(exc))
    info, credentials = runtime.info, runtime.credentials
    assert info is not None, "set by a successful start"
    assert credentials is not None, "set by a successful start"
    console.print(
        Panel.fit(
            f"[bold]gateway[/]      {info.gateway_url}  (POST /orders, POST /uploads, "
            "GET /media/processed/...)\n"
            f"[bold]console[/]      {info.gateway_url}/console\n"
            f"[bold]client id[/]    {credentials.client_id}\n"
            f"[bold]secret in[/]    {runtime.credentials_path}\n"
            f"[bold]emulator[/]     {info.emulator_url}\n"
            f"[bold]logs[/]         {runtime.logs_dir}/",
            title=f"conveyor is up in {time.perf_counter() - started:.1f}s",
        )
    )
    return runtime


@app.command()
def up(directory: StateDir = Path(".conveyor"), port: Port = 8080) -> None:
    """Start the emulator, provision everything, run the functions; Ctrl-C stops it all."""
    runtime = _start_runtime(directory, port)
    try:
        console.print("running; press Ctrl-C to stop")
        _wait_for_interrupt()
    finally:
        with console.status("stopping"):
            runtime.stop()
        console.print("stopped")


def _status_table(status: Status) -> Table:
    table = Table(title="queues")
    for column in ("queue", "visible", "in flight", "DLQ"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for queue in status.queues:
        table.add_row(
            queue.name,
            str(queue.visible),
            str(queue.in_flight),
            f"[red]{queue.dead_letters}[/]" if queue.dead_letters else "0",
        )
    return table


@app.command()
def status(directory: StateDir = Path(".conveyor")) -> None:
    """Queue depths, billed / archived / processed counts, function invocations and the
    metric totals the runtime read from the functions' EMF lines."""
    info = _running(directory)
    try:
        current = read_status(EmulatorClients(info.emulator_url), info.resources, TOPOLOGY)
    except Exception as exc:
        _fail(f"the local stack is not answering ({exc}); is `conveyor up` still running?")
    console.print(_status_table(current))
    console.print(
        f"orders billed: [bold]{current.billed}[/]   archived: [bold]{current.archived}[/]   "
        f"images processed: [bold]{current.images_processed}[/]   "
        f"failed: [bold]{current.images_failed}[/]"
    )
    try:
        overview = runtime_overview(info.gateway_url)
    except Exception as exc:
        console.print(
            f"[yellow]no function or metric counters: the gateway did not answer[/] ({exc})"
        )
        return
    console.print(_functions_table(overview["functions"]))
    console.print(_metrics_table(overview["metrics"]))


def _functions_table(functions: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="functions")
    for column in ("function", "invocations", "errors", "last ms", "workers"):
        table.add_column(column, justify="left" if column == "function" else "right")
    for name, stats in functions.items():
        table.add_row(
            name,
            str(stats["invocations"]),
            f"[red]{stats['errors']}[/]" if stats["errors"] else "0",
            f"{stats['last_duration_ms']:.1f}",
            f"{stats['workers']}/{stats['concurrency']}",
        )
    return table


def _metrics_table(series: list[dict[str, Any]]) -> Table:
    table = Table(title="metrics (from the functions' EMF lines)")
    for column in ("metric", "reason", "total", "mean", "max"):
        table.add_column(column, justify="left" if column in ("metric", "reason") else "right")
    for s in series:
        timed = s["unit"] == "Milliseconds"
        table.add_row(
            s["name"],
            s["dimensions"].get("reason", ""),
            f"{s['samples']} samples" if timed else f"{s['sum']:g}",
            f"{s['sum'] / s['samples']:.1f} ms" if timed else "",
            f"{s['max']:.1f} ms" if timed else "",
        )
    return table


def _parse_item(text: str) -> dict[str, Any]:
    parts = text.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        raise typer.BadParameter(f"{text!r}: expected SKU:QUANTITY:UNIT_PRICE, e.g. KB-1:2:19.90")
    return {"sku": parts[0], "quantity": int(parts[1]), "unit_price": parts[2]}


@app.command()
def order(
    directory: StateDir = Path(".conveyor"),
    customer: Annotated[str | None, typer.Option(help="Customer id.")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "EUR",
    item: Annotated[
        list[str] | None, typer.Option(help="SKU:QUANTITY:UNIT_PRICE; repeat for more lines.")
    ] = None,
    order_id: Annotated[
        str | None, typer.Option(help="Idempotency key; generated if absent.")
    ] = None,
    request_id: Annotated[
        str | None, typer.Option(help="Sent as X-Request-Id: the correlation id in every log.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="A JSON file with the whole order instead of flags.")
    ] = None,
) -> None:
    """Send one signed order to the local stack and print the answer."""
    if file is not None:
        try:
            payload = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            _fail(f"cannot read an order from {file}: {exc}")
    else:
        if not customer or not item:
            _fail("give --customer and at least one --item, or --file")
        payload = {
            "customer_id": customer,
            "currency": currency,
            "items": [_parse_item(i) for i in item],
        }
        if order_id:
            payload["order_id"] = order_id
    credentials = _dev_credentials(directory)
    client = credentials.client()
    try:
        response = client.send_order(
            payload, headers={"X-Request-Id": request_id} if request_id else None
        )
    except OSError as exc:
        _fail(f"cannot reach {credentials.endpoint}: {exc}; is `conveyor up` running?")
    style = "green" if response.status_code < 300 else "red"
    console.print(f"[{style}]{response.status_code}[/]", end=" ")
    console.print_json(response.text) if response.text else console.print("")
    if response.status_code >= 300:
        raise typer.Exit(1)


def _results_table(batch: Batch, gateway_url: str) -> Table:
    table = Table(title="images")
    for column in ("image", "original", "variants", "status", "time"):
        table.add_column(column)
    for outcome in batch.outcomes:
        item = outcome.item or {}
        original = f"{outcome.upload.size / 1024:,.0f} KiB"
        if "width" in item:
            original = f"{int(item['width'])}x{int(item['height'])}, {original}"
        variants = " ".join(
            f"{int(v['width'])}x{int(v['height'])}" for v in item.get("variants", {}).values()
        )
        status = outcome.status
        if status == "failed":
            status = f"[red]failed[/]: {item.get('reason')}"
        elif status == "processed":
            status = "[green]processed[/]"
        seconds = outcome.seconds
        table.add_row(
            outcome.upload.path.name,
            original,
            variants,
            status,
            "-" if seconds is None else f"{seconds:.2f} s",
        )
    for error in batch.refused:
        table.add_row(error.filename, "-", "-", f"[red]refused[/]: {error.status}", "-")
    return table


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _started(runtime: LocalRuntime) -> tuple[RuntimeInfo, ConveyorClient]:
    """What a successful start leaves: where everything is, and a signed client."""
    info, credentials = runtime.info, runtime.credentials
    assert info is not None, "set by a successful start"
    assert credentials is not None, "set by a successful start"
    return info, credentials.client()


def _upload_and_wait(
    client: ConveyorClient,
    clients: EmulatorClients,
    info: RuntimeInfo,
    paths: list[Path],
    timeout: float,
) -> tuple[Batch, bool]:
    progress = _progress()
    with progress:
        uploading = progress.add_task("uploading", total=len(paths))
        batch = upload_all(client, paths, lambda: progress.advance(uploading))
        settling = progress.add_task("processing", total=len(batch.outcomes))
        complete = await_results(
            clients("dynamodb"),
            info.resources.tables[IMAGES_TABLE],
            batch,
            timeout,
            lambda _: progress.advance(settling),
        )
    return batch, complete


@app.command()
def upload(
    paths: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, WebP, GIF).")],
    directory: StateDir = Path(".conveyor"),
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the results.")] = 120.0,
) -> None:
    """Upload images through the presigned flow, wait for their variants, show a table."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        _fail(f"not a file: {', '.join(missing)}")
    credentials, info = _dev_credentials(directory), _running(directory)
    client = credentials.client()
    try:
        batch, complete = _upload_and_wait(
            client, EmulatorClients(info.emulator_url), info, paths, timeout
        )
    except OSError as exc:
        _fail(f"cannot reach the local stack: {exc}; is `conveyor up` running?")
    console.print(_results_table(batch, info.gateway_url))
    _print_download_links(batch, info.gateway_url)
    if not complete:
        _fail(f"not every image had a result within {timeout:.0f}s")
    if batch.refused or any(o.status != "processed" for o in batch.outcomes):
        raise typer.Exit(1)


def _print_download_links(batch: Batch, gateway_url: str) -> None:
    done = [o for o in batch.outcomes if (o.item or {}).get("variants")]
    if not done:
        return
    console.print(
        f"download the variants from {gateway_url}/media/processed/{{large,medium,thumb}}/"
        "<image id><ext>; the large ones:"
    )
    for outcome in done:
        key = outcome.item["variants"]["large"]["key"] if outcome.item else ""
        console.print(f"  {outcome.upload.path.name}: {gateway_url}/media/{key}", soft_wrap=True)


@app.command()
def demo(
    directory: StateDir = Path(".conveyor"),
    port: Port = 8080,
    orders: Annotated[int, typer.Option(min=1, help="How many requests to send.")] = 240,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Parallel clients.")] = 8,
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Stop the stack after the summary.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipeline.")] = 120.0,
) -> None:
    """Start the stack, send signed orders (some bad on purpose), wait, and summarise."""
    runtime = _start_runtime(directory, port)
    ok = False
    try:
        ok = _run_demo(runtime, submissions(orders), concurrency, timeout)
        ok = _run_media_demo(runtime, timeout) and ok
        if not exit_after:
            console.print("the stack keeps running; press Ctrl-C to stop")
            _wait_for_interrupt()
    except KeyboardInterrupt:
        pass
    finally:
        with console.status("stopping"):
            runtime.stop()
        console.print("stopped")
    if not ok:
        raise typer.Exit(1)


def _run_demo(
    runtime: LocalRuntime, batch: list[Submission], concurrency: int, timeout: float
) -> bool:
    info, client = _started(runtime)
    clients = EmulatorClients(info.emulator_url)
    progress = _progress()
    started = time.perf_counter()
    with progress:
        sending = progress.add_task("sending orders", total=len(batch))
        report = send_all(client, batch, concurrency, lambda: progress.advance(sending))
        accepted = len(report.accepted)
        billed_task = progress.add_task("billed", total=accepted)
        archived_task = progress.add_task("archived", total=accepted)
        deadline = time.monotonic() + timeout
        while True:
            current = read_status(clients, info.resources, TOPOLOGY)
            progress.update(billed_task, completed=current.billed)
            progress.update(archived_task, completed=current.archived)
            settled = current.pending == 0 and (
                current.billed + current.dead_letters >= accepted
                and current.archived + current.dead_letters >= accepted
            )
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # each look costs the emulator time in proportion to the backlog
    elapsed = time.perf_counter() - started

    summary = Table(title="demo summary", show_header=False)
    summary.add_column(justify="left")
    summary.add_column(justify="right")
    summary.add_row("requests sent", str(len(batch)))
    summary.add_row("accepted (202)", str(accepted))
    for reason, count in sorted(report.rejected.items()):
        summary.add_row(f"rejected: {reason}", str(count))
    summary.add_row("billed", str(current.billed))
    summary.add_row("archived", str(current.archived))
    summary.add_row("in a DLQ", str(current.dead_letters))
    summary.add_row("elapsed", f"{elapsed:.1f} s")
    summary.add_row(
        "accepted orders / s (POST to billed and archived)", f"{accepted / elapsed:.0f}"
    )
    console.print(summary)
    console.print(_status_table(current))
    complete = current.billed == accepted and current.archived == accepted
    if report.unexpected:
        console.print(f"[red]unexpected answers:[/] {report.unexpected[:5]}")
    if not complete:
        console.print(f"[red]not every accepted order was billed and archived in {timeout:.0f}s[/]")
    return complete and not report.unexpected


def _run_media_demo(runtime: LocalRuntime, timeout: float) -> bool:
    """Upload the sample photographs, plus one file that is not an image at all."""
    info, client = _started(runtime)
    not_an_image = runtime.options.state_dir / "demo-not-an-image.jpg"
    not_an_image.write_bytes(b"%PDF-1.7 this is not a photograph\n" * 64)
    paths = [*sample_photos(), not_an_image]
    console.print(f"uploading {len(paths)} files ({len(paths) - 1} photographs, 1 impostor)")
    batch, complete = _upload_and_wait(
        client, EmulatorClients(info.emulator_url), info, paths, timeout
    )
    console.print(_results_table(batch, info.gateway_url))
    _print_download_links(batch, info.gateway_url)
    photos_ok = all(o.status == "processed" for o in batch.outcomes[:-1])
    impostor_failed = batch.outcomes[-1].status == "failed" if batch.outcomes else False
    if not (complete and photos_ok and impostor_failed and not batch.refused):
        console.print("[red]the media demo did not end as expected[/]")
        return False
    return True


def _queue_pair(info: RuntimeInfo, name: str) -> tuple[str, str]:
    """(source queue, its DLQ) for a queue named either way."""
    source = name.removesuffix("-dlq")
    known = [q.name for q in TOPOLOGY.queues]
    if source not in known:
        _fail(f"no queue {name!r}; the queues are {', '.join(known)}")
    return source, f"{source}-dlq"


@app.command()
def dlq(
    queue: Annotated[str, typer.Argument(help="A queue (billing) or its DLQ (billing-dlq).")],
    directory: StateDir = Path(".conveyor"),
) -> None:
    """List what is in a dead-letter queue: receive counts and the last error of each."""
    from conveyor.redrive import dead_letters

    info = _running(directory)
    _, dead = _queue_pair(info, queue)
    logs = sorted((directory / "logs").glob("*.log"))
    letters = dead_letters(
        EmulatorClients(info.emulator_url)("sqs"), info.resources.queues[dead], logs
    )
    table = Table(title=f"{dead}: {len(letters)} message(s)")
    for column in ("message id", "receives", "sent", "what", "last error"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            letter.message_id,
            str(letter.receive_count),
            f"{letter.sent_at:%H:%M:%S}",
            letter.subject,
            letter.reason,
        )
    console.print(table)


@app.command()
def redrive(
    queue: Annotated[str, typer.Argument(help="The queue to move its DLQ's messages back to.")],
    directory: StateDir = Path(".conveyor"),
    max_messages: Annotated[
        int | None, typer.Option("--max", min=1, help="Move at most this many.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would move.")] = False,
) -> None:
    """Move dead letters back to their source queue, never losing or duplicating one."""
    from conveyor import redrive as dead_letters_module

    info = _running(directory)
    source, dead = _queue_pair(info, queue)
    sqs = EmulatorClients(info.emulator_url)("sqs")
    if dry_run:
        letters = dead_letters_module.dead_letters(sqs, info.resources.queues[dead])
        shown = letters[:max_messages] if max_messages else letters
        for letter in shown:
            console.print(f"would move {letter.message_id} ({letter.subject}) to {source}")
        console.print(f"{len(shown)} message(s) would move; nothing was changed")
        return
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    result = dead_letters_module.redrive_queue(
        sqs, info.resources, directory, source, max_messages=max_messages, stop=stop
    )
    console.print(f"moved {result.moved} message(s) from {dead} to {source} ({result.method})")
    if result.finished_interrupted:
        console.print(
            f"finished {result.finished_interrupted} message(s) an interrupted run "
            "had already sent (deleted from the DLQ, not sent again)"
        )
    if result.stopped_early:
        console.print("stopped on request; run it again to move the rest")


@app.command()
def soak(
    directory: StateDir = Path(".conveyor/soak"),
    orders: Annotated[int, typer.Option(min=1, help="Order requests to send.")] = 5000,
    images: Annotated[int, typer.Option(min=0, help="Images to upload.")] = 40,
    raise_rate: Annotated[float, typer.Option(help="Records failing as if they raised.")] = 0.05,
    crash_rate: Annotated[float, typer.Option(help="Invocations whose worker dies.")] = 0.05,
    aws_error_rate: Annotated[float, typer.Option(help="AWS calls throttled.")] = 0.02,
    duplicate_rate: Annotated[float, typer.Option(help="Messages delivered twice.")] = 0.05,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipelines.")] = 600.0,
) -> None:
    """Push orders and images through a local stack while injecting faults, then check
    that nothing accepted was lost or done twice. Exits 1 if the invariant breaks."""
    from conveyor.local.chaos import FaultPlan
    from conveyor.local.soak import run_soak

    plan = FaultPlan(
        raise_rate=raise_rate,
        crash_rate=crash_rate,
        aws_error_rate=aws_error_rate,
        duplicate_rate=duplicate_rate,
    )
    with console.status("soaking") as spinner:
        report = run_soak(
            directory, orders, images, plan, timeout_s=timeout, progress=spinner.update
        )
    table = Table(title="soak: injected and found", show_header=False)
    table.add_column()
    table.add_column(justify="right")
    for label, value in report.rows():
        table.add_row(label, value)
    console.print(table)
    if not report.ok:
        console.print(
            f"[red]invariant broken[/]: lost {report.lost[:10]}, "
            f"done twice {report.duplicated[:10]}, "
            f"images unaccounted {report.images_unaccounted[:10]}"
        )
        raise typer.Exit(1)
    console.print("[green]nothing lost, nothing done twice[/]")


@app.command()
def logs(
    directory: StateDir = Path(".conveyor"),
    function: Annotated[str | None, typer.Option(help="Only this function's log.")] = None,
    correlation_id: Annotated[
        str | None, typer.Option(help="Only entries of this correlation id (X-Request-Id).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new entries.")
    ] = False,
) -> None:
    """Every local worker's and the runtime's log, merged in time order."""
    from conveyor.local.logs import LogFollower, parsed, render

    folder = directory / "logs"
    if not folder.is_dir():
        _fail(f"no logs in {folder}; start the stack with `conveyor up`")
    follower = LogFollower(sorted(folder.glob("*.log")), from_start=True)
    while True:  # each line is read once: what a pass prints, it prints in time order
        for entry in parsed(follower.read(), function, correlation_id):
            console.print(render(entry), markup=False, highlight=False, soft_wrap=True)
        if not follow:
            return
        try:
            time.sleep(0.5)
        except KeyboardInterrupt:
            return


@app.command()
def diagram() -> None:
    """Print the architecture as a Mermaid flowchart, drawn from the topology."""
    from conveyor.diagram import mermaid

    print(mermaid(TOPOLOGY))


@app.command()
def cost(
    orders: Annotated[int, typer.Option(min=0, help="Orders a month.")] = 1_000_000,
    images: Annotated[int, typer.Option(min=0, help="Images uploaded a month.")] = 10_000,
    downloads_per_image: Annotated[
        int, typer.Option(min=0, help="Variant downloads per image through CloudFront.")
    ] = 20,
) -> None:
    """Estimate the monthly AWS bill for a volume, from measured durations and list prices."""
    from conveyor.cost import PRICES_AS_OF, Volume, estimate

    result = estimate(Volume(orders=orders, images=images, downloads_per_image=downloads_per_image))
    table = Table(title=f"monthly estimate, us-east-1 list prices as of {PRICES_AS_OF}")
    table.add_column("line")
    table.add_column("USD / month", justify="right")
    table.add_column("share", justify="right")
    for line, usd in sorted(result.lines.items(), key=lambda item: -item[1]):
        style = "bold" if line == result.dominant else ""
        table.add_row(
            f"[{style}]{line}[/]" if style else line, f"{usd:,.2f}", f"{usd / result.total:.0%}"
        )
    table.add_row("[bold]total[/]", f"[bold]{result.total:,.2f}[/]", "100%")
    console.print(table)
    console.print(
        f"{orders:,} orders and {images:,} images a month; the largest line is "
        f"[bold]{result.dominant}[/]. Durations were measured on the local runtime "
        "(bench/RESULTS.md), so compute is an upper bound."
    )


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)
