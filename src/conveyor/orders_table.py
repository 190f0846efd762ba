"""The orders table: its item shape and the queries its access patterns need.

Access patterns and the keys that serve them:

* an order by id: partition key ``order_id``;
* a customer's orders, newest first: GSI ``by_customer`` (``customer_id``, ``accepted_at``);
* orders in a status (``billed``, ...): GSI ``by_status`` (``status``, ``accepted_at``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from conveyor.aws import error_code
from conveyor.core.orders import AcceptedOrder
from conveyor.dynamo import from_attributes, items, to_attributes

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


def put_new(dynamodb: Any, table: str, item: dict[str, Any]) -> bool:
    """Write the item unless its order is already there; True when this call wrote it."""
    try:
        dynamodb.put_item(
            TableName=table,
            Item=to_attributes(item),
            ConditionExpression="attribute_not_exists(order_id)",
        )
    except Exception as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def get(dynamodb: Any, table: str, order_id: str) -> dict[str, Any] | None:
    response = dynamodb.get_item(
        TableName=table, Key={"order_id": {"S": order_id}}, ConsistentRead=True
    )
    raw = response.get("Item")
    return from_attributes(raw)


def of_customer(
    dynamodb: Any, table: str, customer_id: str, limit: int = 50
) -> list[dict[str, Any]]:
    """A customer's orders, newest first."""
    return items(
        dynamodb.query(
            TableName=table,
            IndexName="by_customer",
            KeyConditionExpression="customer_id = :c",
            ExpressionAttributeValues={":c": {"S": customer_id}},
            ScanIndexForward=False,
            Limit=limit,
        )
    )
