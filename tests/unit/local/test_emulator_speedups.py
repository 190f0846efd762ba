"""The emulator's speed-ups change how fast moto answers, not what it answers; where moto
answers otherwise than AWS, the emulator answers as AWS does."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from moto import backends, mock_aws
from moto.sqs.models import Queue, SQSBackend
from werkzeug.serving import WSGIRequestHandler

from conveyor.local.emulator import speed_up_moto


@pytest.fixture
def sped_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # Recorded first, so that the patches are undone after the test.
    for owner, name in (
        (backends, "list_of_moto_modules"),
        (SQSBackend, "is_message_valid_based_on_retention_period"),
        (WSGIRequestHandler, "disable_nagle_algorithm"),
        (Queue, "messages"),
        (Queue, "approximate_number_of_messages_not_visible"),
        (Queue, "approximate_number_of_messages_delayed"),
    ):
        monkeypatch.setattr(owner, name, getattr(owner, name))
    before = list(backends.list_of_moto_modules())
    speed_up_moto()
    assert list(backends.list_of_moto_modules()) == before
    assert "sqs" in before


@pytest.mark.usefixtures("sped_up")
def test_messages_past_the_queues_retention_period_are_still_not_delivered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})[
            "QueueUrl"
        ]
        for n in range(3):
            sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
        fresh = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        assert sorted(m["Body"] for m in fresh["Messages"]) == ["m0", "m1", "m2"]
        now = time.time()
        monkeypatch.setattr(time, "time", lambda: now + 61)
        assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)


@pytest.mark.usefixtures("sped_up")
def test_visible_in_flight_and_delayed_messages_are_told_apart_as_before() -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        for n in range(5):
            sqs.send_message(QueueUrl=url, MessageBody=f"visible-{n}")
        for n in range(2):
            sqs.send_message(QueueUrl=url, MessageBody=f"delayed-{n}", DelaySeconds=60)
        taken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=60)
        assert len(taken["Messages"]) == 3
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert counts["ApproximateNumberOfMessages"] == "2"
        assert counts["ApproximateNumberOfMessagesNotVisible"] == "3"
        assert counts["ApproximateNumberOfMessagesDelayed"] == "2"
        rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert sorted(m["Body"] for m in rest) == ["visible-3", "visible-4"]
        assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)


def test_an_unsigned_read_of_an_object_is_refused_as_a_blocked_bucket_refuses_it() -> None:
    from werkzeug.test import Client

    from conveyor.local.emulator import RefuseAnonymous

    served: list[str] = []

    def moto(environ: dict[str, object], start_response: Any) -> list[bytes]:
        served.append(str(environ["PATH_INFO"]))
        start_response("200 OK", [])
        return [b"the object"]

    client = Client(RefuseAnonymous(moto))
    refused = client.get("/media/processed/large/x.jpg")
    assert refused.status_code == 403
    assert b"<Code>AccessDenied</Code>" in refused.data
    assert client.head("/media/processed/large/x.jpg").status_code == 403
    signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/s3/aws4_request"}
    assert client.get("/media/processed/large/x.jpg", headers=signed).status_code == 200
    assert client.get("/media/x.jpg?X-Amz-Signature=abc&X-Amz-Expires=60").status_code == 200
    assert client.post("/media", data=b"form with its policy").status_code == 200
    assert client.get("/moto-api/").status_code == 200
    assert served == ["/media/processed/large/x.jpg", "/media/x.jpg", "/media", "/moto-api/"]
