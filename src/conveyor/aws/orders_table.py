"""The orders table: its item shape and the writes and reads its access patterns need.

Order ids are chosen by clients, so an order is keyed by its client and its id together:
partition key ``client_id``, sort key ``order_id``. The publisher records an order as
``accepted`` before publishing it; billing turns it into ``billed``. Every item keeps the
digest of the order's content, so a write that meets the same key with other content is
told apart from a duplicate delivery.

Access patterns and the keys that serve them:

* a client's order by id: the table's key;
* a customer's orders, newest first: GSI ``by_customer`` (``customer_id``, ``accepted_at``);
* orders in a status (``billed``, ...): GSI ``by_status`` (``status``, ``accepted_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from conveyor.aws.clients import has_code
from conveyor.aws.dynamo import from_attributes, to_attributes
from conveyor.core.orders import ORDER_EXPIRY_ATTRIBUTE, AcceptedOrder, content_hash, expires_at

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

STATUS_ACCEPTED = "accepted"
STATUS_BILLED = "billed"


class Outcome(StrEnum):
    WRITTEN = "written"
    """This call wrote the item."""
    SAME = "same"
    """The key holds this very order already (a retry or a duplicate delivery)."""
    CONFLICT = "conflict"
    """The key holds another order: same client and id, other content."""


@dataclass(frozen=True)
class Written:
    outcome: Outcome
    existing: dict[str, Any] | None = None
    """The item the key held when this call did not write it."""


def _base_item(order: AcceptedOrder) -> dict[str, Any]:
    item: dict[str, Any] = {
        "client_id": order.client_id,
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "currency": order.currency,
        "accepted_at": order.accepted_at.isoformat(),
        "correlation_id": order.correlation_id,
        "content_hash": content_hash(order),
    }
    # Both the accepted and the billed item carry it: billing writes over the first.
    expiry = expires_at(order.client_id, order.accepted_at)
    if expiry is not None:
        item[ORDER_EXPIRY_ATTRIBUTE] = expiry
    return item


def accepted_item(order: AcceptedOrder) -> dict[str, Any]:
    return {**_base_item(order), "status": STATUS_ACCEPTED}


def billed_item(order: AcceptedOrder, total: Decimal, billed_at: datetime) -> dict[str, Any]:
    item: dict[str, Any] = {
        **_base_item(order),
        "items": [
            {"sku": i.sku, "quantity": i.quantity, "unit_price": i.unit_price} for i in order.items
        ],
        "total": total,
        "status": STATUS_BILLED,
        "billed_at": billed_at.isoformat(),
    }
    if order.metadata:
        item["metadata"] = dict(order.metadata)
    return item


def _put(
    dynamodb: DynamoDBClient, table: str, item: dict[str, Any], condition: str, **values: Any
) -> Written:
    expression: dict[str, Any] = {"ConditionExpression": condition}
    if values:  # DynamoDB refuses empty name and value maps
        expression["ExpressionAttributeNames"] = {"#status": "status"}
        expression["ExpressionAttributeValues"] = to_attributes(values)
    try:
        dynamodb.put_item(TableName=table, Item=to_attributes(item), **expression)
    except ClientError as exc:
        if not has_code(exc, "ConditionalCheckFailedException"):
            raise
        existing = get(dynamodb, table, item["client_id"], item["order_id"])
        if existing is None:  # removed in between: nothing to compare with, try again
            raise
        same = existing.get("content_hash") == item["content_hash"]
        return Written(Outcome.SAME if same else Outcome.CONFLICT, existing)
    return Written(Outcome.WRITTEN)


def record_accepted(dynamodb: DynamoDBClient, table: str, order: AcceptedOrder) -> Written:
    """Record the order as accepted unless its key already holds an order."""
    return _put(dynamodb, table, accepted_item(order), "attribute_not_exists(order_id)")


def record_billed(dynamodb: DynamoDBClient, table: str, item: dict[str, Any]) -> Written:
    """Bill the order: write the billed item over its accepted one, or where there is
    none (an order published before the table knew it), but never over another order or
    over a bill already written."""
    condition = (
        "attribute_not_exists(order_id) OR (#status = :accepted AND content_hash = :content)"
    )
    values = {":accepted": STATUS_ACCEPTED, ":content": item["content_hash"]}
    return _put(dynamodb, table, item, condition, **values)


def get(
    dynamodb: DynamoDBClient, table: str, client_id: str, order_id: str
) -> dict[str, Any] | None:
    response = dynamodb.get_item(
        TableName=table,
        Key={"client_id": {"S": client_id}, "order_id": {"S": order_id}},
        ConsistentRead=True,
    )
    return from_attributes(response.get("Item"))


def status_view(item: dict[str, Any]) -> dict[str, Any]:
    """What ``GET /orders/{order_id}`` tells the client that owns the order."""
    view: dict[str, Any] = {
        "order_id": item["order_id"],
        "status": item["status"],
        "currency": item["currency"],
        "accepted_at": item["accepted_at"],
    }
    if item["status"] == STATUS_BILLED:
        view["total"] = str(item["total"])
        view["billed_at"] = item["billed_at"]
    return view
