"""The lean profile's API edge: an API Gateway HTTP API, behind CloudFront by default.

Each route of the topology is two route keys, ``ANY /orders`` and ``ANY
/orders/{proxy+}``, with a Lambda proxy integration (payload format 2.0); the function
answers 405 for methods it does not take. A request for no route goes to the
``$default`` route, whose function answers the same JSON 404 as the load balancer's
fixed response (an HTTP API has no fixed responses). Each integration may invoke its
function only for its own route of this API.

The HTTP API answers only HTTPS itself. By default CloudFront is in front of it, as in
the private profile, so that both profiles' APIs are reached the same way and a custom
domain works the same; ``-c api_cdn=false`` leaves CloudFront out and the API answers at
its own ``execute-api`` URL. Access logs go to a log group kept 30 days.
"""

from __future__ import annotations

import jsii
from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_logs as logs
from constructs import Construct

from conveyor.infra.compute import Compute
from conveyor.infra.data import Data
from conveyor.infra.edge import EdgeSignals, api_distribution, distribution_url
from conveyor.infra.settings import Settings
from conveyor.topology import Topology

ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "integrationError": "$context.integrationErrorMessage",
    "correlationId": "$context.integration.requestId",
}
"""One JSON line per request; ``correlationId`` is the function invocation's request id."""


class HttpApiEdge(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topology: Topology,
        settings: Settings,
        data: Data,
        compute: Compute,
    ) -> None:
        super().__init__(scope, construct_id)
        proxies = {
            function.name: integrations.HttpLambdaIntegration(
                f"Integration-{function.name}",
                compute.targets[function.name],
                payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            )
            for function, _ in topology.routes()
        }
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description="conveyor API: signed requests to the functions",
            create_default_stage=False,
            default_integration=proxies[topology.catch_all] if topology.catch_all else None,
        )
        for function, route in topology.routes():
            for path in route.http_api_paths:
                self.api.add_routes(
                    path=path, methods=[apigwv2.HttpMethod.ANY], integration=proxies[function.name]
                )
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            auto_deploy=True,
            access_log_settings=_AccessLogs(access_logs),
        )
        self.distribution: cloudfront.Distribution | None = None
        self.url = self.api.api_endpoint
        if settings.api_cdn:
            domain = f"{self.api.api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}"
            self.distribution = api_distribution(
                self,
                settings,
                data,
                origins.HttpOrigin(
                    domain, protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY
                ),
                # API Gateway routes by its own Host name; every other header goes through.
                cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
            )
            self.url = distribution_url(settings, self.distribution)

    def signals(self, period: Duration) -> EdgeSignals:
        return EdgeSignals(
            "api:frontend:5xx",
            "HTTP API",
            self.api.metric_count(period=period, statistic="Sum"),
            self.api.metric_server_error(period=period, statistic="Sum"),
        )


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    """The stage's access logs: JSON lines of :data:`ACCESS_LOG_FIELDS` into ``group``."""

    def __init__(self, group: logs.ILogGroup) -> None:
        self._group = group

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return apigwv2.LogGroupLogDestination(self._group)

    @property
    def format(self) -> apigateway.AccessLogFormat:
        fields = ",".join(f'"{name}":"{value}"' for name, value in ACCESS_LOG_FIELDS.items())
        return apigateway.AccessLogFormat.custom("{" + fields + "}")
