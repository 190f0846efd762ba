"""Tables, buckets and the client secrets, from the topology.

Tables are on-demand with point-in-time recovery, encryption and the topology's GSIs
and TTL. Buckets block public access, deny non-TLS requests, encrypt, version, log
access to the logs bucket and expire what the pipelines leave behind.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, SecretValue, Tags
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from conveyor.core.media import PROCESSED_PREFIX, QUARANTINE_PREFIX, UPLOAD_PREFIX
from conveyor.core.orders import ARCHIVE_PREFIX, VERIFICATION_CLIENT_PREFIX, VERIFICATION_RETENTION
from conveyor.topology import ARCHIVE_BUCKET, MEDIA_BUCKET, Table, Topology

NAME_TAG = "conveyor:name"
"""Every resource declared in the topology carries its topology name in this tag."""

LIFECYCLE: dict[str, list[s3.LifecycleRule]] = {
    MEDIA_BUCKET: [
        s3.LifecycleRule(id="uploads", prefix=UPLOAD_PREFIX, expiration=Duration.days(7)),
        s3.LifecycleRule(id="processed", prefix=PROCESSED_PREFIX, expiration=Duration.days(90)),
        s3.LifecycleRule(id="quarantine", prefix=QUARANTINE_PREFIX, expiration=Duration.days(30)),
        s3.LifecycleRule(
            id="old-versions",
            noncurrent_version_expiration=Duration.days(7),
            abort_incomplete_multipart_upload_after=Duration.days(1),
        ),
    ],
    ARCHIVE_BUCKET: [
        s3.LifecycleRule(
            id="infrequent-access",
            transitions=[
                s3.Transition(
                    storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                    transition_after=Duration.days(30),
                )
            ],
            noncurrent_version_expiration=Duration.days(30),
        ),
        s3.LifecycleRule(
            id="verification-traffic",
            prefix=f"{ARCHIVE_PREFIX}{VERIFICATION_CLIENT_PREFIX}",
            expiration=Duration.days(VERIFICATION_RETENTION.days),
            noncurrent_version_expiration=Duration.days(VERIFICATION_RETENTION.days),
        ),
    ],
}


def _key(name: str | None) -> dynamodb.Attribute | None:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING) if name else None


class Data(Construct):
    def __init__(self, scope: Construct, construct_id: str, topology: Topology) -> None:
        super().__init__(scope, construct_id)
        self.logs = s3.Bucket(
            self,
            "Logs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,  # ALB access logs require SSE-S3
            enforce_ssl=True,
            # CloudFront standard logging writes with ACLs.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.tables = {t.name: self._table(t) for t in topology.tables}
        self.buckets = {b.name: self._bucket(b.name) for b in topology.buckets}
        self.secrets = {
            s.name: secretsmanager.Secret(
                self,
                f"Secret-{s.name}",
                description=s.description,
                # Starts with no client at all; the README says how to add them.
                secret_string_value=SecretValue.unsafe_plain_text("{}"),
            )
            for s in topology.secrets
        }
        for name, secret in self.secrets.items():
            Tags.of(secret).add(NAME_TAG, name)

    def _table(self, table: Table) -> dynamodb.Table:
        resource = dynamodb.Table(
            self,
            f"Table-{table.name}",
            partition_key=_key(table.partition_key),
            sort_key=_key(table.sort_key),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=table.ttl_attribute,
            # Retained when the stack goes, and not deletable by accident while it stays.
            removal_policy=RemovalPolicy.RETAIN,
            deletion_protection=True,
        )
        for index in table.indexes:
            resource.add_global_secondary_index(
                index_name=index.name,
                partition_key=_key(index.partition_key),
                sort_key=_key(index.sort_key),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        Tags.of(resource).add(NAME_TAG, table.name)
        return resource

    def _bucket(self, name: str) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            f"Bucket-{name}",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix=f"s3/{name}/",
            lifecycle_rules=LIFECYCLE.get(name, []),
            removal_policy=RemovalPolicy.RETAIN,
        )
        Tags.of(bucket).add(NAME_TAG, name)
        return bucket
