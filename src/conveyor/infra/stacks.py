"""The stacks, in the order they deploy: in the private profile the network, then the
application; in the lean one the application alone, outside any VPC.

The application is one stack of constructs, one per concern (data, messaging, compute,
frontend, cdn, observability): they reference each other both ways (a bucket policy
names the distribution that reads the bucket, the bucket names the queue it notifies),
which separate stacks could only do through hand-made names.
"""

from __future__ import annotations

import jsii
from aws_cdk import (
    Aspects,
    CfnOutput,
    CfnResource,
    Environment,
    Fn,
    IAspect,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct, IConstruct

from conveyor.infra.cdn import Cdn
from conveyor.infra.compute import Compute
from conveyor.infra.data import Data
from conveyor.infra.edge import ApiEdge
from conveyor.infra.http_api import HttpApiEdge
from conveyor.infra.load_balancer import LoadBalancerEdge
from conveyor.infra.messaging import Messaging
from conveyor.infra.network import NetworkStack
from conveyor.infra.observability import Observability
from conveyor.infra.settings import Settings
from conveyor.topology import (
    APP_STACKS,
    ARCHIVE_BUCKET,
    CLIENT_SECRETS,
    NETWORK_STACK,
    ORDERS_TABLE,
    Profile,
    Topology,
)


class AppStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topology: Topology,
        settings: Settings,
        network: NetworkStack | None,
        env: Environment,
    ) -> None:
        super().__init__(scope, construct_id, env=env)
        self.data = Data(self, "Data", topology)
        self.messaging = Messaging(self, "Messaging", topology, self.data)
        self.cdn = Cdn(self, "Cdn", data=self.data)
        self.compute = Compute(
            self,
            "Compute",
            topology=topology,
            settings=settings,
            network=network,
            data=self.data,
            messaging=self.messaging,
            media_url=f"https://{self.cdn.distribution.distribution_domain_name}",
        )
        self.frontend: ApiEdge = (
            LoadBalancerEdge(
                self,
                "Frontend",
                topology=topology,
                settings=settings,
                network=network,
                data=self.data,
                compute=self.compute,
            )
            if network
            else HttpApiEdge(
                self,
                "Frontend",
                topology=topology,
                settings=settings,
                data=self.data,
                compute=self.compute,
            )
        )
        self.compute.tell_api_url(topology, self.frontend.url)
        self.observability = Observability(
            self,
            "Observability",
            topology=topology,
            settings=settings,
            messaging=self.messaging,
            compute=self.compute,
            frontend=self.frontend,
        )
        self._outputs(topology)

    def _outputs(self, topology: Topology) -> None:
        """Where things are, printed by `cdk deploy` and read by the README's steps."""
        secret = self.data.secrets[CLIENT_SECRETS]
        outputs = {
            "ApiUrl": (
                self.frontend.url,
                "/orders and /uploads (POST, and GET of one by id), signed; HTTPS only",
            ),
            "MediaDomain": (
                self.cdn.distribution.distribution_domain_name,
                "CloudFront domain serving processed/ variants",
            ),
            "ClientSecretsArn": (
                secret.secret_arn,
                "the client secrets document (conveyor clients, or put-secret-value)",
            ),
            "AlarmTopicArn": (self.observability.ops_topic.topic_arn, "alarms publish here"),
            "DashboardName": (self.observability.dashboard.dashboard_name, "CloudWatch"),
            # What `conveyor verify --stack` reads besides the above.
            "OrdersTable": (self.data.tables[ORDERS_TABLE].table_name, "the orders table"),
            "ArchiveBucket": (self.data.buckets[ARCHIVE_BUCKET].bucket_name, "order archive"),
            "DeadLetterQueues": (
                Fn.join(
                    ",",
                    [
                        self.messaging.queues[q.dlq_name].queue_url
                        for q in topology.queues
                        if not q.local_only
                    ],
                ),
                "every dead-letter queue's URL, comma-separated",
            ),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)


def suppress(
    stack: Stack, rule: str, reason: str, applies_to: list[str | RegexAppliesTo] | None = None
) -> None:
    """Accept one cdk-nag finding on the whole stack, with the written reason why."""
    NagSuppressions.add_stack_suppressions(
        stack,
        [NagPackSuppression(id=rule, reason=reason, applies_to=applies_to)],
        apply_to_nested_stacks=True,
    )


def build(scope: Construct, topology: Topology, settings: Settings) -> list[Stack]:
    """The profile's stacks, in the order they deploy."""
    env = Environment(account=settings.account, region=settings.region)
    network = (
        NetworkStack(scope, NETWORK_STACK, settings, env=env)
        if settings.profile is Profile.PRIVATE
        else None
    )
    app = AppStack(
        scope,
        APP_STACKS[settings.profile],
        topology=topology,
        settings=settings,
        network=network,
        env=env,
    )
    stacks: list[Stack] = [app] if network is None else [network, app]
    for stack in stacks:
        Aspects.of(stack).add(HelperLogsExpire(stack))
        Aspects.of(stack).add(AwsSolutionsChecks(verbose=True))
    _accepted_findings(network, app)
    return stacks


