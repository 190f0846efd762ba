"""A handler for the IAM tests: sends one message through a client made the way its
event says (boto3's default session, or a session of its own, as Powertools makes)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError


def send(event: dict[str, Any], context: Any) -> dict[str, str]:
    if event["session"] == "default":
        sqs = boto3.client("sqs")
    else:
        sqs = boto3.session.Session().client("sqs")
    try:
        sqs.send_message(QueueUrl=event["queue_url"], MessageBody="{}")
    except ClientError as exc:
        return {"code": exc.response["Error"]["Code"], "message": exc.response["Error"]["Message"]}
    return {"code": "sent"}
