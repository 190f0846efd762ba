"""What the local stack holds right now: queue depths and pipeline counts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.aws import images_table, orders_table
from conveyor.aws.dynamo import count_in_status
from conveyor.core.orders import ARCHIVE_PREFIX
from conveyor.local.provision import Resources
from conveyor.topology import ARCHIVE_BUCKET, IMAGES_TABLE, ORDERS_TABLE, Topology

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from conveyor.aws.clients import ClientFactory


@dataclass(frozen=True)
class QueueDepth:
    name: str
    visible: int
    in_flight: int
    dead_letters: int


@dataclass(frozen=True)
class Status:
    queues: tuple[QueueDepth, ...]
    billed: int
    archived: int
    images_processed: int
    images_failed: int

    @property
    def dead_letters(self) -> int:
        return sum(q.dead_letters for q in self.queues)

    @property
    def pending(self) -> int:
        return sum(q.visible + q.in_flight for q in self.queues)

    def since(self, before: Status) -> Status:
        """What happened between ``before`` and this status: counts and dead letters
        added since (a stack that keeps its state holds earlier runs' too); the queues'
        visible and in-flight messages as they are now."""
        earlier = {q.name: q.dead_letters for q in before.queues}
        return Status(
            queues=tuple(
                dataclasses.replace(q, dead_letters=q.dead_letters - earlier.get(q.name, 0))
                for q in self.queues
            ),
            billed=self.billed - before.billed,
            archived=self.archived - before.archived,
            images_processed=self.images_processed - before.images_processed,
            images_failed=self.images_failed - before.images_failed,
        )


def queue_depth(sqs: SQSClient, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of one queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def count_objects(s3: S3Client, bucket: str, prefix: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(int(page.get("KeyCount", 0)) for page in pages)


def runtime_overview(gateway_url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """What only the runtime knows: function invocations and the EMF metric totals."""
    import requests

    response = requests.get(f"{gateway_url}/console/api/overview", timeout=timeout_s)
    response.raise_for_status()
    overview: dict[str, Any] = response.json()
    return overview


def read_status(clients: ClientFactory, resources: Resources, topology: Topology) -> Status:
    sqs = clients("sqs")
    depths = []
    for queue in topology.queues:
        visible, in_flight = queue_depth(sqs, resources.queues[queue.name])
        dead, dead_in_flight = queue_depth(sqs, resources.queues[queue.dlq_name])
        depths.append(QueueDepth(queue.name, visible, in_flight, dead + dead_in_flight))
    return Status(
        queues=tuple(depths),
        billed=count_in_status(
            clients("dynamodb"), resources.tables[ORDERS_TABLE], orders_table.STATUS_BILLED
        ),
        archived=count_objects(clients("s3"), resources.buckets[ARCHIVE_BUCKET], ARCHIVE_PREFIX),
        images_processed=count_in_status(
            clients("dynamodb"), resources.tables[IMAGES_TABLE], images_table.PROCESSED
        ),
        images_failed=count_in_status(
            clients("dynamodb"), resources.tables[IMAGES_TABLE], images_table.FAILED
        ),
    )
