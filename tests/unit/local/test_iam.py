"""The local IAM check: calls become the requests AWS authorizes, and a role that would
not allow one refuses the call before it is sent, with the service's own error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conveyor.local.iam import (
    Guard,
    Locator,
    Request,
    UnknownCall,
    allows,
    arn,
    requests_for,
    role_policy,
)
from conveyor.local.provision import Resources
from conveyor.local.workers import FunctionPool
from conveyor.topology import TOPOLOGY, Function, Grant, HttpRoute, Kind

RESOURCES = Resources(
    prefix="conveyor",
    topics={"orders": "arn:aws:sns:us-east-1:123456789012:conveyor-orders"},
    queues={
        "billing": "http://127.0.0.1:9/123456789012/conveyor-billing",
        "billing-dlq": "http://127.0.0.1:9/123456789012/conveyor-billing-dlq",
    },
    tables={"orders": "conveyor-orders", "images": "conveyor-images"},
    buckets={"media": "conveyor-media", "archive": "conveyor-archive"},
    secrets={
        "client-secrets": "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
        "conveyor-client-secrets-AbCdEf"
    },
)
WHERE = Locator.of(RESOURCES.by_kind())
MEDIA = "arn:aws:s3:::media"


def requests(service: str, operation: str, **params: Any) -> list[Request]:
    return requests_for(service, operation, params, WHERE)


def test_head_object_is_authorized_as_get_object_and_a_version_as_get_object_version() -> None:
    assert requests("s3", "HeadObject", Bucket="conveyor-media", Key="uploads/a.jpg") == [
        Request("s3:GetObject", f"{MEDIA}/uploads/a.jpg")
    ]
    versioned = requests("s3", "GetObject", Bucket="conveyor-media", Key="k", VersionId="v1")
    assert versioned == [Request("s3:GetObjectVersion", f"{MEDIA}/k")]


@pytest.mark.parametrize(
    "source",
    [
        {"Bucket": "conveyor-media", "Key": "uploads/a b.jpg", "VersionId": "v1"},
        "conveyor-media/uploads/a%20b.jpg?versionId=v1",
    ],
)
def test_copy_object_reads_its_source_and_writes_its_target(source: Any) -> None:
    assert requests(
        "s3", "CopyObject", Bucket="conveyor-media", Key="quarantine/x", CopySource=source
    ) == [
        Request("s3:GetObjectVersion", f"{MEDIA}/uploads/a b.jpg"),
        Request("s3:PutObject", f"{MEDIA}/quarantine/x"),
    ]


def test_a_call_naming_a_kms_key_needs_the_key() -> None:
    found = requests(
        "s3", "PutObject", Bucket="conveyor-archive", Key="k", SSEKMSKeyId="alias/archive"
    )
    key = "arn:aws:kms:us-east-1:123456789012:alias/archive"
    assert Request("kms:GenerateDataKey", key) in found
    assert Request("s3:PutObject", "arn:aws:s3:::archive/k") in found


def test_dynamodb_names_the_index_a_query_reads_and_each_item_of_a_transaction() -> None:
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
    assert requests("dynamodb", "Query", TableName="conveyor-orders", IndexName="by_status") == [
        Request("dynamodb:Query", f"{table}/index/by_status")
    ]
    items = [
        {"Put": {"TableName": "conveyor-orders"}},
        {"ConditionCheck": {"TableName": "conveyor-images"}},
    ]
    assert requests("dynamodb", "TransactWriteItems", TransactItems=items) == [
        Request("dynamodb:PutItem", table),
        Request("dynamodb:ConditionCheckItem", arn(Kind.TABLE, "images")),
    ]


def test_batch_calls_are_authorized_as_their_single_action() -> None:
    url = RESOURCES.queues["billing"]
    assert requests("sqs", "DeleteMessageBatch", QueueUrl=url, Entries=[]) == [
        Request("sqs:DeleteMessage", arn(Kind.QUEUE, "billing"))
    ]


def test_a_secret_is_found_by_its_arn_and_an_undeclared_resource_by_its_own_name() -> None:
    secret = RESOURCES.secrets["client-secrets"]
    assert requests("secretsmanager", "GetSecretValue", SecretId=secret) == [
        Request("secretsmanager:GetSecretValue", arn(Kind.SECRET, "client-secrets"))
    ]
    assert requests("sns", "Publish", TopicArn="arn:aws:sns:us-east-1:1:elsewhere") == [
        Request("sns:Publish", arn(Kind.TOPIC, "elsewhere"))
    ]


def test_a_call_it_cannot_translate_is_unknown_not_allowed() -> None:
    with pytest.raises(UnknownCall, match="s3:ListObjectsV2"):
        requests("s3", "ListObjectsV2", Bucket="conveyor-media")


def statement(action: str, resource: str, effect: str = "Allow") -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


@pytest.mark.parametrize(
    ("pattern", "resource", "allowed"),
    [
        ("arn:aws:s3:::media/uploads/*", "arn:aws:s3:::media/uploads/a/b.jpg", True),
        ("arn:aws:s3:::media/uploads/*", "arn:aws:s3:::media/processed/a.jpg", False),
        ("arn:aws:s3:::media/a?.jpg", "arn:aws:s3:::media/ab.jpg", True),
        ("arn:aws:s3:::media/a?.jpg", "arn:aws:s3:::media/abc.jpg", False),
        # A dot is a dot, not any character.
        ("arn:aws:s3:::media/a.jpg", "arn:aws:s3:::media/aXjpg", False),
        # Resources are case-sensitive.
        ("arn:aws:s3:::media/A.jpg", "arn:aws:s3:::media/a.jpg", False),
    ],
)
def test_resources_match_as_iam_matches_them(pattern: str, resource: str, allowed: bool) -> None:
    rule = policy(statement("s3:GetObject", pattern))
    assert allows(rule, Request("s3:GetObject", resource)) is allowed


def test_actions_are_case_insensitive_and_an_explicit_deny_wins() -> None:
    everything = statement("s3:*", "arn:aws:s3:::media/*")
    assert allows(policy(everything), Request("S3:GetObject", "arn:aws:s3:::media/a"))
    denied = statement("s3:GetObject", "arn:aws:s3:::media/secret/*", "Deny")
    assert not allows(policy(everything, denied), Request("s3:GetObject", f"{MEDIA}/secret/x"))


def test_the_local_role_is_the_topologys_grants_with_the_triggers_needs() -> None:
    billing = TOPOLOGY.function("billing")
    document = role_policy(TOPOLOGY, billing)
    queue = arn(Kind.QUEUE, "billing")
    assert allows(document, Request("sqs:ReceiveMessage", queue))
    assert allows(document, Request("sqs:SendMessage", arn(Kind.QUEUE, "billing-dlq")))
    assert not allows(document, Request("sqs:SendMessage", queue))
    assert not allows(document, Request("sqs:ChangeMessageVisibility", queue))


def guard(tmp_path: Path, *grants: Grant) -> Guard:
    function = Function("billing", "x:y", HttpRoute("/x"), grants=grants)
    return Guard("billing", role_policy(TOPOLOGY, function), WHERE, tmp_path)


def test_a_refused_call_raises_the_services_own_error_and_is_recorded(tmp_path: Path) -> None:
    checked = guard(tmp_path, Grant(Kind.QUEUE, "billing-dlq", ("sqs:SendMessage",)))
    checked.check("sqs", "SendMessage", {"QueueUrl": RESOURCES.queues["billing-dlq"]})
    checked.check("sqs", "SendMessage", {"QueueUrl": RESOURCES.queues["billing-dlq"]})
    with pytest.raises(ClientError) as refused:
        checked.check("sqs", "SendMessage", {"QueueUrl": RESOURCES.queues["billing"]})
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert "not authorized to perform: sqs:SendMessage" in str(refused.value)
    with pytest.raises(ClientError) as table:
        checked.check("dynamodb", "GetItem", {"TableName": "conveyor-orders"})
    assert table.value.response["Error"]["Code"] == "AccessDeniedException"
    lines = [json.loads(x) for x in (tmp_path / "billing.jsonl").read_text().splitlines()]
    assert lines == [
        {"action": "sqs:SendMessage", "resource": arn(Kind.QUEUE, "billing-dlq"), "allowed": True},
        {"action": "sqs:SendMessage", "resource": arn(Kind.QUEUE, "billing"), "allowed": False},
        {"action": "dynamodb:GetItem", "resource": arn(Kind.TABLE, "orders"), "allowed": False},
    ]


def offline_client(service: str) -> Any:
    # Port 9 is closed: a call the guard let through would fail to connect instead.
    return boto3.session.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    ).client(  # type: ignore[call-overload]
        service,
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )


def test_an_attached_client_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    s3 = guard(tmp_path).attach(offline_client("s3"))
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.head_object(Bucket="conveyor-media", Key="uploads/a.jpg")


def test_a_presigned_post_is_checked_as_the_upload_it_allows(tmp_path: Path) -> None:
    upload = Grant(Kind.BUCKET, "media", ("s3:PutObject",), scope="uploads/*")
    s3 = guard(tmp_path, upload).attach(offline_client("s3"))
    post = s3.generate_presigned_post(Bucket="conveyor-media", Key="uploads/a.jpg")
    assert post["fields"]["key"] == "uploads/a.jpg"
    with pytest.raises(ClientError, match=r"s3:PutObject on resource: arn:aws:s3:::media/x\.jpg"):
        s3.generate_presigned_post(Bucket="conveyor-media", Key="x.jpg")


@pytest.mark.parametrize("session", ["default", "own"])
def test_a_worker_applies_its_role_to_clients_of_any_session(tmp_path: Path, session: str) -> None:
    function = Function("billing", "tests.unit.local.calling:send", HttpRoute("/x"), grants=())
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    pool = FunctionPool(function, env, tmp_path, guard(tmp_path))
    pool.start()
    try:
        outcome = pool.invoke({"session": session, "queue_url": RESOURCES.queues["billing-dlq"]})
    finally:
        pool.close()
    assert outcome.result["code"] == "AccessDenied", outcome
    assert "sqs:SendMessage" in outcome.result["message"]
