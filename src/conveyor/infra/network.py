"""The network: a VPC whose functions reach AWS only through VPC endpoints.

Two AZs; public subnets hold only the load balancer, functions run in private isolated
subnets with no NAT gateway and no route to the internet. S3 and DynamoDB are reached
through gateway endpoints, SNS, SQS, Secrets Manager and CloudWatch Logs through
interface endpoints. The functions' security group has no inbound rules, and its
outbound rules reach only those endpoints.
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from conveyor.infra.settings import Settings

HTTPS = ec2.Port.tcp(443)
INTERFACE_ENDPOINTS = {
    "Sns": ec2.InterfaceVpcEndpointAwsService.SNS,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
}


VPC_CIDR = "10.0.0.0/16"


class NetworkStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, settings: Settings, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            availability_zones=list(settings.availability_zones),
            nat_gateways=0,
            subnet_configuration=[
                # Empty: CloudFront's VPC origin needs the VPC to have an internet gateway,
                # and public subnets are how a VPC gets one. No NAT, nothing placed here.
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                ),
                ec2.SubnetConfiguration(
                    name="functions", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                ),
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDb": ec2.GatewayVpcEndpointOptions(
                    service=ec2.GatewayVpcEndpointAwsService.DYNAMODB
                ),
            },
        )
        self.vpc.add_flow_log("FlowLogs")
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        self.functions_sg = ec2.SecurityGroup(
            self,
            "FunctionsSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="Lambda functions: no inbound; outbound only to the VPC endpoints",
        )
        endpoints_sg = ec2.SecurityGroup(
            self,
            "EndpointsSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="Interface endpoints: HTTPS from the functions only",
        )
        endpoints_sg.add_ingress_rule(self.functions_sg, HTTPS, "HTTPS from the functions")
        self.functions_sg.add_egress_rule(endpoints_sg, HTTPS, "HTTPS to interface endpoints")
        endpoints: list[ec2.GatewayVpcEndpoint | ec2.InterfaceVpcEndpoint] = [
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=isolated,
                security_groups=[endpoints_sg],
                private_dns_enabled=True,
                open=False,  # not the whole VPC CIDR: only the functions, by the rule above
            )
            for name, service in INTERFACE_ENDPOINTS.items()
        ]
        endpoints += [
            endpoint
            for endpoint in self.vpc.node.children
            if isinstance(endpoint, ec2.GatewayVpcEndpoint)
        ]
        for endpoint in endpoints:
            # Without a policy an endpoint reaches any account's resources, which is how
            # data would leave through it. The functions touch only this account's; Lambda
            # fetches code and layers, and the CDK deploys, outside the VPC.
            endpoint.add_to_policy(
                iam.PolicyStatement(
                    sid="OnlyThisAccountsResources",
                    principals=[iam.AnyPrincipal()],
                    actions=["*"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:ResourceAccount": Aws.ACCOUNT_ID}},
                )
            )
        for name, service_name in (("S3", "s3"), ("DynamoDb", "dynamodb")):
            prefix_list = self._prefix_list(name, f"com.amazonaws.{self.region}.{service_name}")
            self.functions_sg.add_egress_rule(
                ec2.Peer.prefix_list(prefix_list), HTTPS, f"HTTPS to the {name} gateway endpoint"
            )

    def _prefix_list(self, name: str, prefix_list_name: str) -> str:
        """The managed prefix list of a gateway endpoint's service, looked up when the
        stack deploys (a synth-time lookup would need an AWS account)."""
        lookup = cr.AwsCustomResource(
            self,
            f"{name}PrefixList",
            on_update=cr.AwsSdkCall(
                service="EC2",
                action="describeManagedPrefixLists",
                parameters={
                    "Filters": [{"Name": "prefix-list-name", "Values": [prefix_list_name]}]
                },
                physical_resource_id=cr.PhysicalResourceId.of(prefix_list_name),
                output_paths=["PrefixLists.0.PrefixListId"],
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["ec2:DescribeManagedPrefixLists"], resources=["*"]
                    ),
                ]
            ),
            install_latest_aws_sdk=False,
        )
        return lookup.get_response_field("PrefixLists.0.PrefixListId")
