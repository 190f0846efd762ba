"""The lean profile beside the private one: the same system, other edges.

What must hold of both profiles' templates alike (least privilege, encryption, queue
policies, alarms, deletion protection, ...) is proved on the private one by the other
modules here; this one proves that the lean template differs from it only at its
edges, and what its own edge is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match
from aws_cdk.assertions import Template as Assertions

from conveyor.local.edges import HttpApiEdge
from conveyor.ops.cost import alarm_count
from conveyor.topology import TOPOLOGY, Profile
from tests.infra.conftest import (
    ALL_VIEWER_EXCEPT_HOST_HEADER,
    Synthesized,
    Template,
    assert_api_distribution,
    statements,
    synthesize,
)

EDGE_TYPES = (
    "AWS::ApiGatewayV2::",
    "AWS::ElasticLoadBalancingV2::",
    "AWS::EC2::",
    "AWS::CloudFront::VpcOrigin",
)
EDGE_PROPERTIES = {
    # Where a function runs, and the role's permission to run there.
    "AWS::Lambda::Function": {"VpcConfig"},
    "AWS::IAM::Role": {"ManagedPolicyArns"},
    # The dashboard draws the edge's requests and 5XX.
    "AWS::CloudWatch::Dashboard": {"DashboardBody"},
}
EDGE_INVOKERS = {"elasticloadbalancing.amazonaws.com", "apigateway.amazonaws.com"}


def is_edge(logical_id: str, resource: dict[str, Any]) -> bool:
    """Whether a resource belongs to a profile's edge: its API front door and what
    invokes the functions or watches it."""
    kind = resource["Type"]
    properties = resource.get("Properties", {})
    return (
        logical_id.startswith("Frontend")
        or kind.startswith(EDGE_TYPES)
        or (kind == "AWS::Lambda::Permission" and properties["Principal"] in EDGE_INVOKERS)
        or properties.get("AlarmDescription", "").endswith(":frontend:5xx above 0")
    )


def stack_neutral(value: Any) -> Any:
    """``value`` with the names CDK derives from the stack's name made alike."""
    return json.loads(re.sub(r"Conveyor(App|Lean)[A-Za-z0-9]+", "<derived>", json.dumps(value)))


def core(template: Template) -> dict[str, Any]:
    """Every resource that is not the edge, with the edge's properties left out."""
    kept = {}
    for logical_id, resource in stack_neutral(template.resources).items():
        if is_edge(logical_id, resource):
            continue
        properties = {
            name: value
            for name, value in resource.get("Properties", {}).items()
            if name not in EDGE_PROPERTIES.get(resource["Type"], set())
        }
        kept[logical_id] = {**resource, "Properties": properties}
    return kept


