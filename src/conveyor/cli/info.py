"""Commands that need no running stack: ``cost`` and ``diagram``."""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor.aws.config import DEFAULT_TRACE_SAMPLE
from conveyor.cli import render
from conveyor.cli.app import app, fail
from conveyor.cli.render import console
from conveyor.topology import CANARY_EVERY_MINUTES, DEFAULT_PROFILE, TOPOLOGY, Profile


@app.command()
def diagram() -> None:
    """Print the architecture as a Mermaid flowchart, drawn from the topology, fenced so
    that Markdown renders it."""
    from conveyor.ops.diagram import mermaid

    print(f"```mermaid\n{mermaid(TOPOLOGY)}\n```")


@app.command()
def cost(
    orders: Annotated[int, typer.Option(min=0, help="Orders a month.")] = 1_000_000,
    images: Annotated[int, typer.Option(min=0, help="Images uploaded a month.")] = 10_000,
    downloads_per_image: Annotated[
        int, typer.Option(min=0, help="Variant downloads per image through CloudFront.")
    ] = 20,
    profile: Annotated[
        Profile,
        typer.Option(
            "--profile",
            help="The deploy profile to price: private (VPC endpoints, load balancer) or "
            "lean (no VPC, HTTP API).",
        ),
    ] = DEFAULT_PROFILE,
    api_cdn: Annotated[
        bool,
        typer.Option(
            "--api-cdn/--no-api-cdn",
            help="Whether the API is behind CloudFront; lean only (-c api_cdn=false).",
        ),
    ] = True,
    free_tier: Annotated[
        bool,
        typer.Option(
            "--free-tier",
            help="Subtract the free tiers every account keeps (Lambda, SQS, SNS, "
            "CloudWatch, CloudFront, ...); never the 12-month ones of a new account.",
        ),
    ] = False,
    snap_start: Annotated[
        bool,
        typer.Option(
            "--snap-start",
            help="Price a deployment with -c snap_start=true: the snapshots' cache, and a "
            "restore for each new execution environment.",
        ),
    ] = False,
    cold_start_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of invocations that start a new execution environment (an "
            "assumption; it prices the SnapStart restores).",
        ),
    ] = 0.005,
    canary: Annotated[
        bool,
        typer.Option(
            "--canary",
            help="Price a deployment with -c canary=true: its runs, its traffic through "
            "the pipeline, its metrics and alarms.",
        ),
    ] = False,
    canary_every: Annotated[
        int, typer.Option(min=1, max=1440, help="Minutes between the canary's runs.")
    ] = CANARY_EVERY_MINUTES,
    trace_sample: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of orders and uploads traced (-c trace_sample); the spans are "
            "priced as the logs CloudWatch keeps them as.",
        ),
    ] = DEFAULT_TRACE_SAMPLE,
) -> None:
    """Estimate the monthly AWS bill for a volume and profile, from measured durations and
    list prices; every assumption is printed with it."""
    from conveyor.ops.cost import PRICES_AS_OF, Deployment, Volume, estimate

    if not api_cdn and profile is not Profile.LEAN:
        fail(
            "--no-api-cdn needs --profile lean: the private API is reached only through CloudFront"
        )
    volume = Volume(
        orders=orders,
        images=images,
        downloads_per_image=downloads_per_image,
        cold_start_share=cold_start_share,
    )
    deployment = Deployment(
        profile=profile,
        api_cdn=api_cdn,
        snap_start=snap_start,
        canary_every=canary_every if canary else None,
        trace_sample=trace_sample,
    )
    result = estimate(volume, deployment=deployment, free_tier=free_tier)
    console.print(render.cost_table(result, PRICES_AS_OF))
    for assumption in result.assumptions:
        console.print(f"assumed: {assumption}")
    for reason in result.not_priced:
        console.print(f"not priced: {reason}")
    console.print(
        f"{orders:,} orders and {images:,} images a month; the largest line is "
        f"[bold]{result.dominant}[/]. Durations were measured on the local runtime "
        "(bench/RESULTS.md), so compute is an upper bound."
    )
