"""What ``conveyor verify`` needs around the checks: the target (a local stack, a
deployed stack by its outputs, or given by hand), clients made for the run, what an
operator's credentials can read, and the clean-up.

The run's traffic is its own: two clients made for the run (``conveyor-verify-<run id>``
and a second one for tenancy), removed again at the end, and every request's
``X-Request-Id`` starting with ``verify-<run id>``. The orders it made, and their archived
copies, are removed with it where the caller may, and expire a day after otherwise (the
verification clients' orders carry a TTL, and the archive has a lifecycle rule for them);
its idempotency records expire in 24 h and its images, with their variants, by the
bucket's lifecycle and the images table's TTL.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from conveyor.aws.clients import has_code
from conveyor.core.orders import ARCHIVE_PREFIX, archive_key_of
from conveyor.ops import clients as documents
from conveyor.verify.checks import Alarm
from conveyor.verify.http import Api, Client

ClientFactory = Callable[..., Any]
"""A boto3 client for a service: ``clients("sqs")``."""
SECRETS_OUTPUT = "ClientSecretsArn"
STACK_OUTPUTS = (
    "ApiUrl",
    "MediaDomain",
    "ClientSecretsArn",
    "AlarmTopicArn",
    "OrdersTable",
    "ArchiveBucket",
    "DeadLetterQueues",
)
"""What verify reads from a deployed stack's outputs."""


def run_id() -> str:
    """A verification run's id: its date and a random part."""
    return f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


@dataclass
class StackOperator:
    """An operator's view of a deployment, through boto3."""

    clients: ClientFactory
    dead_letter_queues: Mapping[str, str]
    """DLQ name -> URL."""
    archive_bucket: str
    orders_table: str
    alarm_topic: str | None = None
    """Where the alarms publish; ``None`` where there are none (local mode)."""
    log_groups: list[str] | None = None
    """The stack's log groups; ``None`` where there are none (local mode)."""

    def dead_letters(self) -> dict[str, int]:
        depths = {}
        for name, url in self.dead_letter_queues.items():
            attributes = self.clients("sqs").get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            depths[name] = sum(int(v) for v in attributes.values())
        return depths

    def archived(self, client_id: str, order_id: str, accepted_at: str) -> bool:
        from datetime import datetime

        key = archive_key_of(client_id, order_id, datetime.fromisoformat(accepted_at))
        try:
            self.clients("s3").head_object(Bucket=self.archive_bucket, Key=key)
        except ClientError as exc:
            if has_code(exc, "404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def alarms(self) -> list[Alarm] | None:
        if self.alarm_topic is None:
            return None
        cloudwatch, sns = self.clients("cloudwatch"), self.clients("sns")
        found = []
        deliverable: dict[str, bool] = {}
        for page in cloudwatch.get_paginator("describe_alarms").paginate():
            for alarm in page["MetricAlarms"]:
                actions = tuple(alarm.get("AlarmActions", []))
                if self.alarm_topic not in actions:
                    continue
                for action in actions:
                    if action not in deliverable:
                        deliverable[action] = _has_a_subscriber(sns, action)
                found.append(
                    Alarm(
                        alarm["AlarmName"],
                        alarm["StateValue"],
                        actions if alarm.get("ActionsEnabled", True) else (),
                        all(deliverable[a] for a in actions),
                    )
                )
        return found

    def log_retention(self) -> dict[str, int | None] | None:
        if self.log_groups is None:
            return None
        logs = self.clients("logs")
        retention: dict[str, int | None] = {}
        for name in self.log_groups:
            groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
            group = next((g for g in groups if g["logGroupName"] == name), None)
            retention[name] = group.get("retentionInDays") if group else None
        return retention

    def remove_orders_of(self, client_id: str) -> int:
        """Delete a client's orders and their archived copies; how many orders."""
        dynamodb, s3 = self.clients("dynamodb"), self.clients("s3")
        removed = 0
        for page in dynamodb.get_paginator("query").paginate(
            TableName=self.orders_table,
            KeyConditionExpression="client_id = :c",
            ExpressionAttributeValues={":c": {"S": client_id}},
            ProjectionExpression="client_id, order_id",
        ):
            for item in page["Items"]:
                dynamodb.delete_item(TableName=self.orders_table, Key=item)
                removed += 1
        prefix = f"{ARCHIVE_PREFIX}{client_id}/"
        for page in s3.get_paginator("list_object_versions").paginate(
            Bucket=self.archive_bucket, Prefix=prefix
        ):
            for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(
                    Bucket=self.archive_bucket, Key=version["Key"], VersionId=version["VersionId"]
                )
        return removed


def _has_a_subscriber(sns: Any, topic_arn: str) -> bool:
    try:
        pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
        return any(
            s["SubscriptionArn"] not in ("PendingConfirmation", "Deleted")
            for page in pages
            for s in page["Subscriptions"]
        )
    except ClientError:
        return False


@dataclass
class RunClients:
    """The clients a run makes in the client-secrets document, and removes."""

    secretsmanager: Any
    secret_id: str
    made: list[str] = field(default_factory=list)

    def make(self, client_id: str) -> Client:
        secret = documents.edit(
            self.secretsmanager, self.secret_id, lambda d: documents.add(d, client_id)
        )
        self.made.append(client_id)
        return Client(client_id, secret)

    def existing(self, client_id: str) -> Client:
        document = documents.read(self.secretsmanager, self.secret_id)
        if client_id not in document or not document[client_id]:
            raise documents.ClientsError(f"no client {client_id!r} in {self.secret_id}")
        return Client(client_id, document[client_id][-1])

    def remove(self) -> None:
        made = set(self.made)

        def without_them(document: documents.Document) -> None:
            for client_id in made & set(document):
                del document[client_id]

        documents.edit(self.secretsmanager, self.secret_id, without_them)
        self.made.clear()


def wait_until_accepted(api: Api, client: Client, changed_at: float, cache_s: float) -> bool:
    """Until every function instance knows ``client``. Each caches the secrets for
    ``cache_s`` (one answering is no proof for the others), so first that long since the
    change; then a signed read of an order that does not exist must be a 404, not a 401."""
    time.sleep(max(0.0, changed_at + cache_s + 0.5 - time.monotonic()))
    deadline = time.monotonic() + 15
    probe = f"/orders/verify-{api.run_id}-probe"
    while time.monotonic() < deadline:
        if api.call("client-known", "GET", probe, as_client=client).status == 404:
            return True
        time.sleep(1.0)
    return False


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    [found] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


def stack_log_groups(cloudformation: Any, stack: str) -> list[str]:
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
    return [
        r["PhysicalResourceId"]
        for page in pages
        for r in page["StackResourceSummaries"]
        if r["ResourceType"] == "AWS::Logs::LogGroup"
    ]


def dead_letter_queues(joined: str) -> dict[str, str]:
    """The ``DeadLetterQueues`` output (URLs, comma-separated), by queue name."""
    return {url.rsplit("/", 1)[-1]: url for url in joined.split(",") if url}
