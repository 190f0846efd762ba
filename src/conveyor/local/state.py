"""Files a running local stack leaves for the CLI: where it is, and the dev credentials."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config

from conveyor.client import ConveyorClient
from conveyor.local.emulator import EMULATOR_CREDENTIALS, EMULATOR_REGION
from conveyor.local.provision import Resources
from conveyor.topology import DEFAULT_PROFILE, Profile

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

DEFAULT_STATE_DIR = Path(".conveyor")
"""Where the local stack keeps its files unless told otherwise (``CONVEYOR_STATE_DIR``)."""
RUNTIME_FILE = "runtime.json"
CREDENTIALS_FILE = "credentials.json"


def logs_dir(state_dir: Path) -> Path:
    """Where the stack's workers and runtime write their JSON-line logs."""
    return state_dir / "logs"


class NotRunningError(RuntimeError):
    pass


@dataclass(frozen=True)
class RuntimeInfo:
    gateway_url: str
    media_url: str
    emulator_url: str
    resources: Resources
    profile: Profile = DEFAULT_PROFILE
    """Whose edge the gateway behaves as."""

    def save(self, directory: Path) -> None:
        data = {
            "gateway_url": self.gateway_url,
            "media_url": self.media_url,
            "emulator_url": self.emulator_url,
            "resources": self.resources.to_json(),
            "profile": self.profile.value,
        }
        _write_private(directory / RUNTIME_FILE, data)

    @classmethod
    def load(cls, directory: Path) -> RuntimeInfo:
        path = directory / RUNTIME_FILE
        if not path.exists():
            raise NotRunningError(
                f"no local stack is running ({path} does not exist); start one with "
                "`conveyor up` or `make demo`"
            )
        data = json.loads(path.read_text())
        return cls(
            gateway_url=data["gateway_url"],
            media_url=data["media_url"],
            emulator_url=data["emulator_url"],
            resources=Resources.from_json(data["resources"]),
            profile=Profile(data.get("profile", DEFAULT_PROFILE)),
        )


@dataclass(frozen=True)
class Credentials:
    client_id: str
    secret: str
    endpoint: str

    def save(self, directory: Path) -> Path:
        path = directory / CREDENTIALS_FILE
        _write_private(
            path, {"client_id": self.client_id, "secret": self.secret, "endpoint": self.endpoint}
        )
        return path

    def client(self) -> ConveyorClient:
        """A client of the local gateway that signs as the dev client."""
        return ConveyorClient(self.endpoint, self.client_id, self.secret)

    @classmethod
    def load(cls, directory: Path) -> Credentials:
        path = directory / CREDENTIALS_FILE
        if not path.exists():
            raise NotRunningError(
                f"no dev credentials at {path}; start the stack with `conveyor up`"
            )
        data = json.loads(path.read_text())
        return cls(data["client_id"], data["secret"], data["endpoint"])


def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle, indent=2)


_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=32)


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=EMULATOR_REGION,
    )


def _client(endpoint: str, service: str) -> Any:
    return _session().client(  # type: ignore[call-overload]
        service, endpoint_url=endpoint, config=_CLIENT_CONFIG
    )


class EmulatorClients:
    """``clients("sqs")`` and so on, one client per service, bound to one endpoint (creating
    a client is not free: keep them; a new instance gives new clients)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._clients: dict[str, Any] = {}

    @overload
    def __call__(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    def __call__(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def __call__(self, service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
    @overload
    def __call__(self, service: Literal["sns"]) -> SNSClient: ...
    @overload
    def __call__(self, service: Literal["sqs"]) -> SQSClient: ...
    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = _client(self.endpoint, service)
        return self._clients[service]