HELPER_LOG_RETENTION = logs.RetentionDays.ONE_MONTH


@jsii.implements(IAspect)
class HelperLogsExpire:
    """Send the logs of CDK's own helper functions (the custom resources a stack needs,
    such as the S3 notifications handler) to a log group that expires, as the conveyor
    functions' do: left alone, Lambda creates one that keeps everything forever. An
    aspect, because CDK adds some of those functions only while it synthesizes."""

    def __init__(self, stack: Stack) -> None:
        self.group = logs.LogGroup(
            stack,
            "HelperLogs",
            retention=HELPER_LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, lambda_.CfnFunction):
            if node.logging_config is None:
                node.logging_config = lambda_.CfnFunction.LoggingConfigProperty(
                    log_group=self.group.log_group_name
                )
        elif isinstance(node, CfnResource) and node.cfn_resource_type == "AWS::Lambda::Function":
            # The S3 notifications handler is a bare CfnResource with no logging config.
            node.add_property_override("LoggingConfig.LogGroup", self.group.log_group_name)


def _accepted_findings(network: NetworkStack | None, app: AppStack) -> None:
    cdk_helper = (
        "CDK's own helper function for a custom resource (prefix-list lookup, default "
        "security group restriction, S3 notifications, log retention); AWS maintains its "
        "code, runtime and policy"
    )
    suppress(
        app,
        "AwsSolutions-L1",
        f"{cdk_helper}; the conveyor functions pin Python 3.12 because their layers are "
        "built for cp312",
    )
    basic_execution = (
        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    )
    if network is None:
        suppress(app, "AwsSolutions-IAM4", cdk_helper, applies_to=[basic_execution])
    else:
        for stack in (network, app):
            suppress(
                stack,
                "AwsSolutions-IAM4",
                "AWSLambdaENIManagementAccess (conveyor "
                f"functions, for their VPC network interfaces) and {cdk_helper}; ENI "
                "actions do not support resource-level permissions",
                applies_to=[
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaENIManagementAccess",
                    basic_execution,
                ],
            )
        suppress(
            network,
            "AwsSolutions-IAM5",
            "ec2:DescribeManagedPrefixLists does not "
            "support resource-level permissions; the lookup runs once per deployment",
            applies_to=["Resource::*"],
        )
    suppress(
        app,
        "AwsSolutions-IAM5",
        "object-level grants are narrowed to a key prefix (uploads/*, processed/*, "
        "quarantine/*, archive/orders/*), the narrowest IAM allows for keys chosen at "
        "run time; the S3 notification helper needs s3:PutBucketNotification on '*', and "
        "active tracing's xray:PutTraceSegments and xray:PutTelemetryRecords take no "
        "resource but '*'",
        applies_to=[
            RegexAppliesTo(
                regex=r"/^Resource::<DataBucketarchive[0-9A-F]+\.Arn>"
                r"\/archive\/orders\/\*$/g"
            ),
            RegexAppliesTo(
                regex=r"/^Resource::<DataBucketmedia[0-9A-F]+\.Arn>"
                r"\/(uploads|processed|quarantine)\/\*$/g"
            ),
            "Resource::*",
        ],
    )
    suppress(
        app,
        "AwsSolutions-SMG4",
        "client HMAC secrets are rotated by adding a new "
        "secret to the client's list and retiring the old one (README), not by a "
        "rotation Lambda",
    )
    api = [
        (
            "AwsSolutions-CFR1",
            "no geo restriction: API clients call from wherever they run, and every "
            "request must carry a valid HMAC signature",
        ),
        (
            "AwsSolutions-CFR2",
            "WAF is a per-account choice with its own cost; every API request is "
            "authenticated by HMAC signature and the functions' concurrency is reserved",
        ),
        (
            "AwsSolutions-CFR4",
            "HTTPS without owning a domain needs CloudFront's default certificate, whose "
            "TLS floor cannot be set; with -c domain_name the floor is TLS 1.2 (2021)",
        ),
    ]
    media = [
        (
            "AwsSolutions-CFR1",
            "no geo restriction: the images are meant for every country the product serves",
        ),
        (
            "AwsSolutions-CFR2",
            "WAF is a per-account choice with its own cost; the distribution serves "
            "immutable public variants only",
        ),
        (
            "AwsSolutions-CFR4",
            "the default CloudFront certificate is used until a custom domain is "
            "configured; viewers must use HTTPS",
        ),
    ]
    if isinstance(app.frontend, HttpApiEdge):
        NagSuppressions.add_resource_suppressions(
            app.frontend.api,
            [
                NagPackSuppression(
                    id="AwsSolutions-APIG4",
                    reason="every request is authenticated by its HMAC signature in the "
                    "function, on both profiles alike; an API Gateway authorizer would be a "
                    "second, weaker check (a token, not the body's digest)",
                )
            ],
            apply_to_children=True,
        )
    for construct, findings in (
        (app.frontend.distribution, api),
        (app.cdn.distribution, media),
    ):
        if construct is None:
            continue  # the lean API without CloudFront
        NagSuppressions.add_resource_suppressions(
            construct,
            [NagPackSuppression(id=rule, reason=reason) for rule, reason in findings],
            apply_to_children=True,
        )