def test_the_profiles_differ_only_at_their_edges(
    synthesized: Synthesized, lean: Synthesized
) -> None:
    private, lean_core = core(synthesized.app), core(lean.app)
    logs_policy = next(k for k in private if k.startswith("DataLogsPolicy"))
    # The load balancer's access logs need their delivery allowed into the logs bucket.
    alb_delivery = [
        s
        for s in private[logs_policy]["Properties"]["PolicyDocument"]["Statement"]
        if s not in lean_core[logs_policy]["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert alb_delivery, "the private logs bucket takes the load balancer's logs"
    assert all(
        "/alb/AWSLogs/" in json.dumps(s["Resource"]) or "Acl" in s["Action"] for s in alb_delivery
    )
    del private[logs_policy], lean_core[logs_policy]
    assert sorted(private) == sorted(lean_core), "the same resources, by the same ids"
    for logical_id, resource in private.items():
        assert lean_core[logical_id] == resource, logical_id


def test_the_lean_template_has_no_network_no_load_balancer_and_no_vpc_permission(
    lean: Synthesized,
) -> None:
    app = lean.app
    kinds = {r["Type"] for r in app.resources.values()}
    assert not [k for k in kinds if k.startswith(("AWS::EC2::", "AWS::ElasticLoadBalancingV2::"))]
    assert [t.stack.stack_name for t in lean.templates] == ["Conveyor-Lean"]
    functions = app.named("AWS::Lambda::Function")
    assert sorted(functions) == sorted(f.name for f in TOPOLOGY.functions)
    for name, logical_id in functions.items():
        assert "VpcConfig" not in app.resources[logical_id]["Properties"], name
    for name, logical_id in app.named("AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in app.resources[logical_id]["Properties"], name
    for policy in app.of_type("AWS::IAM::Policy").values():
        for statement in statements(policy):
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert not [a for a in actions if a.startswith("ec2:")], statement


def test_the_http_api_routes_what_the_local_gateway_routes_with_payload_2(
    lean: Synthesized,
) -> None:
    app = lean.app
    integrations = {
        k: v["Properties"] for k, v in app.of_type("AWS::ApiGatewayV2::Integration").items()
    }
    for integration in integrations.values():
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["PayloadFormatVersion"] == "2.0"
    routed = {}
    for resource in app.of_type("AWS::ApiGatewayV2::Route").values():
        props = resource["Properties"]
        integration = props["Target"]["Fn::Join"][1][1]["Ref"]
        function = integrations[integration]["IntegrationUri"]["Fn::GetAtt"][0]
        routed[props["RouteKey"]] = app.name_of(function)
    expected = {key: f.name for f, route in TOPOLOGY.routes() for key in route.route_keys}
    assert routed == {**expected, "$default": TOPOLOGY.catch_all}
    # The local edge's events name these route keys, and it sends the rest to $default.
    for function, route in TOPOLOGY.routes():
        assert routed[route.route_key(route.path)] == function.name
        assert routed[route.route_key(f"{route.path}/id-1")] == function.name
    assert HttpApiEdge().sends_unmatched
    [stage] = app.of_type("AWS::ApiGatewayV2::Stage").values()
    assert (stage["Properties"]["StageName"], stage["Properties"]["AutoDeploy"]) == (
        "$default",
        True,
    )
    log_group = stage["Properties"]["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert app.resources[log_group]["Properties"]["RetentionInDays"] == 30
    assert "$context.requestId" in stage["Properties"]["AccessLogSettings"]["Format"]


def test_each_route_may_invoke_its_function_only_from_this_api(lean: Synthesized) -> None:
    app = lean.app
    [api] = app.of_type("AWS::ApiGatewayV2::Api")
    permissions = [
        p["Properties"]
        for p in app.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert len(permissions) == 2 * len(list(TOPOLOGY.routes())) + 1, "each route and $default"
    for permission in permissions:
        parts = permission["SourceArn"]["Fn::Join"][1]
        assert {"Ref": api} in parts, "this API, no other"
        assert {"Ref": "AWS::AccountId"} in parts


def test_the_lean_api_is_https_only_behind_cloudfront_and_forwards_all_but_host(
    lean: Synthesized,
) -> None:
    # API Gateway routes by its own host name: every header but Host goes through.
    assert_api_distribution(
        lean.app,
        ALL_VIEWER_EXCEPT_HOST_HEADER,
        {"CustomOriginConfig": Match.object_like({"OriginProtocolPolicy": "https-only"})},
    )
    app = Assertions.from_stack(lean.app.stack)
    api_url = app.find_outputs("ApiUrl")["ApiUrl"]["Value"]["Fn::Join"][1]
    assert api_url[0] == "https://"
    assert (
        lean.app.resources[api_url[1]["Fn::GetAtt"][0]]["Type"] == "AWS::CloudFront::Distribution"
    )


def test_without_the_cdn_the_api_answers_at_its_own_https_url(tmp_path: Path) -> None:
    direct = synthesize(tmp_path, {"profile": "lean", "api_cdn": "false"})
    app = direct.app
    distributions = app.of_type("AWS::CloudFront::Distribution").values()
    assert [d["Properties"]["DistributionConfig"]["Comment"] for d in distributions] == [
        "conveyor image variants"
    ]
    url = app.body["Outputs"]["ApiUrl"]["Value"]["Fn::GetAtt"]
    assert url[1] == "ApiEndpoint", "https://{api}.execute-api.{region}.amazonaws.com"
    assert app.resources[url[0]]["Type"] == "AWS::ApiGatewayV2::Api"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"profile": "tiny"}, "profile must be one of private, lean"),
        ({"api_cdn": "false"}, "api_cdn=false needs profile=lean"),
        (
            {
                "profile": "lean",
                "api_cdn": "false",
                "domain_name": "api.example.com",
                "certificate_arn": "arn:aws:acm:us-east-1:111111111111:certificate/x",
            },
            "with api_cdn=false there is none",
        ),
        ({"canary_every": "10"}, "add -c canary=true"),
        ({"canary": "true", "canary_every": "often"}, "whole number of minutes"),
        ({"canary": "true", "canary_every": "3"}, "runs would overlap"),
        ({"trace_sample": "1.5"}, "share of traces from 0 to 1"),
        ({"trace_sample": "some"}, "share of traces from 0 to 1"),
    ],
    ids=[
        "unknown-profile",
        "private-without-cdn",
        "domain-without-cdn",
        "interval-without-canary",
        "interval-not-minutes",
        "interval-shorter-than-a-run",
        "sample-over-one",
        "sample-not-a-number",
    ],
)
def test_settings_that_cannot_be_deployed_are_refused(
    tmp_path: Path, context: dict[str, str], message: str
) -> None:
    with pytest.raises((ValueError, SystemExit), match=message):
        synthesize(tmp_path, context)


def test_naming_the_private_profile_synthesizes_the_default(
    tmp_path: Path, synthesized: Synthesized
) -> None:
    named = synthesize(tmp_path, {"profile": "private"})
    assert [t.body for t in named.templates] == [t.body for t in synthesized.templates]


def test_the_lean_alarms_watch_the_http_api_where_the_private_ones_watch_the_load_balancer(
    profiles: dict[Profile, Synthesized],
) -> None:
    for profile, synthesized in profiles.items():
        alarms = {
            a["Properties"]["AlarmDescription"].split()[1]: a["Properties"]
            for a in synthesized.app.of_type("AWS::CloudWatch::Alarm").values()
        }
        assert len(alarms) == alarm_count(TOPOLOGY), profile
        edge = {Profile.PRIVATE: "alb:frontend:5xx", Profile.LEAN: "api:frontend:5xx"}[profile]
        assert edge in alarms, profile
    api_alarm = {
        a["Properties"]["AlarmDescription"].split()[1]: a["Properties"]
        for a in profiles[Profile.LEAN].app.of_type("AWS::CloudWatch::Alarm").values()
    }["api:frontend:5xx"]
    assert (api_alarm["Namespace"], api_alarm["MetricName"]) == ("AWS/ApiGateway", "5xx")
    [dimension] = api_alarm["Dimensions"]
    assert dimension["Name"] == "ApiId"
    ops_topic = next(
        k for k in profiles[Profile.LEAN].app.of_type("AWS::SNS::Topic") if "OpsTopic" in k
    )
    assert api_alarm["AlarmActions"] == [{"Ref": ops_topic}]


def test_every_function_is_traced_at_the_deploy_settings_sample_rate(
    tmp_path: Path, synthesized: Synthesized
) -> None:
    """Active tracing (its daemon takes the spans) and OpenTelemetry's own sampler
    variables, 5% by default and what ``-c trace_sample`` says otherwise."""
    sampled = synthesize(tmp_path, {"trace_sample": "0.2"})
    for app, rate in ((synthesized.app, "0.05"), (sampled.app, "0.2")):
        functions = app.of_type("AWS::Lambda::Function")
        named = set(app.named("AWS::Lambda::Function").values())
        for logical_id in named:
            props = functions[logical_id]["Properties"]
            assert props["TracingConfig"] == {"Mode": "Active"}, logical_id
            env = props["Environment"]["Variables"]
            assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
            assert env["OTEL_TRACES_SAMPLER_ARG"] == rate
