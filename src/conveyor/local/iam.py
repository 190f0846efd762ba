"""IAM, applied locally: a function may make only the calls its role would allow in AWS.

The emulator authorizes nothing, so the local runtime does. Each function's worker (and
its event source mapping, which in AWS polls with the function's role) checks every AWS
call before it is sent: the call becomes the IAM requests AWS would authorize (``HeadObject``
is ``s3:GetObject``; ``CopyObject`` reads its source and writes its target; a query on an
index names the index's ARN; a call naming a KMS key needs the key), and each request must
be allowed by the role's policy, built from the topology's grants as the CDK app builds
it. A request it would not allow fails with the service's own AccessDenied error.

Resources are named by canonical ARNs (the topology's names, the emulator's account and
region), so what one run records can be compared with the synthesized templates. With a
record directory, each worker appends the requests it checked there, one JSON line each;
``tests/proof`` evaluates them against the deployed roles' policies.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from conveyor.local.emulator import EMULATOR_ACCOUNT, EMULATOR_REGION
from conveyor.topology import TRACING_ACTIONS, Function, Kind, Topology

RECORD_ENV = "CONVEYOR_IAM_RECORD"
"""A directory: when set, the local runtime records every IAM request its functions make."""

PRESIGNED_POST = "PresignedPost"
"""The operation name under which a presigned POST is checked: signed with the function's
credentials, the upload is a ``PutObject`` made with its role."""


@dataclass(frozen=True)
class Request:
    """One IAM authorization: an action on a resource ARN."""

    action: str
    resource: str


def arn(kind: Kind, name: str, scope: str = "") -> str:
    """The canonical ARN of a topology resource (``scope``: objects of a bucket, an index
    of a table)."""
    region, account = EMULATOR_REGION, EMULATOR_ACCOUNT
    match kind:
        case Kind.TOPIC:
            return f"arn:aws:sns:{region}:{account}:{name}"
        case Kind.QUEUE:
            return f"arn:aws:sqs:{region}:{account}:{name}"
        case Kind.TABLE:
            table = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
            return f"{table}/index/{scope}" if scope else table
        case Kind.BUCKET:
            return f"arn:aws:s3:::{name}/{scope}" if scope else f"arn:aws:s3:::{name}"
        case Kind.SECRET:
            return f"arn:aws:secretsmanager:{region}:{account}:secret:{name}"


def key_arn(key: str) -> str:
    """A KMS key's ARN from the id, alias or ARN a call names."""
    if key.startswith("arn:"):
        return key
    kind = "" if key.startswith("alias/") else "key/"
    return f"arn:aws:kms:{EMULATOR_REGION}:{EMULATOR_ACCOUNT}:{kind}{key}"


