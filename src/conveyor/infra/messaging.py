"""Topics, queues with their DLQs, subscriptions and bucket notifications.

Every queue is encrypted, refuses non-TLS requests, and accepts messages only from the
topics subscribed to it or the bucket that notifies it (``aws:SourceArn``, and
``aws:SourceAccount`` for S3).
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces.aws_s3 import IBucketRef
from constructs import Construct

from conveyor.infra.data import NAME_TAG, Data
from conveyor.topology import Queue, Topology


@jsii.implements(s3.IBucketNotificationDestination)
class QueueFromBucket:
    """An S3 notification target whose queue policy also pins the source account.

    CDK's own SQS destination conditions only on the bucket ARN; bucket ARNs carry no
    account, so ``aws:SourceAccount`` is what ties the bucket to this account.
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self.queue = queue

    def bind(self, scope: Construct, bucket: IBucketRef) -> s3.BucketNotificationDestinationConfig:
        queue = self.queue
        queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowOnlyItsBucket",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                resources=[queue.queue_arn],
                conditions={
                    "ArnEquals": {"aws:SourceArn": bucket.bucket_ref.bucket_arn},
                    "StringEquals": {"aws:SourceAccount": Stack.of(scope).account},
                },
            )
        )
        return s3.BucketNotificationDestinationConfig(
            arn=queue.queue_arn,
            type=s3.BucketNotificationDestinationType.QUEUE,
            dependencies=[queue],
        )


class Messaging(Construct):
    def __init__(self, scope: Construct, construct_id: str, topology: Topology, data: Data) -> None:
        super().__init__(scope, construct_id)
        sns_key = kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns")
        self.topics = {}
        for topic in topology.topics:
            resource = sns.Topic(self, f"Topic-{topic.name}", master_key=sns_key, enforce_ssl=True)
            Tags.of(resource).add(NAME_TAG, topic.name)
            self.topics[topic.name] = resource
        self.queues: dict[str, sqs.Queue] = {}
        for queue in topology.queues:
            if not queue.local_only:
                self._queue(queue)
        for sub in topology.subscriptions:
            if sub.queue in self.queues:
                # Adds the queue policy statement conditioned on aws:SourceArn = the topic.
                self.topics[sub.topic].add_subscription(
                    subscriptions.SqsSubscription(self.queues[sub.queue], raw_message_delivery=True)
                )
        for note in topology.notifications:
            data.buckets[note.bucket].add_event_notification(
                s3.EventType.OBJECT_CREATED,
                QueueFromBucket(self.queues[note.queue]),
                s3.NotificationKeyFilter(prefix=note.prefix),
            )

    def _queue(self, queue: Queue) -> None:
        dlq = sqs.Queue(
            self,
            f"Queue-{queue.dlq_name}",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.seconds(queue.dead_letter.retention_s),
        )
        source = sqs.Queue(
            self,
            f"Queue-{queue.name}",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(queue.visibility_timeout_s),
            retention_period=Duration.seconds(queue.retention_s),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dlq, max_receive_count=queue.dead_letter.max_receive_count
            ),
        )
        Tags.of(dlq).add(NAME_TAG, queue.dlq_name)
        Tags.of(source).add(NAME_TAG, queue.name)
        self.queues[queue.name] = source
        self.queues[queue.dlq_name] = dlq
