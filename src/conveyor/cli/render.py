"""Everything the CLI shows, in one place: Rich tables, panels and progress bars built
from the values that the local runtime and the operator tools return."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conveyor.local.demo import OrdersDemo
from conveyor.local.edges import EDGES
from conveyor.local.runtime import Started
from conveyor.local.soak import SoakReport
from conveyor.local.status import Status
from conveyor.ops.cost import Estimate
from conveyor.ops.redrive import DeadLetter
from conveyor.ops.traces import Waterfall
from conveyor.ops.uploads import Batch
from conveyor.topology import Profile
from conveyor.verify.checks import Outcome, Result

console = Console()


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def functions_python(started: Started) -> str:
    said = escape(started.interpreter.describe())
    return said if started.interpreter.deployed else f"[yellow]{said}[/]"


def profile_line(profile: Profile) -> str:
    """Which deploy profile a local stack stands in for, and whose events it sends."""
    return f"{profile}: {EDGES[profile].name} events"


def started_panel(started: Started, seconds: float) -> Panel:
    info = started.info
    return Panel.fit(
        f"[bold]gateway[/]      {info.gateway_url}  (POST /orders, POST /uploads)\n"
        f"[bold]profile[/]      {profile_line(started.profile)}\n"
        f"[bold]media[/]        {info.media_url}/media/processed/...\n"
        f"[bold]console[/]      {info.gateway_url}/console\n"
        f"[bold]client id[/]    {started.credentials.client_id}\n"
        f"[bold]secret in[/]    {started.credentials_path}\n"
        f"[bold]emulator[/]     {info.emulator_url}\n"
        f"[bold]state[/]        {escape(started.restored)}\n"
        f"[bold]functions[/]    {functions_python(started)}\n"
        f"[bold]logs[/]         {started.logs_dir}/",
        title=f"conveyor is up in {seconds:.1f}s",
    )


def status_table(status: Status) -> Table:
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


def status_counts(status: Status) -> str:
    return (
        f"orders billed: [bold]{status.billed}[/]   archived: [bold]{status.archived}[/]   "
        f"images processed: [bold]{status.images_processed}[/]   "
        f"failed: [bold]{status.images_failed}[/]"
    )


def functions_table(functions: dict[str, dict[str, Any]]) -> Table:
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


def metrics_table(series: list[dict[str, Any]]) -> Table:
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


def images_table(batch: Batch) -> Table:
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
            outcome.upload.filename,
            original,
            variants,
            status,
            "-" if seconds is None else f"{seconds:.2f} s",
        )
    for error in batch.refused:
        table.add_row(error.filename, "-", "-", f"[red]refused[/]: {error.status}", "-")
    return table


def print_request_ids(batch: Batch) -> None:
    """Whole, on lines of their own: a table column would cut them short."""
    if batch.outcomes:
        console.print(
            "request ids and traces, for `conveyor logs --correlation-id` and `conveyor trace`:"
        )
    for outcome in batch.outcomes:
        upload = outcome.upload
        console.print(
            f"  {upload.filename}: {upload.request_id} · trace {upload.trace_id or '-'}",
            soft_wrap=True,
        )


def print_download_links(batch: Batch) -> None:
    done = [o for o in batch.outcomes if (o.item or {}).get("variants")]
    if not done:
        return
    console.print(
        "download the large variants here (medium/ and thumb/ sit beside large/); each URL "
        "serves the best stored format the client accepts:"
    )
    for outcome in done:
        large = outcome.item["variants"]["large"] if outcome.item else {}
        console.print(f"  {outcome.upload.filename}: {large.get('url', '')}", soft_wrap=True)
        console.print(f"    stored as {formats_said(large.get('formats', []))}", soft_wrap=True)


def formats_said(formats: list[dict[str, Any]]) -> str:
    """``jpeg 44.5 KB, avif 30.6 KB, webp 33.8 KB``: each stored format and its size."""
    return ", ".join(
        f"{str(f.get('type') or '?').removeprefix('image/')} {int(f['bytes']) / 1000:.1f} KB"
        for f in formats
    )


def demo_summary(demo: OrdersDemo) -> Table:
    summary = Table(title="demo summary", show_header=False)
    summary.add_column(justify="left")
    summary.add_column(justify="right")
    summary.add_row("requests sent", str(demo.sent))
    summary.add_row("accepted (202)", str(demo.accepted))
    for reason, count in sorted(demo.report.rejected.items()):
        summary.add_row(f"rejected: {reason}", str(count))
    summary.add_row("billed", str(demo.status.billed))
    summary.add_row("archived", str(demo.status.archived))
    summary.add_row("in a DLQ", str(demo.status.dead_letters))
    summary.add_row("elapsed", f"{demo.elapsed_s:.1f} s")
    summary.add_row(
        "accepted orders / s (POST to billed and archived)",
        f"{demo.accepted / demo.elapsed_s:.0f}",
    )
    return summary


def dead_letters_table(dlq: str, letters: list[DeadLetter]) -> Table:
    table = Table(
        title=f"{dlq}: {len(letters)} message(s)",
        caption="receives: as before this listing; SQS counts every listing as a receive",
    )
    # Ids are 36 characters: shown whole on one line, the error folds instead.
    table.add_column("message id", no_wrap=True, min_width=36)
    for column in ("receives", "sent", "what", "last error"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            letter.message_id,
            str(letter.receive_count),
            f"{letter.sent_at:%H:%M:%S}",
            letter.subject,
            letter.reason,
        )
    return table


def soak_table(report: SoakReport) -> Table:
    table = Table(title="soak: injected and found", show_header=False)
    table.add_column()
    table.add_column(justify="right")
    for label, value in report.rows():
        table.add_row(label, value)
    return table


def cost_table(result: Estimate, prices_as_of: str) -> Table:
    table = Table(title=f"monthly estimate, us-east-1 list prices as of {prices_as_of}")
    table.add_column("line")
    table.add_column("USD / month", justify="right")
    table.add_column("share", justify="right")
    for line, usd in sorted(result.lines.items(), key=lambda item: -item[1]):
        style = "bold" if line == result.dominant else ""
        table.add_row(
            f"[{style}]{line}[/]" if style else line, f"{usd:,.2f}", f"{usd / result.total:.0%}"
        )
    table.add_row("[bold]total[/]", f"[bold]{result.total:,.2f}[/]", "100%")
    return table


OUTCOME_STYLE = {Outcome.PASS: "green", Outcome.FAIL: "bold red", Outcome.SKIP: "yellow"}


def print_check(result: Result) -> None:
    """One check's line, as it finishes."""
    style = OUTCOME_STYLE[result.outcome]
    console.print(
        f"[{style}]{result.outcome.value:4}[/] {result.name} ({result.seconds:.1f} s): "
        f"{escape(result.detail)}"
    )