def role_policy(topology: Topology, function: Function) -> dict[str, Any]:
    """The function's role policy, as the CDK app grants it: one statement per grant,
    and active tracing's."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            *(
                {
                    "Effect": "Allow",
                    "Action": list(grant.actions),
                    "Resource": [arn(grant.kind, grant.resource, grant.scope)],
                }
                for grant in topology.permissions(function)
            ),
            {"Effect": "Allow", "Action": list(TRACING_ACTIONS), "Resource": ["*"]},
        ],
    }


@functools.cache  # a role's few patterns, matched on every call its function makes
def _pattern(text: str, *, ignore_case: bool) -> re.Pattern[str]:
    # IAM's two wildcards: * any run of characters, ? exactly one; nothing else is special.
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile("".join(parts), re.IGNORECASE if ignore_case else 0)


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _matches(statement: Mapping[str, Any], request: Request) -> bool:
    # Action names are case-insensitive in IAM; resource ARNs are not.
    actions = _as_list(statement.get("Action", []))
    resources = _as_list(statement.get("Resource", []))
    return any(_pattern(a, ignore_case=True).fullmatch(request.action) for a in actions) and any(
        _pattern(r, ignore_case=False).fullmatch(request.resource) for r in resources
    )


def allows(policy: Mapping[str, Any], request: Request) -> bool:
    """Whether an identity policy of Allow and Deny statements (Action and Resource only,
    no conditions) allows the request: a matching Deny wins, else a matching Allow."""
    statements = policy["Statement"]
    if any(s["Effect"] == "Deny" and _matches(s, request) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, request) for s in statements)


class UnknownCall(LookupError):
    """A call this module cannot translate into IAM requests: it is refused, never let by."""


@dataclass(frozen=True)
class Locator:
    """The canonical ARN of what a call names, from the identifiers the SDK uses locally
    (queue URLs, topic and secret ARNs, physical table and bucket names)."""

    names: Mapping[str, tuple[Kind, str]]
    """Local identifier -> (kind, topology name)."""

    @classmethod
    def of(cls, by_kind: Mapping[Kind, Mapping[str, str]]) -> Locator:
        """From where the local runtime provisioned each resource (``Resources.by_kind``)."""
        return cls(
            {
                identifier: (kind, name)
                for kind, identifiers in by_kind.items()
                for name, identifier in identifiers.items()
            }
        )

    def find(self, kind: Kind, identifier: str, scope: str = "") -> str:
        known = self.names.get(identifier)
        if known is None or known[0] != kind:
            # Not a declared resource: named as itself, which no grant covers.
            return arn(kind, identifier.rsplit("/", 1)[-1].rsplit(":", 1)[-1], scope)
        return arn(kind, known[1], scope)


def _object(where: Locator, bucket: str, key: str) -> str:
    return where.find(Kind.BUCKET, bucket, key)


def _copy_source(source: str | Mapping[str, str]) -> tuple[str, str, bool]:
    if isinstance(source, str):
        path, _, query = source.lstrip("/").partition("?")
        bucket, _, key = path.partition("/")
        return bucket, urllib.parse.unquote(key), "versionId=" in query
    return source["Bucket"], source["Key"], "VersionId" in source


def _s3(operation: str, params: Mapping[str, Any], where: Locator) -> list[Request]:
    bucket, key = params.get("Bucket", ""), params.get("Key", "")
    versioned = "VersionId" in params
    kms = [
        Request(action, key_arn(params["SSEKMSKeyId"]))
        for action in ("kms:GenerateDataKey", "kms:Decrypt")
        if "SSEKMSKeyId" in params
    ]
    match operation:
        case "GetObject" | "HeadObject":
            read = "s3:GetObjectVersion" if versioned else "s3:GetObject"
            return [Request(read, _object(where, bucket, key))]
        case "PutObject" | "PresignedPost":
            return [Request("s3:PutObject", _object(where, bucket, key)), *kms]
        case "CopyObject":
            source_bucket, source_key, source_versioned = _copy_source(params["CopySource"])
            read = "s3:GetObjectVersion" if source_versioned else "s3:GetObject"
            return [
                Request(read, _object(where, source_bucket, source_key)),
                Request("s3:PutObject", _object(where, bucket, key)),
                *kms,
            ]
        case "DeleteObject":
            delete = "s3:DeleteObjectVersion" if versioned else "s3:DeleteObject"
            return [Request(delete, _object(where, bucket, key))]
    raise UnknownCall(f"s3:{operation}")


_DYNAMODB_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def _dynamodb(operation: str, params: Mapping[str, Any], where: Locator) -> list[Request]:
    match operation:
        case "GetItem" | "PutItem" | "UpdateItem" | "DeleteItem" | "Query" | "Scan":
            table = where.find(Kind.TABLE, params["TableName"], params.get("IndexName", ""))
            return [Request(f"dynamodb:{operation}", table)]
        case "TransactWriteItems" | "TransactGetItems":
            return [
                Request(_DYNAMODB_ITEM_ACTIONS[kind], where.find(Kind.TABLE, item["TableName"]))
                for entry in params["TransactItems"]
                for kind, item in entry.items()
            ]
        case "BatchGetItem" | "BatchWriteItem":
            action = "dynamodb:" + operation
            return [Request(action, where.find(Kind.TABLE, t)) for t in params["RequestItems"]]
    raise UnknownCall(f"dynamodb:{operation}")


_SQS_ACTIONS = {
    "SendMessage": "sqs:SendMessage",
    "SendMessageBatch": "sqs:SendMessage",
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessage": "sqs:DeleteMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
}


def requests_for(
    service: str, operation: str, params: Mapping[str, Any], where: Locator
) -> list[Request]:
    """The IAM requests AWS authorizes for one call, with canonical resource ARNs."""
    match service:
        case "s3":
            return _s3(operation, params, where)
        case "dynamodb":
            return _dynamodb(operation, params, where)
        case "sns" if operation == "Publish":
            topic = params.get("TopicArn") or params["TargetArn"]
            return [Request("sns:Publish", where.find(Kind.TOPIC, topic))]
        case "sqs" if operation in _SQS_ACTIONS:
            queue = where.find(Kind.QUEUE, params["QueueUrl"])
            return [Request(_SQS_ACTIONS[operation], queue)]
        case "secretsmanager" if operation in ("GetSecretValue", "DescribeSecret"):
            secret = where.find(Kind.SECRET, params["SecretId"])
            return [Request(f"secretsmanager:{operation}", secret)]
        case "xray" if f"xray:{operation}" in TRACING_ACTIONS:
            return [Request(f"xray:{operation}", "*")]
    raise UnknownCall(f"{service}:{operation}")


_DENIED_CODES = {
    "s3": "AccessDenied",
    "sqs": "AccessDenied",
    "sns": "AuthorizationError",
}


def access_denied(service: str, operation: str, message: str) -> ClientError:
    """The service's own refusal, as boto3 raises it."""
    code = _DENIED_CODES.get(service, "AccessDeniedException")
    status = 400 if code == "AccessDeniedException" else 403
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "HTTPHeaders": {},
                "RequestId": "",
                "HostId": "",
                "RetryAttempts": 0,
            },
        },
        operation,
    )


