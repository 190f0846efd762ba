"""The local runtime and the cloud template wire the system the same way.

The local side is read back from what the runtime's provisioner really creates (on
moto, in process), not from the topology, so a drift in either builder shows here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from moto import mock_aws

from conveyor.local.provision import Provisioner, Resources
from conveyor.topology import TOPOLOGY
from tests.infra.conftest import Synthesized

if TYPE_CHECKING:
    from conveyor.aws.clients import ClientFactory

Wiring = dict[str, Any]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wiring]:
    with mock_aws():
        session = boto3.session.Session(
            region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        # boto3-stubs types Session.client for every service; the provisioner needs five.
        factory = cast("ClientFactory", session.client)
        resources = Provisioner(TOPOLOGY, factory).run(client_secret="s" * 32)
        yield read_local(session, resources)


def read_local(session: boto3.session.Session, resources: Resources) -> Wiring:
    sqs, sns, s3 = session.client("sqs"), session.client("sns"), session.client("s3")
    by_url = {url: name for name, url in resources.queues.items()}
    by_arn = {arn: name for name, arn in resources.queue_arns.items()}
    queues = {}
    for url, name in by_url.items():
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes.get("RedrivePolicy", "null") or "null")
        queues[name] = (
            int(attributes["VisibilityTimeout"]) if redrive else None,
            int(attributes["MessageRetentionPeriod"]),
            (by_arn[redrive["deadLetterTargetArn"]], int(redrive["maxReceiveCount"]))
            if redrive
            else None,
        )
    topic_names = {arn: name for name, arn in resources.topics.items()}
    subscriptions = set()
    for sub in sns.list_subscriptions()["Subscriptions"]:
        raw = (
            sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])[
                "Attributes"
            ].get("RawMessageDelivery")
            == "true"
        )
        subscriptions.add((topic_names[sub["TopicArn"]], by_arn[sub["Endpoint"]], raw))
    notifications = set()
    for name, bucket in resources.buckets.items():
        config = s3.get_bucket_notification_configuration(Bucket=bucket)
        for queue in config.get("QueueConfigurations", []):
            [rule] = queue["Filter"]["Key"]["FilterRules"]
            notifications.add(
                (name, by_arn[queue["QueueArn"]], rule["Value"], tuple(queue["Events"]))
            )
    return {"queues": queues, "subscriptions": subscriptions, "notifications": notifications}


def read_cloud(synthesized: Synthesized) -> Wiring:
    app = synthesized.app
    queues = {}
    for name, logical_id in app.named("AWS::SQS::Queue").items():
        props = app.resources[logical_id]["Properties"]
        redrive = props.get("RedrivePolicy")
        queues[name] = (
            props["VisibilityTimeout"] if redrive else None,
            props["MessageRetentionPeriod"],
            (
                app.name_of(redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]),
                redrive["maxReceiveCount"],
            )
            if redrive
            else None,
        )
    subscriptions = {
        (
            app.name_of(s["Properties"]["TopicArn"]["Ref"]),
            app.name_of(s["Properties"]["Endpoint"]["Fn::GetAtt"][0]),
            s["Properties"].get("RawMessageDelivery") is True,
        )
        for s in app.of_type("AWS::SNS::Subscription").values()
    }
    notifications = set()
    for resource in app.of_type("Custom::S3BucketNotifications").values():
        bucket = app.name_of(resource["Properties"]["BucketName"]["Ref"])
        for queue in resource["Properties"]["NotificationConfiguration"]["QueueConfigurations"]:
            [rule] = queue["Filter"]["Key"]["FilterRules"]
            notifications.add(
                (
                    bucket,
                    app.name_of(queue["QueueArn"]["Fn::GetAtt"][0]),
                    rule["Value"],
                    tuple(queue["Events"]),
                )
            )
    return {"queues": queues, "subscriptions": subscriptions, "notifications": notifications}


def cloud_only(local: Wiring) -> Wiring:
    """The local wiring minus what exists only locally (inspection taps)."""
    local_only = {q.name for q in TOPOLOGY.queues if q.local_only}
    local_only |= {q.dlq_name for q in TOPOLOGY.queues if q.local_only}
    return {
        "queues": {k: v for k, v in local["queues"].items() if k not in local_only},
        "subscriptions": {s for s in local["subscriptions"] if s[1] not in local_only},
        "notifications": local["notifications"],
    }


def test_queues_and_redrive_settings_agree(local: Wiring, synthesized: Synthesized) -> None:
    cloud = read_cloud(synthesized)
    assert cloud["queues"] == cloud_only(local)["queues"]
    assert cloud["queues"]["images"] == (360, 86_400, ("images-dlq", 5))


def test_subscriptions_agree_and_deliver_raw(local: Wiring, synthesized: Synthesized) -> None:
    cloud = read_cloud(synthesized)
    assert cloud["subscriptions"] == cloud_only(local)["subscriptions"]
    assert all(raw for _, _, raw in cloud["subscriptions"])


def test_bucket_notifications_agree(local: Wiring, synthesized: Synthesized) -> None:
    cloud = read_cloud(synthesized)
    assert cloud["notifications"] == local["notifications"]
    assert cloud["notifications"] == {("media", "images", "uploads/", ("s3:ObjectCreated:*",))}
