"""Bill each order from the ``billing`` queue: price it and record it exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from conveyor.aws import metrics, orders_table, tracing
from conveyor.aws.clients import client
from conveyor.aws.config import required
from conveyor.aws.orders_table import Outcome
from conveyor.core.orders import AcceptedOrder, order_total
from conveyor.functions.consumer import (
    CONFLICTING_DUPLICATE,
    correlate,
    handles_records,
    logs_batch,
    parse_or_dead_letter,
    send_to_dead_letter,
)

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


@handles_records()
def bill(record: SQSRecord) -> None:
    correlate(record)
    order = parse_or_dead_letter(record, AcceptedOrder, "order", "billing")
    if order is None:
        return
    tracing.annotate(order_id=order.order_id)
    item = orders_table.billed_item(order, order_total(order), datetime.now(UTC))
    written = orders_table.record_billed(client("dynamodb"), required("ORDERS_TABLE"), item)
    if written.outcome is Outcome.WRITTEN:
        metrics.count(metrics.ORDERS_BILLED)
        logger.info("order billed", extra={"order_id": order.order_id, "total": str(item["total"])})
    elif written.outcome is Outcome.SAME:
        logger.info("order already billed; duplicate delivery", extra={"order_id": order.order_id})
    else:
        # Another order under this client's id: not a duplicate to drop, but a message
        # that can never be billed; the DLQ keeps it, and its alarm tells someone.
        send_to_dead_letter(record, CONFLICTING_DUPLICATE, "billing")


@metrics.published
@tracing.invocation()
@logs_batch
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=bill, processor=processor, context=context
    )
