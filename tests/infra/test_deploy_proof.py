"""What only a real account would show, proved on the synthesized templates with the
CDK's own assertions: what cannot be deleted by accident, what keeps logs forever, and
who may invoke the public functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match
from aws_cdk.assertions import Template as Assertions

from conveyor.infra.app import make_app
from conveyor.topology import APP_STACK, TOPOLOGY
from tests.infra.conftest import (
    ALL_VIEWER_AND_CLOUDFRONT_2022,
    Synthesized,
    Template,
    assert_api_distribution,
)

MONTH = 30
"""Days every function's logs are kept, the conveyor functions' and CDK's helpers'."""


def assertions(template: Template) -> Assertions:
    return Assertions.from_stack(template.stack)


def test_every_table_has_deletion_protection(synthesized: Synthesized) -> None:
    tables = assertions(synthesized.app)
    tables.all_resources_properties("AWS::DynamoDB::Table", {"DeletionProtectionEnabled": True})
    tables.all_resources("AWS::DynamoDB::Table", {"DeletionPolicy": "Retain"})


@pytest.mark.parametrize("stack", ["network", "app"])
def test_every_function_helpers_included_logs_to_a_group_that_expires(
    synthesized: Synthesized, stack: str
) -> None:
    template: Template = getattr(synthesized, stack)
    found = assertions(template).find_resources("AWS::Lambda::Function")
    assert found, "each stack has functions (the network stack a CDK helper)"
    for logical_id, function in found.items():
        group: dict[str, Any] = function["Properties"]["LoggingConfig"]["LogGroup"]
        retention = template.resources[group["Ref"]]["Properties"].get("RetentionInDays")
        assert retention == MONTH, f"{logical_id} logs to a group that keeps {retention}"


def test_the_load_balancer_may_invoke_only_from_this_account(synthesized: Synthesized) -> None:
    app = assertions(synthesized.app)
    elb = {"Principal": "elasticloadbalancing.amazonaws.com"}
    permissions = app.find_resources("AWS::Lambda::Permission", {"Properties": elb})
    assert len(permissions) == 2, "publisher and presign"
    app.all_resources_properties(
        "AWS::Lambda::Permission",
        Match.object_like({**elb, "SourceAccount": {"Ref": "AWS::AccountId"}}),
    )


def test_alarms_reach_their_topic_through_a_key_cloudwatch_may_use(
    synthesized: Synthesized,
) -> None:
    app = assertions(synthesized.app)
    alarms = app.find_resources("AWS::CloudWatch::Alarm")
    [topic_id] = {a["Properties"]["AlarmActions"][0]["Ref"] for a in alarms.values()}
    topic = synthesized.app.resources[topic_id]["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = synthesized.app.resources[key_id]
    assert key["Type"] == "AWS::KMS::Key", "a customer managed key, not alias/aws/sns"
    assert key["Properties"]["EnableKeyRotation"] is True
    cloudwatch = {"Service": "cloudwatch.amazonaws.com"}
    this_account = {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    [grant] = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Principal") == cloudwatch
    ]
    assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    app.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": cloudwatch,
                                "Action": "sns:Publish",
                                "Condition": Match.object_like({"StringEquals": this_account}),
                            }
                        )
                    ]
                )
            },
        },
    )


def test_every_vpc_endpoint_reaches_only_this_accounts_resources(
    synthesized: Synthesized,
) -> None:
    network = assertions(synthesized.network)
    endpoints = network.find_resources("AWS::EC2::VPCEndpoint")
    assert len(endpoints) == 6, "four interface endpoints and the S3 and DynamoDB gateways"
    network.all_resources_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "PolicyDocument": {
                "Statement": [
                    {
                        "Sid": "OnlyThisAccountsResources",
                        "Effect": "Allow",
                        "Principal": {"AWS": "*"},
                        "Action": "*",
                        "Resource": "*",
                        "Condition": {
                            "StringEquals": {"aws:ResourceAccount": {"Ref": "AWS::AccountId"}}
                        },
                    }
                ],
                "Version": "2012-10-17",
            }
        },
    )


def test_every_function_reserves_concurrency_covering_its_mapping(
    synthesized: Synthesized,
) -> None:
    app = synthesized.app
    functions = app.named("AWS::Lambda::Function")
    reserved = {
        name: app.resources[logical_id]["Properties"]["ReservedConcurrentExecutions"]
        for name, logical_id in functions.items()
    }
    assert reserved == {f.name: f.reserved_concurrency for f in TOPOLOGY.functions}
    assert reserved["images"] == 50, "a flood of uploads cannot take the whole account"
    mappings = assertions(app).find_resources("AWS::Lambda::EventSourceMapping")
    for mapping in mappings.values():
        properties = mapping["Properties"]
        function = app.name_of(properties["FunctionName"]["Ref"])
        maximum = properties["ScalingConfig"]["MaximumConcurrency"]
        assert maximum <= reserved[function], f"{function}'s mapping would be throttled"


def test_reservations_can_be_left_out_for_an_account_with_a_small_quota(tmp_path: Path) -> None:
    app = make_app(
        str(tmp_path / "out"),
        layers_dir=tmp_path / "layers",
        context={"reserve_concurrency": "false"},
    )
    stack = next(c for c in app.node.children if isinstance(c, Stack) and c.stack_name == APP_STACK)
    template = Assertions.from_stack(stack)
    for function in template.find_resources("AWS::Lambda::Function").values():
        assert "ReservedConcurrentExecutions" not in function["Properties"]


def test_the_api_is_https_only_at_cloudfront_and_the_load_balancer_is_unreachable_else(
    synthesized: Synthesized,
) -> None:
    app = assertions(synthesized.app)
    assert_api_distribution(
        synthesized.app, ALL_VIEWER_AND_CLOUDFRONT_2022, {"VpcOriginConfig": Match.any_value()}
    )
    app.resource_count_is("AWS::CloudFront::VpcOrigin", 1)
    app.has_resource_properties(
        "AWS::CloudFront::VpcOrigin",
        {"VpcOriginEndpointConfig": Match.object_like({"OriginProtocolPolicy": "http-only"})},
    )
    app.all_resources_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", Match.object_like({"Scheme": "internal"})
    )
    [group] = [
        g
        for g in synthesized.app.of_type("AWS::EC2::SecurityGroup").values()
        if "load balancer" in g["Properties"]["GroupDescription"]
    ]
    ingress = group["Properties"]["SecurityGroupIngress"]
    assert [(r["CidrIp"], r["FromPort"]) for r in ingress] == [("10.0.0.0/16", 80)], (
        "the VPC only: CloudFront's VPC origin, never the internet"
    )


def test_the_api_url_is_https_at_its_own_domain_when_one_is_given(tmp_path: Path) -> None:
    certificate = "arn:aws:acm:us-east-1:111111111111:certificate/x"
    app = make_app(
        str(tmp_path / "out"),
        layers_dir=tmp_path / "layers",
        context={"domain_name": "api.example.com", "certificate_arn": certificate},
    )
    stack = next(s for s in app.node.children if isinstance(s, Stack) and s.node.id == APP_STACK)
    template = Assertions.from_stack(stack)
    template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": Match.object_like(
                {
                    "Aliases": ["api.example.com"],
                    "ViewerCertificate": Match.object_like(
                        {"AcmCertificateArn": certificate, "MinimumProtocolVersion": "TLSv1.2_2021"}
                    ),
                }
            )
        },
    )
    assert template.find_outputs("ApiUrl")["ApiUrl"]["Value"] == "https://api.example.com"


def test_a_domain_without_its_certificate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="domain_name and certificate_arn go together"):
        make_app(
            str(tmp_path / "out"),
            layers_dir=tmp_path / "layers",
            context={"domain_name": "api.example.com"},
        )


def conveyor_functions(template: Assertions) -> dict[str, Any]:
    return {
        logical_id: function
        for logical_id, function in template.find_resources("AWS::Lambda::Function").items()
        if logical_id.startswith("ComputeFunction")
    }


def test_by_default_there_is_no_snap_start_and_the_functions_are_invoked_directly(
    synthesized: Synthesized,
) -> None:
    app = assertions(synthesized.app)
    functions = conveyor_functions(app)
    assert len(functions) == len(TOPOLOGY.functions)
    assert all("SnapStart" not in f["Properties"] for f in functions.values())
    app.resource_count_is("AWS::Lambda::Alias", 0)
    app.resource_count_is("AWS::Lambda::Version", 0)
    for mapping in app.find_resources("AWS::Lambda::EventSourceMapping").values():
        assert mapping["Properties"]["FunctionName"]["Ref"] in functions


def test_with_snap_start_every_function_is_invoked_through_its_live_alias(tmp_path: Path) -> None:
    app = make_app(
        str(tmp_path / "out"), layers_dir=tmp_path / "layers", context={"snap_start": "true"}
    )
    stack = next(s for s in app.node.children if isinstance(s, Stack) and s.node.id == APP_STACK)
    template = Assertions.from_stack(stack)
    functions = conveyor_functions(template)
    assert len(functions) == len(TOPOLOGY.functions)
    for function in functions.values():
        assert function["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    aliases = template.find_resources("AWS::Lambda::Alias")
    assert len(aliases) == len(TOPOLOGY.functions)
    assert {a["Properties"]["Name"] for a in aliases.values()} == {"live"}
    for alias in aliases.values():
        version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert template.find_resources("AWS::Lambda::Version")[version]
    # The event source mappings and the load balancer's targets invoke the alias, never
    # $LATEST (which has no snapshot), and the load balancer may invoke only the alias.
    mappings = template.find_resources("AWS::Lambda::EventSourceMapping").values()
    assert len(list(mappings)) == sum(1 for _ in TOPOLOGY.sqs_triggered())
    for mapping in mappings:
        assert mapping["Properties"]["FunctionName"]["Fn::Join"][1][1] == ":live"
    groups = template.find_resources(
        "AWS::ElasticLoadBalancingV2::TargetGroup", {"Properties": {"TargetType": "lambda"}}
    )
    assert len(groups) == sum(1 for _ in TOPOLOGY.routes())
    for group in groups.values():
        [target] = group["Properties"]["Targets"]
        assert target["Id"]["Ref"] in aliases
    template.all_resources_properties(
        "AWS::Lambda::Permission",
        Match.object_like({"FunctionName": {"Ref": Match.string_like_regexp("ComputeLive")}}),
    )
