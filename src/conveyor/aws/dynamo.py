"""DynamoDB plumbing the tables share: attribute (de)serialisation and index counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryOutputTypeDef, ScanOutputTypeDef

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attributes(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items()}


def from_attributes(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    return {k: _deserializer.deserialize(v) for k, v in raw.items()} if raw else None


def items(response: QueryOutputTypeDef | ScanOutputTypeDef) -> list[dict[str, Any]]:
    return [i for i in (from_attributes(raw) for raw in response.get("Items", [])) if i]


def newest_in_status(
    dynamodb: DynamoDBClient, table: str, status: str, limit: int, index: str = "by_status"
) -> list[dict[str, Any]]:
    """Up to ``limit`` items under one ``status``, newest first by the index's sort key."""
    return items(
        dynamodb.query(
            TableName=table,
            IndexName=index,
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}},
            ScanIndexForward=False,
            Limit=limit,
        )
    )


def count_in_status(
    dynamodb: DynamoDBClient, table: str, status: str, index: str = "by_status"
) -> int:
    """How many items an index holds under one ``status``, page by page."""
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table,
        IndexName=index,
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}},
        Select="COUNT",
    )
    return sum(int(page["Count"]) for page in pages)
