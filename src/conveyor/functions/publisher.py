"""``POST /orders``: authenticate the caller, validate the order, publish it.

Answers 202 ``{order_id, status: "accepted"}`` once the order is on the ``orders`` topic.
An order id chosen by the client is its idempotency key: resubmitting it is safe and is
billed once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from conveyor.aws import metrics
from conveyor.aws.clients import client
from conveyor.aws.config import required
from conveyor.core.orders import Order, accept, message_attributes
from conveyor.functions.alb import (
    HttpError,
    answer,
    json_response,
    resolver,
    verified_json,
)

MAX_BODY_BYTES = 64 * 1024

logger = Logger()
app = resolver("/orders", allowed=("POST",), rejected_metric=metrics.ORDERS_REJECTED)


@app.post("/orders")
def create_order() -> Response[str]:
    request = verified_json(
        app,
        Order,
        max_bytes=MAX_BODY_BYTES,
        error="invalid_order",
        what="order",
    )
    request_id, client_id = request.request_id, request.client_id

    accepted = accept(
        request.payload,
        order_id=uuid.uuid4().hex,
        client_id=client_id,
        correlation_id=request_id,
        now=datetime.now(UTC),
    )
    try:
        client("sns").publish(
            TopicArn=required("ORDERS_TOPIC_ARN"),
            Message=accepted.model_dump_json(),
            MessageAttributes=message_attributes(accepted),
        )
    except Exception as exc:
        logger.exception("publish failed", extra={"order_id": accepted.order_id})
        raise HttpError(
            503,
            "unavailable",
            "the order was not accepted; retry with the same order_id",
            order_id=accepted.order_id,
        ) from exc
    metrics.count(metrics.ORDERS_ACCEPTED)
    logger.info("order accepted", extra={"order_id": accepted.order_id, "client_id": client_id})
    return json_response(202, {"order_id": accepted.order_id, "status": "accepted"})


@metrics.published
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return answer(app, event, context)
