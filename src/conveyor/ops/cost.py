"""``conveyor cost``: the monthly AWS bill for a given volume and profile, line by line.

Prices are AWS list prices for us-east-1 as of ``PRICES_AS_OF`` (Lambda on arm64, no
savings plans); check them against the AWS pricing pages before relying on them. By
default no free tier is applied; ``free_tier=True`` subtracts the free tiers that every
account keeps for good (:class:`FreeTier`), never the 12-month ones a new account has
for its first year. Function durations are what the local runtime measured
(``bench/pipeline.py`` and ``bench/media.py``, numbers in bench/RESULTS.md) and include
the emulator's latency, so they are an upper bound for what Lambda would bill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from conveyor.aws.config import DEFAULT_TRACE_SAMPLE
from conveyor.core.imaging import VARIANTS
from conveyor.core.media import MODERN_FORMATS
from conveyor.topology import CANARY_FUNCTION, DEFAULT_PROFILE, TOPOLOGY, Profile, Topology

PRICES_AS_OF = "2026-11"
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Prices:
    lambda_gb_second: float = 0.0000133334
    lambda_million_requests: float = 0.20
    sqs_million_requests: float = 0.40
    sns_million_publishes: float = 0.50
    dynamodb_million_writes: float = 0.625
    dynamodb_million_reads: float = 0.125
    dynamodb_gb_month: float = 0.25
    s3_thousand_puts: float = 0.005
    s3_thousand_gets: float = 0.0004
    s3_gb_month: float = 0.023
    alb_hour: float = 0.0225
    alb_lcu_hour: float = 0.008
    endpoint_az_hour: float = 0.01
    http_api_million_requests: float = 1.00
    """The first 300 million a month; a request is metered in 512 KB increments, and
    every request here is far smaller."""
    cloudfront_gb: float = 0.085
    cloudfront_10k_requests: float = 0.01
    cloudfront_function_million: float = 0.10
    logs_gb_ingested: float = 0.50
    secret_month: float = 0.40
    secrets_10k_calls: float = 0.05
    alarm_month: float = 0.10
    dashboard_month: float = 3.00
    custom_metric_month: float = 0.30
    kms_key_month: float = 1.00
    scheduler_million_invocations: float = 1.00
    """EventBridge Scheduler, past the 14 million invocations every account gets free."""
    # Lambda SnapStart for Python: each published version's snapshot is cached while it
    # is active, and every execution environment started from it is a restore.
    snapstart_cache_gb_second: float = 0.0000015046
    snapstart_restore_gb: float = 0.0001397998


@dataclass(frozen=True)
class FreeTier:
    """What every AWS account gets each month for good, with the quantities it covers.

    Not counted: the 12-month free tiers of a new account (among them the HTTP API's
    first million calls and S3's first 5 GB), which end."""

    lambda_requests: float = 1_000_000
    lambda_gb_seconds: float = 400_000
    sqs_requests: float = 1_000_000
    sns_publishes: float = 1_000_000
    dynamodb_gb: float = 25
    cloudfront_gb: float = 1024
    cloudfront_requests: float = 10_000_000
    cloudfront_function_invocations: float = 2_000_000
    logs_gb: float = 5
    alarm_metrics: float = 10
    """Standard-resolution alarm metrics (an alarm on a sum of two metrics counts two)."""
    custom_metrics: float = 10
    dashboards: float = 3
    """Of up to 50 metrics each; the dashboard here draws fewer."""

    def describe(self) -> str:
        names = {
            "lambda_requests": "Lambda requests",
            "lambda_gb_seconds": "Lambda GB-s",
            "sqs_requests": "SQS requests",
            "sns_publishes": "SNS publishes",
            "dynamodb_gb": "GB of DynamoDB storage",
            "cloudfront_gb": "GB out of CloudFront",
            "cloudfront_requests": "CloudFront requests",
            "cloudfront_function_invocations": "CloudFront Function invocations",
            "logs_gb": "GB of CloudWatch Logs",
            "alarm_metrics": "CloudWatch alarm metrics",
            "custom_metrics": "custom metrics",
            "dashboards": "dashboards",
        }
        return ", ".join(f"{getattr(self, f.name):,.0f} {names[f.name]}" for f in fields(self))


NO_FREE_TIER = FreeTier(**{f.name: 0 for f in fields(FreeTier)})


@dataclass(frozen=True)
class Measured:
    """Milliseconds per invocation, measured through the local runtime on 2026-11-24."""

    publisher_ms: float = 13.4
    presign_ms: float = 13.4  # not measured separately: the same shape of work as publisher
    billing_batch_ms: float = 19.1
    archive_batch_ms: float = 26.7
    messages_per_batch: float = 2.5
    image_ms: float = 350.0
    """One 12 MP JPEG: 270 ms in its own format, and about 80 ms more for its AVIF and
    WebP variants (bench.formats, 2026-12-06: the 14.7 MP Volna 314 ms, then 393 ms)."""


@dataclass(frozen=True)
class Volume:
    orders: int = 1_000_000
    images: int = 10_000
    downloads_per_image: int = 20
    order_kb: float = 1.0
    image_mb: float = 3.0
    variants_kb: float = 300.0
    modern_kb: float = 465.0
    """The same variants as AVIF and WebP, stored beside them: 0.70x and 0.85x of the
    JPEG variants' bytes on real photographs (bench.formats, bench/RESULTS.md)."""
    log_kb_per_invocation: float = 1.5
    access_log_kb_per_request: float = 0.3
    """One JSON line of the HTTP API's access log (the lean profile's)."""
    cold_start_share: float = 0.005
    """Of all invocations, how many start a new execution environment (a restore, with
    SnapStart): an assumption, since AWS does not say how often it recycles them."""


PUTS_PER_IMAGE = 1 + len(VARIANTS) * (1 + len(MODERN_FORMATS))
"""The upload, and each variant in its source's format and in each modern format."""

STEADY_METRICS = 6
"""The custom metric series a working deployment sends every hour: orders accepted,
billed and archived, uploads presigned, images processed and their processing time.
Rejections and failures are series of their own only in the hours they happen."""


@dataclass(frozen=True)
class Spans:
    """What tracing sends, counted from the local stack's traces (2026-12-07, ``make
    demo``: 216 orders and 8 images, every trace kept)."""

    per_order: float = 11.0
    """The order's trace (publisher, its calls and publish, both records and their
    writes: 9 or 10 spans) and its share of the consumers' invocation spans."""
    per_image: float = 21.0
    """The upload's trace (presign and its write, the record, its claim, read, 9 to 10
    writes, result and notice: 17 or 18) and the image function's invocation and lookup."""
    kb: float = 1.0
    """One span as a structured log line in ``aws/spans`` (0.6 KB as this project's own
    JSON, before the resource attributes AWS adds)."""
    lambda_per_invocation: float = 3.0
    """Lambda's own segments with active tracing (the service's, the function's, its
    invocation), for the invocations X-Ray's sampling rules choose."""
    reservoir_per_second: float = 1.0
    fixed_rate: float = 0.05
    """X-Ray's default sampling rule, which chooses Lambda's own segments: the first
    request each second, then 5% of the rest."""


@dataclass(frozen=True)
class CanaryRun:
    """What one run of the canary does (counted from its checks; its orders and uploads
    go through the whole pipeline like anyone's)."""

    orders: int = 6
    """Orders it gets accepted (and billed, and archived)."""
    uploads: int = 2
    """Uploads it makes (the photograph, and the hostile one), and the images processed."""
    requests: int = 32
    """API requests, refused ones and status polls included."""
    downloads: int = 3
    """Variants it fetches through the media distribution."""
    seconds: float = 12.0
    """How long a run takes, waiting for the bill and the variants included: 5.2 s on the
    local runtime; assumed longer in AWS, where every call crosses the internet."""
    metrics: int = 16
    """Custom metric series: one per client check (14) and the run's two."""


@dataclass(frozen=True)
class Deployment:
    """What is deployed: the profile, and the options that change the bill."""

    profile: Profile = DEFAULT_PROFILE
    api_cdn: bool = True
    """Whether the API is behind CloudFront (always, in the private profile)."""
    snap_start: bool = False
    canary_every: int | None = None
    """Minutes between the canary's runs (``-c canary=true``); ``None``: no canary."""
    trace_sample: float = DEFAULT_TRACE_SAMPLE
    """The share of orders and uploads traced (``-c trace_sample``)."""

    @property
    def topology(self) -> Topology:
        return TOPOLOGY if self.canary_every is None else TOPOLOGY.with_canary(self.canary_every)


@dataclass
class Estimate:
    lines: dict[str, float] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    not_priced: list[str] = field(default_factory=list)
    """What the deployment pays for that the estimate leaves out, and why."""

    @property
    def total(self) -> float:
        return sum(self.lines.values())

    @property
    def dominant(self) -> str:
        return max(self.lines, key=lambda name: self.lines[name])


def _gb_seconds(invocations: float, ms: float, memory_mb: int) -> float:
    return invocations * math.ceil(ms) / 1000 * memory_mb / 1024


def snap_start_lines(
    topology: Topology, volume: Volume, invocations: float, prices: Prices
) -> dict[str, float]:
    """What ``-c snap_start=true`` adds: each function's snapshot cached all month, and a
    restore for every new execution environment, priced by the function's memory."""
    memory_gb = [f.memory_mb / 1024 for f in topology.functions]
    seconds = HOURS_PER_MONTH * 3600
    mean_gb = sum(memory_gb) / len(memory_gb)
    return {
        "SnapStart snapshot cache": sum(memory_gb) * seconds * prices.snapstart_cache_gb_second,
        "SnapStart restores": invocations
        * volume.cold_start_share
        * mean_gb
        * prices.snapstart_restore_gb,
    }


class _Allowance:
    """A free tier's quantities, used up as the lines that share them are priced."""

    def __init__(self, tier: FreeTier) -> None:
        self.left = {f.name: float(getattr(tier, f.name)) for f in fields(tier)}

    def billable(self, name: str, quantity: float) -> float:
        free = min(self.left[name], quantity)
        self.left[name] -= free
        return quantity - free


def span_gb(volume: Volume, invocations: float, share: float, spans: Spans = Spans()) -> float:
    """The spans a month brings to CloudWatch (Transaction Search keeps them as logs):
    the sampled orders' and images' own, and Lambda's segments for the invocations
    X-Ray's default rule samples."""
    ours = share * (volume.orders * spans.per_order + volume.images * spans.per_image)
    reservoir = spans.reservoir_per_second * HOURS_PER_MONTH * 3600
    sampled = min(invocations, reservoir) + spans.fixed_rate * max(0.0, invocations - reservoir)
    return (ours + sampled * spans.lambda_per_invocation) * spans.kb / 1024 / 1024


def estimate(
    volume: Volume = Volume(),
    measured: Measured = Measured(),
    prices: Prices = Prices(),
    deployment: Deployment = Deployment(),
    *,
    free_tier: bool = False,
) -> Estimate:
    tier = FreeTier() if free_tier else NO_FREE_TIER
    free = _Allowance(tier)
    topology = deployment.topology
    canary, runs = CanaryRun(), 0.0
    if deployment.canary_every is not None:
        # The canary's traffic is priced as traffic: it goes where every order goes.
        runs = HOURS_PER_MONTH * 60 / deployment.canary_every
        volume = replace(
            volume,
            orders=volume.orders + round(canary.orders * runs),
            images=volume.images + round(canary.uploads * runs),
        )
    private = deployment.profile is Profile.PRIVATE
    api_cdn = deployment.api_cdn or private
    memory = {f.name: f.memory_mb for f in topology.functions}
    batches = volume.orders / measured.messages_per_batch
    image_batches = volume.images  # images arrive one S3 event at a time
    invocations = volume.orders + 2 * batches + volume.images + image_batches
    gb_seconds = (
        _gb_seconds(volume.orders, measured.publisher_ms, memory["publisher"])
        + _gb_seconds(batches, measured.billing_batch_ms, memory["billing"])
        + _gb_seconds(batches, measured.archive_batch_ms, memory["archive"])
        + _gb_seconds(volume.images, measured.presign_ms, memory["presign"])
        + _gb_seconds(image_batches, measured.image_ms, memory["images"])
    )
    consumer_queues = sum(1 for _ in topology.sqs_triggered())
    # Lambda keeps polling each SQS source even when idle: five pollers (with a maximum
    # concurrency set, Lambda does not drop to two), each a 20 s long poll, so roughly
    # 3 calls a minute each.
    idle_polls = consumer_queues * 5 * 3 * 60 * HOURS_PER_MONTH
    per_batch_calls = 2 * (2 * batches + image_batches)  # a receive and a batch delete
    interface_endpoints = 4
    total_requests = volume.orders + volume.images
    if runs:
        total_requests += round((canary.requests - canary.orders - canary.uploads) * runs)
    lcu = max(total_requests / (HOURS_PER_MONTH * 3600) / 25, 0.0)  # new connections per s
    downloads = volume.images * volume.downloads_per_image
    secret_calls = invocations / 1000  # cached for 5 minutes in each warm environment
    api_requests = total_requests if api_cdn else 0
    alarms = alarm_count(topology)
    # Alarms are billed by the metrics they watch: the load balancer's 5XX alarm sums its
    # own 5XX and its targets'; the HTTP API counts both in one metric.
    alarm_metrics = alarms + (1 if private else 0)
    log_gb = invocations * volume.log_kb_per_invocation / 1024 / 1024
    if not private:
        log_gb += total_requests * volume.access_log_kb_per_request / 1024 / 1024
    metrics = (STEADY_METRICS if total_requests else 0) + (canary.metrics if runs else 0)
    extra = snap_start_lines(topology, volume, invocations, prices) if deployment.snap_start else {}
    edge: dict[str, float] = (
        {
            "ALB hours and LCUs": HOURS_PER_MONTH * (prices.alb_hour + lcu * prices.alb_lcu_hour),
            "VPC interface endpoints (4 x 2 AZs)": interface_endpoints
            * 2
            * HOURS_PER_MONTH
            * prices.endpoint_az_hour,
        }
        if private
        else {
            "API Gateway HTTP API requests": total_requests
            / 1e6
            * prices.http_api_million_requests,
        }
    )
    if api_cdn:
        # Every API call is an HTTPS request at the edge (the VPC origin costs nothing
        # more); presign's is one per image. Answers are under 1 KB.
        edge["CloudFront (API requests)"] = (
            free.billable("cloudfront_requests", api_requests)
            / 10_000
            * prices.cloudfront_10k_requests
            + free.billable("cloudfront_gb", api_requests / 1024 / 1024) * prices.cloudfront_gb
        )
    lines = {
        **extra,
        "Lambda compute (GB-s)": free.billable("lambda_gb_seconds", gb_seconds)
        * prices.lambda_gb_second,
        "Lambda requests": free.billable("lambda_requests", invocations)
        / 1e6
        * prices.lambda_million_requests,
        "SQS requests (batches and idle polling)": free.billable(
            "sqs_requests", per_batch_calls + idle_polls
        )
        / 1e6
        * prices.sqs_million_requests,
        "SNS publishes": free.billable("sns_publishes", volume.orders + volume.images)
        / 1e6
        * prices.sns_million_publishes,
        # An order: its idempotency record (written, then completed), its accepted
        # record and its bill; an image: presign's record and the claim-to-result ones.
        "DynamoDB on-demand writes and storage": (volume.orders * 4 + volume.images * 7)
        / 1e6
        * prices.dynamodb_million_writes
        + free.billable("dynamodb_gb", volume.orders * volume.order_kb / 1024 / 1024)
        * prices.dynamodb_gb_month,
        "S3 requests (archive, uploads, variants)": (volume.orders + PUTS_PER_IMAGE * volume.images)
        / 1000
        * prices.s3_thousand_puts
        # The image function reads each upload twice: its metadata (the trace it
        # continues), then its content.
        + 2 * volume.images / 1000 * prices.s3_thousand_gets,
        "S3 storage (one month's objects)": (
            volume.orders * volume.order_kb / 1024 / 1024
            + volume.images * volume.image_mb / 1024 * 7 / 30
            + volume.images * (volume.variants_kb + volume.modern_kb) / 1024 / 1024
        )
        * prices.s3_gb_month,
        **edge,
        "CloudFront (variant downloads)": free.billable(
            "cloudfront_gb", downloads * volume.variants_kb / 3 / 1024 / 1024
        )
        * prices.cloudfront_gb
        + free.billable("cloudfront_requests", downloads + canary.downloads * runs)
        / 10_000
        * prices.cloudfront_10k_requests,
        # One on the viewer's request (negotiation), one on the response (Vary).
        "CloudFront Functions (format negotiation)": free.billable(
            "cloudfront_function_invocations", 2 * (downloads + canary.downloads * runs)
        )
        / 1e6
        * prices.cloudfront_function_million,
        "CloudWatch Logs ingestion": free.billable("logs_gb", log_gb) * prices.logs_gb_ingested,
        f"Traces ({deployment.trace_sample:.0%} sampled, spans kept as logs)": free.billable(
            "logs_gb", span_gb(volume, invocations, deployment.trace_sample)
        )
        * prices.logs_gb_ingested,
        "Secrets Manager": prices.secret_month + secret_calls / 10_000 * prices.secrets_10k_calls,
        f"CloudWatch alarms ({alarms}, on {alarm_metrics} metrics)": free.billable(
            "alarm_metrics", alarm_metrics
        )
        * prices.alarm_month,
        "CloudWatch dashboard": free.billable("dashboards", 1) * prices.dashboard_month,
        f"CloudWatch custom metrics ({metrics} series)": free.billable("custom_metrics", metrics)
        * prices.custom_metric_month,
        # The alarm topic's key; an alarm's few KMS requests stay in the free tier.
        "KMS key (alarm topic)": prices.kms_key_month,
    }
    if runs:
        gb_s = _gb_seconds(runs, canary.seconds * 1000, memory[CANARY_FUNCTION])
        lines["Canary runs (Lambda and EventBridge Scheduler)"] = (
            free.billable("lambda_gb_seconds", gb_s) * prices.lambda_gb_second
            + free.billable("lambda_requests", runs) / 1e6 * prices.lambda_million_requests
            + runs / 1e6 * prices.scheduler_million_invocations
        )
    return Estimate(
        lines=lines,
        assumptions=assumptions(deployment, tier if free_tier else None, canary),
        # Only the private profile has a VPC, and what it costs beyond the endpoints.
        not_priced=[
            reason
            for kind, reason in NOT_PRICED.items()
            if private or not kind.startswith("AWS::EC2::")
        ],
    )


def assumptions(
    deployment: Deployment, tier: FreeTier | None, canary: CanaryRun = CanaryRun()
) -> list[str]:
    """What the estimate takes for granted, printed with it."""
    said = [
        f"profile {deployment.profile}"
        + (
            ""
            if deployment.profile is Profile.PRIVATE
            else (
                ", the API behind CloudFront"
                if deployment.api_cdn
                else ", the API at its execute-api URL (no CloudFront)"
            )
        ),
        "list prices for us-east-1; Lambda on arm64; no savings plans",
    ]
    if deployment.profile is Profile.LEAN:
        said.append("the HTTP API at $1.00 per million requests (the first 300 million)")
    spans = Spans()
    said.append(
        f"traces: {deployment.trace_sample:.0%} of orders and uploads (-c trace_sample), "
        f"{spans.per_order:g} spans an order and {spans.per_image:g} an image, "
        f"{spans.kb:g} KB each; Lambda's own {spans.lambda_per_invocation:g} segments per "
        "invocation X-Ray's default rule samples (1 a second, then 5%); all kept as logs "
        "at the CloudWatch Logs ingestion price (Transaction Search, 1% indexed free)"
    )
    if deployment.canary_every is not None:
        said.append(
            f"the canary every {deployment.canary_every} min: a run {canary.seconds:g} s, "
            f"{canary.orders} orders, {canary.uploads} uploads and {canary.requests} API "
            f"requests, priced with the traffic; {canary.metrics} metric series of its own"
        )
    if tier is None:
        said.append("no free tier (--free-tier subtracts the ones every account keeps)")
    else:
        said.append(f"the free tiers every account keeps, each month: {tier.describe()}")
        said.append("not the 12-month free tiers of a new account (HTTP API, S3, ...)")
    return said


def alarm_count(topology: Topology) -> int:
    """The alarms the observability construct makes: errors and throttles per function,
    age, depth and DLQ depth per deployed queue, the API edge's 5XX (the load balancer's
    or the HTTP API's), and a scheduled canary's failed checks and missing runs (a test
    holds this against the synthesized templates)."""
    queues = [q for q in topology.queues if not q.local_only]
    scheduled = sum(1 for _ in topology.scheduled())
    return 2 * len(topology.functions) + 3 * len(queues) + 1 + 2 * scheduled


PRICED_ELSEWHERE: dict[str, tuple[str, ...]] = {
    "AWS::Lambda::Function": ("Lambda compute", "Lambda requests"),
    "AWS::Logs::LogGroup": ("CloudWatch Logs ingestion",),
    "AWS::DynamoDB::Table": ("DynamoDB on-demand writes and storage",),
    "AWS::S3::Bucket": ("S3 requests", "S3 storage"),
    "AWS::SNS::Topic": ("SNS publishes",),
    "AWS::SQS::Queue": ("SQS requests",),
    "AWS::SecretsManager::Secret": ("Secrets Manager",),
    # The S3 and DynamoDB gateway endpoints are free.
    "AWS::EC2::VPCEndpoint": ("VPC interface endpoints",),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ("ALB hours and LCUs",),
    "AWS::ApiGatewayV2::Api": ("API Gateway HTTP API requests",),
    "AWS::CloudFront::Distribution": ("CloudFront",),
    "AWS::CloudWatch::Alarm": ("CloudWatch alarms",),
    "AWS::CloudWatch::Dashboard": ("CloudWatch dashboard",),
    "AWS::KMS::Key": ("KMS key (alarm topic)",),
    "AWS::CloudFront::Function": ("CloudFront Functions",),
    "AWS::Scheduler::Schedule": ("Canary runs",),
}
"""Every resource type in the templates that costs money, and the start of each estimate
line that prices it."""

NO_CHARGE = frozenset(
    {
        "AWS::ApiGatewayV2::Integration",
        "AWS::ApiGatewayV2::Route",
        "AWS::ApiGatewayV2::Stage",
        "AWS::CloudFront::OriginAccessControl",
        "AWS::CloudFront::ResponseHeadersPolicy",
        "AWS::CloudFront::VpcOrigin",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::Route",
        "AWS::EC2::RouteTable",
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::Subnet",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::VPC",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::ElasticLoadBalancingV2::Listener",
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Lambda::LayerVersion",
        "AWS::Lambda::Permission",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::Subscription",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
        "Custom::AWS",
        "Custom::S3BucketNotifications",
    }
)
"""Resource types with no charge of their own (custom resources run once per deploy)."""

NOT_PRICED = {
    "AWS::EC2::FlowLog": (
        "VPC flow logs: delivered to CloudWatch Logs at about $0.50 per GB, which depends "
        "on traffic this estimate does not model"
    ),
}
"""Resource types that cost money but are left out of the estimate, and why."""
