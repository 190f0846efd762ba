"""``POST /orders``: authenticate the caller, validate the order, publish it once;
``GET /orders/{order_id}``: tell the caller what became of one of its orders.

An order is idempotent on (client, ``order_id``), through Powertools' idempotency
utility over the order's content:

* first request: 202 ``{order_id, status: "accepted"}``, and the order is published;
* an identical retry within 24 h: the same 202 with ``Idempotent-Replayed: true``,
  published once;
* the same key with other content: 409 ``idempotency_conflict``, nothing published;
* a duplicate while the first is still running: 409 ``request_in_progress`` with
  ``Retry-After``.

An order without ``order_id`` gets a generated one and is keyed by its request's
signature, so an exact replay of a captured request gets the first answer and makes no
second order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyInconsistentStateError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from conveyor.aws import metrics, orders_table, tracing
from conveyor.aws.clients import client
from conveyor.aws.config import required
from conveyor.aws.orders_table import Outcome
from conveyor.aws.snapshot import after_restore
from conveyor.core.orders import Order, accept, content_hash, message_attributes
from conveyor.functions.http_edge import (
    Caller,
    HttpEdge,
    HttpError,
    answer,
    json_response,
    trace_carrier,
    verified_get,
    verified_json,
)

MAX_BODY_BYTES = 64 * 1024
IDEMPOTENCY_WINDOW_S = 24 * 3600
RETRY_AFTER_S = 1
REPLAYED = "_replayed"

logger = Logger()
app = HttpEdge(
    {"/orders": ("POST",), "/orders/<order_id>": ("GET",)},
    rejected_metric=metrics.ORDERS_REJECTED,
)
idempotency = IdempotencyConfig(
    event_key_jmespath="key",
    payload_validation_jmespath="content",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_WINDOW_S,
    # A stored answer is marked, so that the caller is told it is a replay.
    response_hook=lambda response, _record: {**response, REPLAYED: True},
)


def idempotency_key(caller: Caller, order: Order) -> str:
    if order.order_id is not None:
        return f"{caller.client_id}#order#{order.order_id}"
    return f"{caller.client_id}#signature#{caller.signature}"


def accept_and_publish(request: dict[str, Any]) -> dict[str, Any]:
    """Record the order as accepted and publish it; the answer the caller gets, stored
    by the idempotency utility for the retries of this request."""
    order = Order.model_validate(request["order"])
    accepted = accept(
        order,
        order_id=uuid.uuid4().hex,
        client_id=request["client_id"],
        correlation_id=request["request_id"],
        now=datetime.now(UTC),
    )
    tracing.annotate(order_id=accepted.order_id)
    written = orders_table.record_accepted(client("dynamodb"), required("ORDERS_TABLE"), accepted)
    if written.outcome is Outcome.CONFLICT:
        # Past the idempotency window, the table still knows the key.
        raise HttpError(
            409,
            "idempotency_conflict",
            f"order {accepted.order_id} was already submitted with other content",
        )
    if written.existing is not None:
        if written.existing["status"] != orders_table.STATUS_ACCEPTED:
            return {"order_id": accepted.order_id, "status": "accepted"}  # done long ago
        # Accepted before but perhaps never published: publish the order as recorded.
        stored_at = datetime.fromisoformat(written.existing["accepted_at"])
        accepted = accepted.model_copy(update={"accepted_at": stored_at})
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
    logger.info(
        "order accepted", extra={"order_id": accepted.order_id, "client_id": accepted.client_id}
    )
    return {"order_id": accepted.order_id, "status": "accepted"}


@cache
def idempotent(table: str, dynamodb: Any) -> Callable[..., dict[str, Any]]:
    """``accept_and_publish`` made idempotent on ``table``, built once per table and
    client (a warm function reuses it; a test with a fresh client gets a fresh one)."""
    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=dynamodb)
    once: Callable[..., dict[str, Any]] = idempotent_function(
        data_keyword_argument="request", config=idempotency, persistence_store=persistence
    )(accept_and_publish)
    return once


after_restore(idempotent.cache_clear)  # it holds a client: made afresh with the clients


@app.post("/orders")
def create_order() -> Response[str]:
    request = verified_json(
        app, Order, max_bytes=MAX_BODY_BYTES, error="invalid_order", what="order"
    )
    caller, order = request.caller, request.payload
    try:
        result = idempotent(required("IDEMPOTENCY_TABLE"), client("dynamodb"))(
            request={
                "key": idempotency_key(caller, order),
                "content": content_hash(order),
                "order": order.model_dump(mode="json"),
                "client_id": caller.client_id,
                "request_id": caller.request_id,
            }
        )
    except IdempotencyValidationError as exc:
        raise HttpError(
            409,
            "idempotency_conflict",
            "this order_id was used in the last 24 h for an order with other content",
        ) from exc
    except (IdempotencyPersistenceLayerError, IdempotencyInconsistentStateError) as exc:
        logger.exception("idempotency store unavailable")
        raise HttpError(503, "unavailable", "the order was not accepted; retry shortly") from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise HttpError(
            409,
            "request_in_progress",
            "the same order is being accepted right now; retry shortly",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from exc
    replayed = bool(result.pop(REPLAYED, False))
    return json_response(202, result, {"Idempotent-Replayed": "true"} if replayed else None)


@app.get("/orders/<order_id>")
def order_status(order_id: str) -> Response[str]:
    caller = verified_get(app)
    item = orders_table.get(
        client("dynamodb"), required("ORDERS_TABLE"), caller.client_id, order_id
    )
    if item is None:
        # Another client's order and no order at all read the same.
        raise HttpError(404, "not_found", "no such order")
    return json_response(200, orders_table.status_view(item))


@metrics.published
@tracing.invocation(carrier=trace_carrier)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)  # in-progress records expire with it
    return answer(app, event, context)
