"""The internet-facing load balancer in front of the HTTP functions.

HTTPS when a certificate ARN is given (``-c certificate_arn=...``; HTTP then redirects),
plain HTTP otherwise. A rule per route sends its path to its function; the function
answers 405 for methods it does not take, so the load balancer matches on path only.
Everything else gets a fixed JSON 404. Access logs go to the logs bucket.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_elasticloadbalancingv2_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from conveyor.infra.compute import Compute
from conveyor.infra.data import Data
from conveyor.infra.network import NetworkStack
from conveyor.infra.settings import Settings
from conveyor.topology import Topology

NOT_FOUND_BODY = '{"error":"not_found","reason":"no such route"}'


class Frontend(Construct):
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
        https = settings.certificate_arn is not None
        security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            allow_all_outbound=False,
            description="Public load balancer: HTTP(S) from anywhere, nothing outbound",
        )
        self.alb = elbv2.ApplicationLoadBalancer(
            self,
            "Alb",
            vpc=network.vpc,
            internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_group=security_group,
            drop_invalid_header_fields=True,
        )
        self.alb.log_access_logs(data.logs, prefix="alb")
        not_found = elbv2.ListenerAction.fixed_response(
            404, content_type="application/json", message_body=NOT_FOUND_BODY
        )
        if https:
            security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS")
            security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "to HTTPS")
            listener = self.alb.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_arn(str(settings.certificate_arn))],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                default_action=not_found,
            )
            self.alb.add_redirect(source_port=80, target_port=443)
        else:
            security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP")
            listener = self.alb.add_listener(
                "Http",
                port=80,
                protocol=elbv2.ApplicationProtocol.HTTP,
                default_action=not_found,
            )
        for priority, (function, route) in enumerate(topology.routes(), start=10):
            group = listener.add_targets(
                f"Route-{function.name}",
                priority=priority,
                conditions=[elbv2.ListenerCondition.path_patterns(list(route.patterns))],
                targets=[targets.LambdaTarget(compute.functions[function.name])],
            )
            # Every value of a repeated header reaches the function, which refuses a
            # repeated security header instead of trusting whichever copy came last.
            group.set_attribute("lambda.multi_value_headers.enabled", "true")
            _invoked_only_from_this_account(compute.functions[function.name])
        self.listener = listener


def _invoked_only_from_this_account(function: lambda_.Function) -> None:
    """Scope the load balancer's invoke permission to this account's load balancers. The
    target group's ARN cannot be named: the group is created after the permission it
    needs, so naming it would make a cycle."""
    for construct in function.node.find_all():
        if (
            isinstance(construct, lambda_.CfnPermission)
            and construct.principal == "elasticloadbalancing.amazonaws.com"
        ):
            construct.source_account = Aws.ACCOUNT_ID
