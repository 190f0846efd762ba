"""The orders table: its item shape and the queries its access patterns need.

Access patterns and the keys that serve them:

* an order by id: partition key ``order_id``;
* a customer's orders, newest first: GSI ``by_customer`` (``customer_id``, ``accepted_at``);
* orders in a status (``billed``, ...): GSI ``by_status`` (``status``, ``accepted_at``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from conveyor.aws.clients import has_code
from conveyor.aws.dynamo import from_attributes, to_attributes
from conveyor.core.orders import AcceptedOrder

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

STATUS_BILLED = "billed"


def billed_item(order: AcceptedOrder, total: Decimal, billed_at: datetime) -> dict[str, Any]:
    item: dict[str, Any] = {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "client_id": order.client_id,
        "currency": order.currency,
        "items": [
            {"sku": i.sku, "quantity": i.quantity, "unit_price": i.unit_price} for i in order.items
        ],
        "total": total,
        "status": STATUS_BILLED,
        "accepted_at": order.accepted_at.isoformat(),
        "billed_at": billed_at.isoformat(),
        "correlation_id": order.correlation_id,
    }
    if order.metadata:
        item["metadata"] = dict(order.metadata)
    return item


def put_new(dynamodb: DynamoDBClient, table: str, item: dict[str, Any]) -> bool:
    """Write the item unless its order is already there; True when this call wrote it."""
    try:
        dynamodb.put_item(
            TableName=table,
            Item=to_attributes(item),
            ConditionExpression="attribute_not_exists(order_id)",
        )
    except ClientError as exc:
        if has_code(exc, "ConditionalCheckFailedException"):
            return False
        raise
    return True


def get(dynamodb: DynamoDBClient, table: str, order_id: str) -> dict[str, Any] | None:
    response = dynamodb.get_item(
        TableName=table, Key={"order_id": {"S": order_id}}, ConsistentRead=True
    )
    raw = response.get("Item")
    return from_attributes(raw)
