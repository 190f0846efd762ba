"""Billing with a bug: it raises on orders from customer ``poison``.

The integration tests run it in place of the billing handler to watch the event source
mapping retry one message of a batch while the rest succeed. It logs each poisoned
attempt, and its failures are logged as the real billing's are (``record failed``), so
the test can read what the worker saw and why the message was dead-lettered.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from conveyor.functions import billing
from conveyor.functions.consumer import handles_records

processor = BatchProcessor(event_type=EventType.SQS)


@handles_records()
def bill_unless_poisoned(record: SQSRecord) -> None:
    if json.loads(record.body).get("customer_id") == "poison":
        print(
            json.dumps({"poisoned_attempt": record.attributes.approximate_receive_count}),
            flush=True,
        )
        raise RuntimeError("poisoned order")
    inspect.unwrap(billing.bill)(record)  # in this record's span, not a second one


def handler(event: dict[str, Any], context: Any) -> Any:
    return process_partial_response(
        event=event, record_handler=bill_unless_poisoned, processor=processor, context=context
    )
