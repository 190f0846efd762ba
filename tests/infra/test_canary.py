"""The canary (``-c canary=true``): a scheduled function outside any VPC that may read
the client secrets and nothing more, its two alarms delivered, its price counted; absent
by default."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aws_cdk.assertions import Match
from aws_cdk.assertions import Template as Assertions

from conveyor.local.canary import scheduled_event
from conveyor.topology import CANARY_CLIENTS, CANARY_EVERY_MINUTES, Profile
from tests.infra.conftest import Synthesized, as_list, statements


def test_there_is_no_canary_unless_asked(profiles: dict[Profile, Synthesized]) -> None:
    for synthesized in profiles.values():
        assert not synthesized.app.of_type("AWS::Scheduler::Schedule")
        assert "canary" not in synthesized.app.named("AWS::Lambda::Function")


def test_the_schedule_invokes_the_canary_with_what_the_local_one_sends(
    canaried: dict[Profile, Synthesized],
) -> None:
    for synthesized in canaried.values():
        app = synthesized.app
        [schedule] = app.of_type("AWS::Scheduler::Schedule").values()
        properties = schedule["Properties"]
        assert properties["ScheduleExpression"] == f"rate({CANARY_EVERY_MINUTES} minutes)"
        target = properties["Target"]
        function = app.named("AWS::Lambda::Function")["canary"]
        assert target["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
        sent = json.loads(target["Input"])
        assert sent.keys() == scheduled_event(datetime.now(UTC)).keys()
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
        role = app.resources[target["RoleArn"]["Fn::GetAtt"][0]]
        [assumer] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert assumer["Principal"] == {"Service": "scheduler.amazonaws.com"}
        policies = [
            p
            for p in app.of_type("AWS::IAM::Policy").values()
            if {"Ref": target["RoleArn"]["Fn::GetAtt"][0]} in p["Properties"]["Roles"]
        ]
        [allowed] = [s for p in policies for s in statements(p)]
        assert allowed["Action"] == "lambda:InvokeFunction"
        assert allowed["Resource"] == {"Fn::GetAtt": [function, "Arn"]}, "that function only"


def test_the_canary_runs_outside_the_vpc_and_reads_only_the_client_secrets(
    canaried: dict[Profile, Synthesized],
) -> None:
    for profile, synthesized in canaried.items():
        app = synthesized.app
        function = app.resources[app.named("AWS::Lambda::Function")["canary"]]["Properties"]
        assert "VpcConfig" not in function, f"{profile}: it calls the public edges"
        environment = function["Environment"]["Variables"]
        assert environment["CANARY_CLIENTS"] == ",".join(CANARY_CLIENTS)
        assert {"API_URL", "MEDIA_BASE_URL", "CLIENT_SECRETS_ID"} <= environment.keys()
        assert function["Timeout"] < CANARY_EVERY_MINUTES * 60, "runs never overlap"
        role_id = app.named("AWS::IAM::Role")["canary"]
        assert "ManagedPolicyArns" not in app.resources[role_id]["Properties"]
        actions = sorted(
            action
            for p in app.of_type("AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"]["Roles"]
            for s in statements(p)
            for action in as_list(s["Action"])
        )
        assert actions == [
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "secretsmanager:GetSecretValue",
            # Active tracing's own: its daemon sends the function's spans.
            "xray:PutTelemetryRecords",
            "xray:PutTraceSegments",
        ], profile


def test_a_failed_check_and_a_silent_canary_each_alarm_to_the_ops_topic(
    canaried: dict[Profile, Synthesized],
) -> None:
    for synthesized in canaried.values():
        template = Assertions.from_stack(synthesized.app.stack)
        ops_topic = next(k for k in synthesized.app.of_type("AWS::SNS::Topic") if "OpsTopic" in k)
        common = {
            "Namespace": "Conveyor",
            "Dimensions": [{"Name": "service", "Value": "canary"}],
            "Period": CANARY_EVERY_MINUTES * 60,
            "AlarmActions": [{"Ref": ops_topic}],
        }
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            Match.object_like(
                {
                    **common,
                    "MetricName": "CanaryChecksFailed",
                    "Statistic": "Sum",
                    "ComparisonOperator": "GreaterThanThreshold",
                    "Threshold": 0,
                    "TreatMissingData": "notBreaching",
                }
            ),
        )
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            Match.object_like(
                {
                    **common,
                    "MetricName": "CanaryRuns",
                    "Statistic": "SampleCount",
                    "ComparisonOperator": "LessThanThreshold",
                    "Threshold": 1,
                    "EvaluationPeriods": 3,
                    "TreatMissingData": "breaching",
                }
            ),
        )


def test_the_archive_lets_verification_traffic_expire(synthesized: Synthesized) -> None:
    Assertions.from_stack(synthesized.app.stack).has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Id": "verification-traffic",
                                "Prefix": "archive/orders/conveyor-verify-",
                                "ExpirationInDays": 1,
                                "Status": "Enabled",
                            }
                        )
                    ]
                )
            }
        },
    )
