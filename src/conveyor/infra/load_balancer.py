"""The private profile's API edge: CloudFront over HTTPS, in front of an internal load
balancer.

The load balancer is internal, in the isolated subnets, and CloudFront reaches it through
a VPC origin: nothing on the internet can call it directly. CloudFront adds
``CloudFront-Viewer-Address``, the caller's address, which the functions log.

Behind it, a rule per route sends its path to its function; the function answers 405
for methods it does not take. Everything else gets a fixed JSON 404. Access logs of both
go to the logs bucket.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_elasticloadbalancingv2_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from conveyor.infra.compute import Compute
from conveyor.infra.data import Data
from conveyor.infra.edge import (
    NOT_FOUND_BODY,
    EdgeSignals,
    api_distribution,
    distribution_url,
)
from conveyor.infra.network import VPC_CIDR, NetworkStack
from conveyor.infra.settings import Settings
from conveyor.topology import Topology


class LoadBalancerEdge(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topology: Topology,
        settings: Settings,
        network: NetworkStack,
        data: Data,
        compute: Compute,
    ) -> None:
        super().__init__(scope, construct_id)
        security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            allow_all_outbound=False,
            description="Internal load balancer: HTTP from the CloudFront VPC origin only",
        )
        # CloudFront's VPC origin reaches the load balancer from network interfaces it
        # places in this VPC; nothing outside the VPC has a route to it.
        security_group.add_ingress_rule(
            ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(80), "CloudFront VPC origin"
        )
        self.alb = elbv2.ApplicationLoadBalancer(
            self,
            "Alb",
            vpc=network.vpc,
            internet_facing=False,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_group=security_group,
            drop_invalid_header_fields=True,
        )
        self.alb.log_access_logs(data.logs, prefix="alb")
        listener = self.alb.add_listener(
            "Http",
            port=80,
            protocol=elbv2.ApplicationProtocol.HTTP,
            open=False,
            default_action=elbv2.ListenerAction.fixed_response(
                404, content_type="application/json", message_body=NOT_FOUND_BODY
            ),
        )
        for priority, (function, route) in enumerate(topology.routes(), start=10):
            group = listener.add_targets(
                f"Route-{function.name}",
                priority=priority,
                conditions=[elbv2.ListenerCondition.path_patterns(list(route.patterns))],
                targets=[targets.LambdaTarget(compute.targets[function.name])],
            )
            # Every value of a repeated header reaches the function, which refuses a
            # repeated security header instead of trusting whichever copy came last.
            group.set_attribute("lambda.multi_value_headers.enabled", "true")
            _invoked_only_from_this_account(compute.targets[function.name])
        self.listener = listener
        self.distribution: cloudfront.Distribution = api_distribution(
            self,
            settings,
            data,
            origins.VpcOrigin.with_application_load_balancer(
                self.alb,
                http_port=80,
                protocol_policy=cloudfront.OriginProtocolPolicy.HTTP_ONLY,
            ),
            cloudfront.OriginRequestPolicy.ALL_VIEWER_AND_CLOUDFRONT_2022,
        )
        self.url = distribution_url(settings, self.distribution)

    def signals(self, period: Duration) -> EdgeSignals:
        alb = self.alb.metrics
        five_xx = cloudwatch.MathExpression(
            expression="elb + targets",
            using_metrics={
                "elb": alb.http_code_elb(
                    code=elbv2.HttpCodeElb.ELB_5XX_COUNT, period=period, statistic="Sum"
                ),
                "targets": alb.http_code_target(
                    code=elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=period, statistic="Sum"
                ),
            },
            period=period,
            label="ALB 5XX",
        )
        requests = alb.request_count(period=period)
        return EdgeSignals("alb:frontend:5xx", "load balancer", requests, five_xx)


def _invoked_only_from_this_account(function: lambda_.IFunction) -> None:
    """Scope the load balancer's invoke permission to this account's load balancers. The
    target group's ARN cannot be named: the group is created after the permission it
    needs, so naming it would make a cycle."""
    for construct in function.node.find_all():
        if (
            isinstance(construct, lambda_.CfnPermission)
            and construct.principal == "elasticloadbalancing.amazonaws.com"
        ):
            construct.source_account = Aws.ACCOUNT_ID
