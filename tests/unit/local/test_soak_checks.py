"""The soak's bookkeeping: it must find an image in the DLQ the way S3 names it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

from conveyor.local.soak import _order_ids, _upload_ids, fast_topology

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef


def test_upload_ids_are_read_from_url_encoded_s3_event_keys() -> None:
    event = {"Records": [{"s3": {"object": {"key": quote_plus("uploads/abc123.jpg")}}}]}
    messages: list[MessageTypeDef] = [
        {"Body": json.dumps(event)},
        {"Body": "not json"},
        {"Body": "[1]"},
    ]
    assert _upload_ids(messages) == {"abc123"}


def test_order_ids_are_read_from_order_messages() -> None:
    messages: list[MessageTypeDef] = [
        {"Body": json.dumps({"order_id": "o-1"})},
        {"Body": json.dumps({"x": 1})},
    ]
    assert _order_ids(messages) == {"o-1"}


def test_the_soak_topology_keeps_six_times_each_consumers_timeout() -> None:
    topology = fast_topology()
    assert topology.problems() == []
    assert topology.function("images").timeout_s == 8
    assert topology.queue("images").visibility_timeout_s == 48