def verify_table(found: list[Result]) -> Table:
    table = Table(title="conveyor verify")
    table.add_column("check")
    table.add_column("result")
    table.add_column("what was seen")
    table.add_column("s", justify="right")
    for result in found:
        style = OUTCOME_STYLE[result.outcome]
        table.add_row(
            result.name,
            f"[{style}]{result.outcome.value}[/]",
            escape(result.detail),
            f"{result.seconds:.1f}",
        )
    counted = {o: sum(1 for r in found if r.outcome is o) for o in Outcome}
    table.caption = (
        ", ".join(f"{n} {o.value}" for o, n in counted.items())
        + "; each check's evidence (status codes, request ids, timings): --json or --junit"
    )
    return table


WATERFALL_WIDTH = 32
_OUTCOME_STYLE = {
    "processed": "green",
    "failed": "red",
    "throttled": "yellow",
    "quarantined": "magenta",
}


def waterfall(trace: Waterfall) -> Table:
    """A trace's hops, each with a bar placed where it ran in the whole trace."""
    total = max(trace.duration_ms, 0.001)
    table = Table(
        title=f"trace {trace.trace_id}: {trace.duration_ms:.0f} ms through "
        f"{', '.join(trace.services)}"
        + (
            f", {trace.retries} {'retry' if trace.retries == 1 else 'retries'}"
            if trace.retries
            else ""
        ),
        title_justify="left",
    )
    for column in ("hop", "function", "start", "took", "waited in queue", "attempt", "outcome"):
        table.add_column(column, justify="right" if column in ("start", "took") else "left")
    table.add_column("")
    for hop in trace.hops:
        offset = int(hop.start_ms / total * WATERFALL_WIDTH)
        length = max(1, round(hop.duration_ms / total * WATERFALL_WIDTH))
        style = "red" if hop.error else _OUTCOME_STYLE.get(hop.outcome or "", "cyan")
        table.add_row(
            "  " * hop.depth + escape(hop.name),
            escape(hop.service),
            f"+{hop.start_ms:.0f} ms",
            f"{hop.duration_ms:.1f} ms",
            f"{hop.waited_ms:.0f} ms" if hop.waited_ms is not None else "",
            str(hop.attempt) if hop.attempt is not None else "",
            f"[{style}]{hop.outcome}[/]" if hop.outcome else "",
            " " * offset + f"[{style}]{'█' * min(length, WATERFALL_WIDTH - offset)}[/]",
        )
    return table
