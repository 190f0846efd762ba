"""The image function with DynamoDB failing every claim, as during a throttling storm.

Every message fails transiently, so the test can watch them retried and then moved to
the DLQ by the queue's redrive policy.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from conveyor.aws import images_table
from conveyor.functions import images


def _throttled(*args: Any, **kwargs: Any) -> Any:
    print(json.dumps({"throttled_claim": True}), flush=True)
    raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")


images_table.claim = _throttled
handler = images.handler
