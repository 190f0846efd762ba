"""AWS clients, created once per process and reused across invocations.

boto3 reads ``AWS_ENDPOINT_URL`` itself, so the same code talks to AWS or to an emulator.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=10,
    max_pool_connections=20,
)


@cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ``ClientError``, or ``""``."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
