"""What verify reads of a deployed stack with an operator's credentials (CloudWatch,
Logs, SNS and CloudFormation in moto's in-process mock), and how it reports."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import boto3
import pytest

from conveyor.local.provision import Resources
from conveyor.ops.verification import StackOperator, dead_letter_queues
from conveyor.verify import checks, results
from conveyor.verify.checks import Outcome, Result


def operator(
    resources: Resources, alarm_topic: str | None, groups: list[str] | None
) -> StackOperator:
    return StackOperator(
        boto3.client,
        {"billing-dlq": resources.queues["billing-dlq"]},
        resources.buckets["archive"],
        resources.tables["orders"],
        alarm_topic=alarm_topic,
        log_groups=groups,
    )


def alarm(name: str, topic: str) -> None:
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        MetricName="Errors",
        Namespace="AWS/Lambda",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[topic],
    )


def test_alarms_are_armed_only_when_their_topic_reaches_someone(resources: Resources) -> None:
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="ops")["TopicArn"]
    alarm("conveyor-errors", topic)
    alarm("someone-elses", sns.create_topic(Name="other")["TopicArn"])
    seen = operator(resources, topic, None).alarms()
    assert seen is not None
    assert [(a.name, a.deliverable) for a in seen] == [("conveyor-errors", False)], (
        "only the stack's alarms, and none reaches anyone yet"
    )
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
    queue = boto3.client("sqs").create_queue(QueueName="ops-inbox")["QueueUrl"]
    arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"])
    [armed] = operator(resources, topic, None).alarms() or []
    assert armed.deliverable, "a confirmed subscription reaches someone"


def test_log_groups_without_a_retention_are_named(resources: Resources) -> None:
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="kept")
    logs.put_retention_policy(logGroupName="kept", retentionInDays=30)
    logs.create_log_group(logGroupName="forever")
    found = operator(resources, None, ["kept", "forever", "missing"]).log_retention()
    assert found == {"kept": 30, "forever": None, "missing": None}


def test_in_local_mode_there_are_no_alarms_or_log_groups_to_check(resources: Resources) -> None:
    local = operator(resources, None, None)
    assert local.alarms() is None
    assert local.log_retention() is None


def test_dead_letters_count_visible_and_in_flight_messages(resources: Resources) -> None:
    sqs = boto3.client("sqs")
    url = resources.queues["billing-dlq"]
    sqs.send_message(QueueUrl=url, MessageBody="a")
    sqs.send_message(QueueUrl=url, MessageBody="b")
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    assert operator(resources, None, None).dead_letters() == {"billing-dlq": 2}


def test_the_dead_letter_queues_output_is_read_by_name() -> None:
    urls = "https://sqs/1/conveyor-billing-dlq,https://sqs/1/conveyor-archive-dlq"
    assert dead_letter_queues(urls) == {
        "conveyor-billing-dlq": "https://sqs/1/conveyor-billing-dlq",
        "conveyor-archive-dlq": "https://sqs/1/conveyor-archive-dlq",
    }


FOUND = [
    Result("signed-order-accepted", Outcome.PASS, "accepted", {"status": 202}, 0.1),
    Result("no-dead-letters", Outcome.FAIL, "billing-dlq holds 1", {"billing-dlq": 1}, 0.2),
    Result("alarms-armed", Outcome.SKIP, "local mode has no alarms", {}, 0.0),
]


def test_junit_has_a_case_per_check_with_failures_and_skips() -> None:
    suite = ElementTree.fromstring(results.as_junit(FOUND))  # noqa: S314 - made just above
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {r.name for r in FOUND}
    failure = cases["no-dead-letters"].find("failure")
    assert failure is not None
    assert failure.get("message") == "billing-dlq holds 1"
    assert cases["alarms-armed"].find("skipped") is not None


def test_json_carries_every_check_with_its_evidence() -> None:
    document = json.loads(results.as_json(FOUND, {"id": "run-1"}))
    assert document["summary"] == {"pass": 1, "fail": 1, "skip": 1}
    assert document["checks"][1]["evidence"] == {"billing-dlq": 1}
    assert document["run"] == {"id": "run-1"}


def test_only_and_skip_name_checks_and_an_unknown_name_lists_the_known_ones() -> None:
    assert [c.name for c in checks.chosen(["order-billed"])] == ["order-billed"]
    assert "order-billed" not in [c.name for c in checks.chosen(skip=["order-billed"])]
    with pytest.raises(ValueError, match="no check named nope; the checks are: https-only"):
        checks.chosen(["nope"])


def test_a_check_that_errs_fails_with_what_it_raised_and_the_others_still_run() -> None:
    def broken(target: checks.Target, evidence: dict[str, object]) -> str:
        raise ConnectionError("refused")

    def fine(target: checks.Target, evidence: dict[str, object]) -> str:
        return "fine"

    ran = checks.run(
        None,  # type: ignore[arg-type]  # neither check reads the target
        [checks.Check("errs", False, broken), checks.Check("after", False, fine)],
    )
    assert [(r.name, r.outcome, r.detail) for r in ran] == [
        ("errs", Outcome.FAIL, "ConnectionError: refused"),
        ("after", Outcome.PASS, "fine"),
    ]


class Alarms:
    """An operator who sees the given alarms and nothing else."""

    def __init__(self, *alarms: checks.Alarm) -> None:
        self.seen = list(alarms)

    def alarms(self) -> list[checks.Alarm]:
        return self.seen


@pytest.mark.parametrize(
    ("alarm", "detail"),
    [
        (checks.Alarm("a", "OK", ("arn:topic",), True), None),
        (checks.Alarm("a", "INSUFFICIENT_DATA", ("arn:topic",), True), None),
        (checks.Alarm("a", "ALARM", ("arn:topic",), True), "a is ALARM"),
        (checks.Alarm("a", "OK", (), True), "a reaches no one"),
        (checks.Alarm("a", "OK", ("arn:topic",), False), "a reaches no one"),
    ],
)
def test_an_alarm_in_alarm_or_reaching_no_one_fails_the_alarms_check(
    alarm: checks.Alarm, detail: str | None
) -> None:
    target = checks.Target(None, "", None, None, Alarms(alarm))  # type: ignore[arg-type]
    [result] = checks.run(target, checks.chosen(["alarms-armed"]))
    if detail is None:
        assert result.outcome is Outcome.PASS, result.detail
    else:
        assert (result.outcome, result.detail) == (Outcome.FAIL, detail)
