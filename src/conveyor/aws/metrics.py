"""What the functions count, as CloudWatch Embedded Metric Format (EMF) lines.

Powertools Metrics writes each metric set as one JSON line on stdout. In the cloud,
CloudWatch Logs turns those lines into metrics with no API call on the hot path; locally
the runtime reads the same lines from the workers' logs (``conveyor.local.emf``).

Every metric carries the ``service`` dimension (the function's name). Counts that are
broken down by a reason carry a ``reason`` dimension too; reasons are the fixed error
codes of the API and of the image checks, so the number of series stays small.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "Conveyor"

ORDERS_ACCEPTED = "OrdersAccepted"
ORDERS_REJECTED = "OrdersRejected"
ORDERS_BILLED = "OrdersBilled"
ORDERS_ARCHIVED = "OrdersArchived"
UPLOADS_PRESIGNED = "UploadsPresigned"
UPLOADS_REJECTED = "UploadsRejected"
IMAGES_PROCESSED = "ImagesProcessed"
IMAGES_FAILED = "ImagesFailed"
IMAGE_PROCESSING_TIME = "ImageProcessingTime"
MESSAGES_DEAD_LETTERED = "MessagesDeadLettered"
CANARY_RUNS = "CanaryRuns"
CANARY_CHECKS_FAILED = "CanaryChecksFailed"
CANARY_CHECK_FAILED = "CanaryCheckFailed"
"""Per check (dimension ``check``): 1 when it failed in a run, 0 when it passed."""

_metrics = Metrics(namespace=NAMESPACE)

Handler = TypeVar("Handler", bound=Callable[..., Any])


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """Count ``value`` of ``name`` in this invocation; broken down by ``dimensions``
    (``reason=...``, ``check=...``), as its own series."""
    if not dimensions:
        _metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return
    # Dimensions belong to a whole metric set: a set of one.
    service = os.environ.get("POWERTOOLS_SERVICE_NAME")
    if service:
        dimensions["service"] = service
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=value,
        namespace=NAMESPACE,
        default_dimensions=dimensions,
    ):
        pass


def milliseconds(name: str, value: float) -> None:
    _metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=round(value, 3))


def published(handler: Handler) -> Handler:
    """Write the invocation's metric set when the handler returns or raises.

    Powertools' ``log_metrics`` warns when a set is empty; an invocation that only
    rejects (a set of one, already written) is normal here, so this flushes only a
    non-empty set.
    """

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        finally:
            if _metrics.metric_set:
                _metrics.flush_metrics()

    return wrapper  # type: ignore[return-value]