_signing_post: contextvars.ContextVar[bool] = contextvars.ContextVar("signing_post", default=False)


@dataclass(frozen=True)
class Guard:
    """One function's role, applied to the calls of every client made in its process."""

    function: str
    policy: Mapping[str, Any]
    where: Locator
    record_dir: Path | None = None
    _seen: set[Request] = field(default_factory=set, compare=False, repr=False)

    @property
    def role(self) -> str:
        return f"arn:aws:sts::{EMULATOR_ACCOUNT}:assumed-role/conveyor-{self.function}"

    def check(self, service: str, operation: str, params: Mapping[str, Any]) -> None:
        """Raise the service's AccessDenied unless the role allows every request the call
        makes."""
        try:
            requests = requests_for(service, operation, params, self.where)
        except (UnknownCall, KeyError) as exc:
            raise access_denied(
                service,
                operation,
                f"{self.role} made {service}:{operation}, which conveyor's local IAM check "
                f"cannot translate ({exc}); add it to conveyor.local.iam",
            ) from exc
        for request in requests:
            allowed = allows(self.policy, request)
            self._record(request, allowed)
            if not allowed:
                raise access_denied(
                    service,
                    operation,
                    f"User: {self.role} is not authorized to perform: {request.action} on "
                    f"resource: {request.resource} because no identity-based policy allows "
                    f"the {request.action} action",
                )

    def _record(self, request: Request, allowed: bool) -> None:
        if self.record_dir is None or request in self._seen:
            return
        self._seen.add(request)
        record = {"action": request.action, "resource": request.resource, "allowed": allowed}
        line = json.dumps(record) + "\n"
        path = self.record_dir / f"{self.function}.jsonl"
        # One O_APPEND write per line: the function's workers share the file.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def attach(self, client: Any) -> Any:
        """Check every call ``client`` makes (and, for S3, every presigned POST it signs)."""
        service = client.meta.service_model.service_name

        def before_call(params: Mapping[str, Any], model: Any, **_: Any) -> None:
            if not _signing_post.get():
                self.check(service, model.name, params)

        client.meta.events.register("provide-client-params", before_call)
        if service == "s3":
            client.generate_presigned_post = self._checked_post(client.generate_presigned_post)
        return client

    def _checked_post(self, sign: Callable[..., Any]) -> Callable[..., Any]:
        # AWS refuses such an upload when it arrives; the emulator would take it, so the
        # role is checked when the function signs.
        @functools.wraps(sign)
        def presigned_post(Bucket: str, Key: str, *args: Any, **kwargs: Any) -> Any:
            self.check("s3", PRESIGNED_POST, {"Bucket": Bucket, "Key": Key})
            # Signing borrows CreateBucket's parameter events; it is not that call.
            token = _signing_post.set(True)
            try:
                return sign(Bucket, Key, *args, **kwargs)
            finally:
                _signing_post.reset(token)

        return presigned_post

    def install(self) -> None:
        """Attach to every client this process creates, through any boto3 session."""
        import botocore.session

        create = botocore.session.Session.create_client

        @functools.wraps(create)
        def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
            return self.attach(create(session, *args, **kwargs))

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign,assignment]
