"""Create every resource the topology declares on the emulator, and say where it is.

The emulator speaks plain HTTP on loopback, so the cloud's TLS-only resource policies
(deny when ``aws:SecureTransport`` is false) are not applied here: moto evaluates bucket
policies and would refuse every call. Everything else matches the cloud stacks.

Provisioning is idempotent: against an emulator that already has the resources (one
named by ``AWS_ENDPOINT_URL``) it finds them and changes nothing, secrets included.
"""

from __future__ import annotations

import dataclasses
import json
import secrets as random_secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from conveyor.aws.clients import has_code
from conveyor.local.emulator import EMULATOR_ACCOUNT
from conveyor.ops.redrive import QueuePair
from conveyor.topology import Kind, Queue, Topology, dlq_of

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import QueueConfigurationTypeDef
    from mypy_boto3_sqs.literals import QueueAttributeNameType

    from conveyor.aws.clients import ClientFactory

DEV_CLIENT_ID = "dev"


@dataclass
class Resources:
    """Where each declared resource lives: logical name -> identifier the SDK uses."""

    prefix: str
    topics: dict[str, str] = field(default_factory=dict)  # ARN
    queues: dict[str, str] = field(default_factory=dict)  # URL
    queue_arns: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)  # table name
    buckets: dict[str, str] = field(default_factory=dict)  # bucket name
    secrets: dict[str, str] = field(default_factory=dict)  # secret ARN

    def by_kind(self) -> dict[Kind, dict[str, str]]:
        """Logical name -> identifier, for each kind of resource."""
        return {
            Kind.TOPIC: self.topics,
            Kind.QUEUE: self.queues,
            Kind.TABLE: self.tables,
            Kind.BUCKET: self.buckets,
            Kind.SECRET: self.secrets,
        }

    def identifier(self, kind: Kind, name: str) -> str:
        return self.by_kind()[kind][name]

    def queue_pair(self, source: str) -> QueuePair:
        """A topology queue and its DLQ, as the redrive tools take them."""
        dead = dlq_of(source)
        return QueuePair(
            name=source,
            source_url=self.queues[source],
            source_arn=self.queue_arns[source],
            dlq_url=self.queues[dead],
            dlq_arn=self.queue_arns[dead],
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Resources:
        return cls(**data)


def _allow_only(
    service: str, queue_arn: str, sources: list[str], account: str | None = None
) -> dict[str, Any]:
    """Let only the named topics or buckets (of this account) send to the queue."""
    condition: dict[str, Any] = {"ArnEquals": {"aws:SourceArn": sources}}
    if account:
        condition["StringEquals"] = {"aws:SourceAccount": account}
    return {
        "Sid": f"AllowOnlyItsSources{service.split('.', maxsplit=1)[0].upper()}",
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": condition,
    }


class Provisioner:
    def __init__(
        self,
        topology: Topology,
        clients: ClientFactory,
        prefix: str = "conveyor",
        account: str = EMULATOR_ACCOUNT,
    ) -> None:
        """``clients(service)`` returns a boto3 client bound to the emulator."""
        self.topology = topology
        self.client = clients
        self.account = account
        self.resources = Resources(prefix=prefix)

    def physical(self, name: str) -> str:
        return f"{self.resources.prefix}-{name}"

    def run(self, client_secret: str | None = None) -> Resources:
        for topic in self.topology.topics:
            self._topic(topic.name)
        for queue in self.topology.queues:
            self._queue(queue)
        for sub in self.topology.subscriptions:
            self._subscribe(sub.topic, sub.queue)
        for table in self.topology.tables:
            self._table(table.name)
        for bucket in self.topology.buckets:
            self._bucket(bucket.name)
        self._notifications()
        for secret in self.topology.secrets:
            self._secret(secret.name, secret.description, client_secret)
        return self.resources

    def _topic(self, name: str) -> None:
        response = self.client("sns").create_topic(
            Name=self.physical(name), Attributes={"KmsMasterKeyId": "alias/aws/sns"}
        )
        self.resources.topics[name] = response["TopicArn"]

    def _create_queue(
        self, name: str, attributes: Mapping[QueueAttributeNameType, str]
    ) -> tuple[str, str]:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=self.physical(name), Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.resources.queues[name] = url
        self.resources.queue_arns[name] = arn
        return url, arn

    def _queue(self, queue: Queue) -> None:
        sse: dict[QueueAttributeNameType, str] = {"SqsManagedSseEnabled": "true"}
        _, dlq_arn = self._create_queue(
            queue.dlq_name,
            {**sse, "MessageRetentionPeriod": str(queue.dead_letter.retention_s)},
        )
        url, arn = self._create_queue(
            queue.name,
            {
                **sse,
                "VisibilityTimeout": str(queue.visibility_timeout_s),
                "MessageRetentionPeriod": str(queue.retention_s),
                "RedrivePolicy": json.dumps(
                    {
                        "deadLetterTargetArn": dlq_arn,
                        "maxReceiveCount": queue.dead_letter.max_receive_count,
                    }
                ),
            },
        )
        statements = []
        topics = [
            self.resources.topics[s.topic]
            for s in self.topology.subscriptions
            if s.queue == queue.name
        ]
        if topics:
            statements.append(_allow_only("sns.amazonaws.com", arn, topics))
        buckets = [
            f"arn:aws:s3:::{self.physical(n.bucket)}"
            for n in self.topology.notifications
            if n.queue == queue.name
        ]
        if buckets:
            statements.append(_allow_only("s3.amazonaws.com", arn, buckets, self.account))
        if statements:
            policy = {"Version": "2012-10-17", "Statement": statements}
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(policy)}
            )

    def _subscribe(self, topic: str, queue: str) -> None:
        self.client("sns").subscribe(
            TopicArn=self.resources.topics[topic],
            Protocol="sqs",
            Endpoint=self.resources.queue_arns[queue],
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )

    def _table(self, name: str) -> None:
        table = next(t for t in self.topology.tables if t.name == name)
        physical = self.physical(name)
        dynamodb = self.client("dynamodb")
        keys = {table.partition_key, *(k for k in [table.sort_key] if k)}
        for index in table.indexes:
            keys.update(k for k in (index.partition_key, index.sort_key) if k)

        def schema(pk: str, sk: str | None) -> list[dict[str, str]]:
            return [{"AttributeName": pk, "KeyType": "HASH"}] + (
                [{"AttributeName": sk, "KeyType": "RANGE"}] if sk else []
            )

        request: dict[str, Any] = {
            "TableName": physical,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": k, "AttributeType": "S"} for k in sorted(keys)
            ],
            "KeySchema": schema(table.partition_key, table.sort_key),
            "SSESpecification": {"Enabled": True},
        }
        if table.indexes:
            request["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": i.name,
                    "KeySchema": schema(i.partition_key, i.sort_key),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for i in table.indexes
            ]
        try:
            dynamodb.create_table(**request)
        except ClientError as exc:
            if not has_code(exc, "ResourceInUseException"):
                raise
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=physical,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
        self.resources.tables[name] = physical

    def _bucket(self, name: str) -> None:
        s3 = self.client("s3")
        physical = self.physical(name)
        try:
            s3.create_bucket(Bucket=physical)
        except ClientError as exc:
            if not has_code(exc, "BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        s3.put_public_access_block(
            Bucket=physical,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_encryption(
            Bucket=physical,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        s3.put_bucket_versioning(Bucket=physical, VersioningConfiguration={"Status": "Enabled"})
        self.resources.buckets[name] = physical

    def _notifications(self) -> None:
        for bucket in self.topology.buckets:
            configurations: list[QueueConfigurationTypeDef] = [
                {
                    "Id": f"{n.queue}-on-{n.prefix.strip('/')}",
                    "QueueArn": self.resources.queue_arns[n.queue],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": n.prefix}]}},
                }
                for n in self.topology.notifications
                if n.bucket == bucket.name
            ]
            if configurations:
                self.client("s3").put_bucket_notification_configuration(
                    Bucket=self.resources.buckets[bucket.name],
                    NotificationConfiguration={"QueueConfigurations": configurations},
                )

    def _secret(self, name: str, description: str, client_secret: str | None) -> None:
        manager = self.client("secretsmanager")
        physical = f"{self.resources.prefix}/{name}"
        try:
            arn = manager.describe_secret(SecretId=physical)["ARN"]
        except ClientError as exc:
            if not has_code(exc, "ResourceNotFoundException"):
                raise
            value = {DEV_CLIENT_ID: [client_secret or random_secrets.token_urlsafe(32)]}
            arn = manager.create_secret(
                Name=physical, Description=description, SecretString=json.dumps(value)
            )["ARN"]
        self.resources.secrets[name] = arn


def dev_credentials(
    clients: ClientFactory, resources: Resources, secret_name: str
) -> tuple[str, str]:
    """The dev client id and its current secret, read back from the emulator."""
    value = clients("secretsmanager").get_secret_value(SecretId=resources.secrets[secret_name])
    table = json.loads(value["SecretString"])
    return DEV_CLIENT_ID, str(table[DEV_CLIENT_ID][-1])
