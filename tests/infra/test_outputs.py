"""Deploying tells you where things are: the stack's outputs."""

from __future__ import annotations

from conveyor.ops.verification import STACK_OUTPUTS
from conveyor.topology import TOPOLOGY
from tests.infra.conftest import Synthesized


def test_the_app_stack_outputs_where_everything_is(synthesized: Synthesized) -> None:
    outputs = synthesized.app.body["Outputs"]
    assert set(outputs) == {"DashboardName", *STACK_OUTPUTS}, "what conveyor verify reads"
    app = synthesized.app
    api = outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert api[0] == "https://"
    assert app.resources[api[1]["Fn::GetAtt"][0]]["Type"] == "AWS::CloudFront::Distribution"
    kinds = {
        "MediaDomain": "AWS::CloudFront::Distribution",
        "ClientSecretsArn": "AWS::SecretsManager::Secret",
        "AlarmTopicArn": "AWS::SNS::Topic",
        "DashboardName": "AWS::CloudWatch::Dashboard",
        "OrdersTable": "AWS::DynamoDB::Table",
        "ArchiveBucket": "AWS::S3::Bucket",
    }
    for name, kind in kinds.items():
        value = outputs[name]["Value"]
        logical_id = value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]
        assert app.resources[logical_id]["Type"] == kind, name
        assert outputs[name]["Description"]
    assert app.name_of(outputs["ClientSecretsArn"]["Value"]["Ref"]) == "client-secrets"
    assert app.name_of(outputs["OrdersTable"]["Value"]["Ref"]) == "orders"
    assert app.name_of(outputs["ArchiveBucket"]["Value"]["Ref"]) == "archive"
    queues = outputs["DeadLetterQueues"]["Value"]["Fn::Join"]
    assert queues[0] == ","
    dlqs = sorted(app.name_of(q["Ref"]) for q in queues[1])
    assert dlqs == sorted(q.dlq_name for q in TOPOLOGY.queues if not q.local_only)


def test_the_synth_summary_counts_resources_and_says_where_the_reports_are(
    synthesized: Synthesized,
) -> None:
    from conveyor.infra.summary import summary

    layers = synthesized.outdir.parent / "layers"
    lines = summary(synthesized.outdir, layers)
    app = next(line for line in lines if line.startswith("Conveyor-App.template.json"))
    assert f": {len(synthesized.app.resources)} resources (" in app
    assert any(line.startswith("cdk-nag reports: ") and "NagReport.csv" in line for line in lines)
    assert "layer powertools: NOT built: run `make build` (make deploy does)" in lines


def test_the_cost_estimate_prices_every_resource_or_says_why_not(
    each_variant: Synthesized,
) -> None:
    from conveyor.ops.cost import (
        NO_CHARGE,
        NOT_PRICED,
        PRICED_ELSEWHERE,
        Deployment,
        alarm_count,
        estimate,
    )
    from conveyor.topology import CANARY_EVERY_MINUTES, Profile

    kinds = [
        resource["Type"]
        for template in each_variant.templates
        for resource in template.resources.values()
    ]
    canary = CANARY_EVERY_MINUTES if "AWS::Scheduler::Schedule" in kinds else None
    deployment = Deployment(
        profile=Profile.PRIVATE if each_variant.network_template else Profile.LEAN,
        canary_every=canary,
    )
    accounted = set(PRICED_ELSEWHERE) | NO_CHARGE | set(NOT_PRICED)
    assert set(kinds) - accounted == set(), "a resource type the estimate does not know"
    assert not set(PRICED_ELSEWHERE) & NO_CHARGE
    assert kinds.count("AWS::CloudWatch::Alarm") == alarm_count(deployment.topology)
    result = estimate(deployment=deployment)
    for kind in set(kinds) & set(PRICED_ELSEWHERE):
        for line in PRICED_ELSEWHERE[kind]:
            assert any(name.startswith(line) for name in result.lines), (kind, line)
    assert not [r for k, r in NOT_PRICED.items() if k in kinds and r not in result.not_priced]
