"""AWS clients, created once per process and reused across invocations, and the one way
to tell an expected AWS error from the rest.

boto3 reads ``AWS_ENDPOINT_URL`` itself, so the same code talks to AWS or to an emulator.
The clients carry their boto3-stubs types for the type checker only; nothing of the
stubs is imported at run time, so nothing is added to the Lambda package.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from conveyor.aws.snapshot import after_restore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=10,
    max_pool_connections=20,
)


class ClientFactory(Protocol):
    """What hands out clients by service name: :func:`client` in a function, the local
    runtime's emulator clients on the host."""

    @overload
    def __call__(self, service: Literal["dynamodb"], /) -> DynamoDBClient: ...
    @overload
    def __call__(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def __call__(self, service: Literal["secretsmanager"], /) -> SecretsManagerClient: ...
    @overload
    def __call__(self, service: Literal["sns"], /) -> SNSClient: ...
    @overload
    def __call__(self, service: Literal["sqs"], /) -> SQSClient: ...


@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["s3"]) -> S3Client: ...
@overload
def client(service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
@overload
def client(service: Literal["sns"]) -> SNSClient: ...
@overload
def client(service: Literal["sqs"]) -> SQSClient: ...
def client(service: str) -> Any:
    return _client(service)


@cache
def _client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


@after_restore
def clear_cache() -> None:
    """Forget every client, so the next call builds one from the environment as it is
    now: after a restore from a SnapStart snapshot, and in tests that change the
    endpoint or credentials."""
    _client.cache_clear()


def has_code(error: ClientError, *codes: str) -> bool:
    """Whether an AWS error is one of the expected ``codes`` (the rest are re-raised)."""
    return error.response.get("Error", {}).get("Code", "") in codes
