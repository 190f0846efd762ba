"""Queries the tests make of the tables: access patterns the indexes serve that no
function needs yet."""

from __future__ import annotations

from typing import Any

from conveyor.aws.dynamo import items


def orders_of_customer(
    dynamodb: Any, table: str, customer_id: str, limit: int = 50
) -> list[dict[str, Any]]:
    """A customer's orders, newest first (GSI ``by_customer``)."""
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
