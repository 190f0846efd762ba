"""Where and how to deploy, from the environment and CDK context; no lookups.

Synthesis never calls AWS: the region and availability zones are given, not looked up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.aws.config import DEFAULT_TRACE_SAMPLE, sampling_environment
from conveyor.topology import CANARY_EVERY_MINUTES, DEFAULT_PROFILE, Profile, Topology

if TYPE_CHECKING:
    from aws_cdk import App

DEFAULT_REGION = "us-east-1"
PROJECT_ROOT = Path(__file__).resolve().parents[3]
LAYERS_DIR = PROJECT_ROOT / "build" / "layers"
FUNCTION_CODE_DIR = PROJECT_ROOT / "build" / "function-code"
SOURCE_DIR = Path(__file__).resolve().parents[2]
LAYERS = ("powertools", "imaging", "telemetry")


@dataclass(frozen=True)
class Settings:
    region: str
    account: str | None
    availability_zones: tuple[str, str]
    certificate_arn: str | None
    """With ``domain_name``: an ACM certificate (in us-east-1) for the API's own domain."""
    layers_dir: Path
    alarm_email: str | None
    domain_name: str | None = None
    """The API's own domain; by default it answers at its CloudFront domain."""
    snap_start: bool = False
    """Lambda SnapStart (``-c snap_start=true``): each function publishes a version on
    every deploy, behind the alias ``live`` that the load balancer and the event source
    mappings invoke, and new execution environments restore from its snapshot. Off by
    default: it adds a cache charge and a charge per restore."""
    reserve_concurrency: bool = True
    """Give each function the reserved concurrency the topology declares. An account
    keeps 100 executions unreserved, so this needs a concurrency quota of at least
    100 plus their sum; ``-c reserve_concurrency=false`` deploys without."""
    profile: Profile = DEFAULT_PROFILE
    """Where the edges are (``-c profile=private|lean``): the functions in a VPC behind a
    load balancer, or outside any VPC behind an HTTP API."""
    api_cdn: bool = True
    """Whether the API is reached through CloudFront. Only the lean profile can do without
    (``-c api_cdn=false``): its HTTP API has an HTTPS URL of its own, while the private
    profile's load balancer has no address outside the VPC."""
    trace_sample: float = DEFAULT_TRACE_SAMPLE
    """The share of traces kept (``-c trace_sample=0.2``), decided where a trace starts."""
    canary_every: int | None = None
    """Minutes between the canary's runs (``-c canary=true``, ``-c canary_every=N``);
    ``None``: no canary."""

    @classmethod
    def from_app(cls, app: App, layers_dir: Path = LAYERS_DIR) -> Settings:
        def context(name: str) -> str | None:
            value = app.node.try_get_context(name)
            return str(value) if value else None

        region = (
            context("region")
            or os.environ.get("CDK_DEFAULT_REGION")
            or os.environ.get("AWS_REGION")
            or DEFAULT_REGION
        )
        zones = (context("availability_zones") or f"{region}a,{region}b").split(",")
        if bool(context("domain_name")) != bool(context("certificate_arn")):
            raise ValueError(
                "domain_name and certificate_arn go together: the API's own domain and an "
                "ACM certificate for it in us-east-1 (CloudFront's region for certificates)"
            )
        if len(zones) != 2:
            raise ValueError("availability_zones must name exactly two zones, comma-separated")
        profile_name = context("profile") or DEFAULT_PROFILE.value
        if profile_name not in set(Profile):
            raise ValueError(f"profile must be one of {', '.join(Profile)}, not {profile_name!r}")
        profile = Profile(profile_name)
        api_cdn = (context("api_cdn") or "true").lower() != "false"
        if not api_cdn and profile is not Profile.LEAN:
            raise ValueError(
                "api_cdn=false needs profile=lean: the private profile's load balancer is "
                "internal, and CloudFront is its only way in"
            )
        if not api_cdn and context("domain_name"):
            raise ValueError(
                "domain_name is served by the API's CloudFront distribution; with "
                "api_cdn=false there is none"
            )
        canary = (context("canary") or "false").lower() == "true"
        every = context("canary_every")
        if every and not canary:
            raise ValueError("canary_every sets the canary's interval: add -c canary=true")
        if every and not every.isdigit():
            raise ValueError(f"canary_every is a whole number of minutes, not {every!r}")
        sample = context("trace_sample") or str(DEFAULT_TRACE_SAMPLE)
        try:
            trace_sample = float(sample)
            sampling_environment(trace_sample)
        except ValueError:
            raise ValueError(
                f"trace_sample is a share of traces from 0 to 1, not {sample!r}"
            ) from None
        return cls(
            trace_sample=trace_sample,
            canary_every=int(every or CANARY_EVERY_MINUTES) if canary else None,
            region=region,
            account=context("account") or os.environ.get("CDK_DEFAULT_ACCOUNT"),
            availability_zones=(zones[0].strip(), zones[1].strip()),
            certificate_arn=context("certificate_arn"),
            domain_name=context("domain_name"),
            layers_dir=layers_dir,
            alarm_email=context("alarm_email"),
            reserve_concurrency=(context("reserve_concurrency") or "true").lower() != "false",
            snap_start=(context("snap_start") or "false").lower() == "true",
            profile=profile,
            api_cdn=api_cdn,
        )

    def topology(self, declared: Topology) -> Topology:
        """What this deployment runs: the declared topology, with the canary if asked."""
        return declared if self.canary_every is None else declared.with_canary(self.canary_every)

    def layer_dir(self, name: str) -> Path:
        """The built layer, or an empty stand-in so that synthesis works before
        ``make build`` (``make deploy`` always builds first)."""
        path = self.layers_dir / name
        if not (path / "python").is_dir():
            (path / "python").mkdir(parents=True, exist_ok=True)
            (path / "python" / "NOT_BUILT").write_text("run `make build` before deploying\\n")
        return path
