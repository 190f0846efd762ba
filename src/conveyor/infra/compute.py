"""One Lambda function per topology entry, each with its own role granted exactly the
topology's permissions, with SQS event sources as declared: in the isolated subnets in the
private profile, outside any VPC (and with no VPC permission at all) in the lean one.

Powertools (with pydantic) and Pillow are layers built by ``make build`` for the Lambda
platform without Docker; the function code is the include list in
:mod:`conveyor.infra.package`.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from conveyor.aws.config import API_URL, MEDIA_BASE_URL, sampling_environment
from conveyor.infra.data import NAME_TAG, Data
from conveyor.infra.messaging import Messaging
from conveyor.infra.network import NetworkStack
from conveyor.infra.package import function_code_dir
from conveyor.infra.settings import LAYERS, Settings
from conveyor.topology import (
    LAMBDA_PYTHON,
    Function,
    Grant,
    Kind,
    Schedule,
    SqsTrigger,
    Topology,
)

RUNTIME = {"3.12": lambda_.Runtime.PYTHON_3_12}[LAMBDA_PYTHON]
ARCHITECTURE = lambda_.Architecture.ARM_64
LIVE_ALIAS = "live"
IMAGING_FUNCTIONS = {"images"}
"""Functions that need the Pillow layer."""
ENI_MANAGEMENT = "service-role/AWSLambdaENIManagementAccess"
"""What a function in a VPC needs for Lambda to manage its network interfaces."""


def _placement(network: NetworkStack | None) -> dict[str, Any]:
    """In the private profile, the isolated subnets and the functions' security group;
    in the lean one, no VPC at all."""
    if network is None:
        return {}
    return {
        "vpc": network.vpc,
        "vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        "security_groups": [network.functions_sg],
    }


def grant_resources(grant: Grant, data: Data, messaging: Messaging) -> list[str]:
    """The ARNs a grant names: the resource, narrowed by its scope where IAM allows."""
    match grant.kind:
        case Kind.TOPIC:
            return [messaging.topics[grant.resource].topic_arn]
        case Kind.QUEUE:
            return [messaging.queues[grant.resource].queue_arn]
        case Kind.TABLE:
            return [data.tables[grant.resource].table_arn]
        case Kind.BUCKET:
            bucket = data.buckets[grant.resource]
            return [bucket.arn_for_objects(grant.scope) if grant.scope else bucket.bucket_arn]
        case Kind.SECRET:
            return [data.secrets[grant.resource].secret_arn]


def grant_identifier(grant: Grant, data: Data, messaging: Messaging) -> str:
    """What the function's environment variable holds for a grant's resource."""
    match grant.kind:
        case Kind.TOPIC:
            return messaging.topics[grant.resource].topic_arn
        case Kind.QUEUE:
            return messaging.queues[grant.resource].queue_url
        case Kind.TABLE:
            return data.tables[grant.resource].table_name
        case Kind.BUCKET:
            return data.buckets[grant.resource].bucket_name
        case Kind.SECRET:
            return data.secrets[grant.resource].secret_arn


class Compute(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topology: Topology,
        settings: Settings,
        network: NetworkStack | None,
        data: Data,
        messaging: Messaging,
        media_url: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.media_url = media_url
        self.reserve_concurrency = settings.reserve_concurrency
        self.layers = {
            name: lambda_.LayerVersion(
                self,
                f"Layer-{name}",
                code=lambda_.Code.from_asset(str(settings.layer_dir(name))),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description=f"conveyor {name} dependencies, built by `make build`",
            )
            for name in LAYERS
        }
        self.code = lambda_.Code.from_asset(str(function_code_dir()))
        self.snap_start = settings.snap_start
        self.trace_sample = settings.trace_sample
        self.functions: dict[str, lambda_.Function] = {}
        self.targets: dict[str, lambda_.IFunction] = {}
        """What invokes each function: the alias ``live`` with SnapStart, else itself."""
        self.roles: dict[str, iam.Role] = {}
        for function in topology.functions:
            self._function(function, topology, network, data, messaging)

    def _function(
        self,
        function: Function,
        topology: Topology,
        network: NetworkStack | None,
        data: Data,
        messaging: Messaging,
    ) -> None:
        if function.outside_vpc:
            network = None
        role = iam.Role(
            self,
            f"Role-{function.name}",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"conveyor {function.name}: exactly what conveyor.topology grants",
            # In a VPC, Lambda manages the function's network interfaces with its role.
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(ENI_MANAGEMENT)]
            if network
            else None,
        )
        log_group = logs.LogGroup(
            self,
            f"Logs-{function.name}",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        log_group.grant_write(role)
        for grant in topology.permissions(function):
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(grant.actions),
                    resources=grant_resources(grant, data, messaging),
                )
            )
        environment = {
            "POWERTOOLS_SERVICE_NAME": function.name,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            **topology.settings(function),
            **sampling_environment(self.trace_sample),
        }
        for grant in function.grants:
            if grant.env:
                environment[grant.env] = grant_identifier(grant, data, messaging)
        if function.media_url:
            environment[MEDIA_BASE_URL] = self.media_url
        layers = [self.layers["powertools"], self.layers["telemetry"]]
        if function.name in IMAGING_FUNCTIONS:
            layers.append(self.layers["imaging"])
        module, attribute = function.handler.split(":")
        resource = lambda_.Function(
            self,
            f"Function-{function.name}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"{module}.{attribute}",
            code=self.code,
            layers=layers,
            memory_size=function.memory_mb,
            timeout=Duration.seconds(function.timeout_s),
            reserved_concurrent_executions=(
                function.reserved_concurrency if self.reserve_concurrency else None
            ),
            role=role,
            log_group=log_group,
            environment=environment,
            **_placement(network),
            # Active tracing runs the X-Ray daemon the functions' spans go to (see
            # conveyor.aws.xray_udp), and lets the role write to X-Ray.
            tracing=lambda_.Tracing.ACTIVE,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if self.snap_start else None,
        )
        target: lambda_.IFunction = resource
        if self.snap_start:
            # A snapshot exists only for a published version; invoking $LATEST would
            # start from scratch every time.
            target = lambda_.Alias(
                self,
                f"Live-{function.name}",
                alias_name=LIVE_ALIAS,
                version=resource.current_version,
            )
        if isinstance(function.trigger, SqsTrigger):
            trigger = function.trigger
            lambda_.EventSourceMapping(
                self,
                f"Trigger-{function.name}",
                target=target,
                event_source_arn=messaging.queues[trigger.queue].queue_arn,
                batch_size=trigger.batch_size,
                max_batching_window=Duration.seconds(trigger.batching_window_s)
                if trigger.batching_window_s
                else None,
                report_batch_item_failures=trigger.report_batch_item_failures,
                max_concurrency=trigger.max_concurrency,
            )
        if isinstance(function.trigger, Schedule):
            self._schedule(function.name, function.trigger, target)
        Tags.of(resource).add(NAME_TAG, function.name)
        Tags.of(role).add(NAME_TAG, function.name)
        self.functions[function.name] = resource
        self.targets[function.name] = target
        self.roles[function.name] = role

    def _schedule(self, name: str, schedule: Schedule, target: lambda_.IFunction) -> None:
        """EventBridge Scheduler invokes the function at the schedule's rate, with the
        run's scheduled time and execution id (the local runtime sends the same), with a
        role that may invoke that function and nothing else (CDK's default role would
        also allow every version of it)."""
        role = iam.Role(
            self,
            f"ScheduleRole-{name}",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description=f"conveyor: EventBridge Scheduler invokes {name}",
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[target.function_arn])
        )
        # The L1 resource: the L2 target adds its own grant on every version (":*").
        scheduler.CfnSchedule(
            self,
            f"Schedule-{name}",
            description=f"conveyor {name}, {schedule.expression}",
            schedule_expression=schedule.expression,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=target.function_arn,
                role_arn=role.role_arn,
                input=json.dumps(
                    {
                        "scheduled_at": "<aws.scheduler.scheduled-time>",
                        "execution_id": "<aws.scheduler.execution-id>",
                    }
                ),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=0  # the next run is the retry
                ),
            ),
        )

    def tell_api_url(self, topology: Topology, url: str) -> None:
        """Give the functions that call the API (``api_url``) its URL, known only once
        the edge in front of the other functions exists."""
        for function in topology.functions:
            if function.api_url:
                self.functions[function.name].add_environment(API_URL, url)
