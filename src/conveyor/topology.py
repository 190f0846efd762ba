"""The declared wiring of the whole system: the single source of truth.

Names, queues and their dead-letter settings, triggers, routes, and which function may do
what to which resource are declared here once. The local runtime provisions and wires
itself from :data:`TOPOLOGY`; the CDK app builds the cloud stacks from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from conveyor.aws.config import MAX_RECEIVE_COUNT
from conveyor.core.media import PROCESSED_PREFIX, QUARANTINE_PREFIX, UPLOAD_PREFIX
from conveyor.core.orders import ARCHIVE_PREFIX, ORDER_EXPIRY_ATTRIBUTE, VERIFICATION_CLIENT_PREFIX

LAMBDA_PYTHON = "3.12"
"""The Python version of the functions' Lambda runtime (and of the local workers, where
this machine has it)."""
DAY_S = 86_400
VISIBILITY_PER_TIMEOUT = 6
DLQ_SUFFIX = "-dlq"


def dlq_of(queue: str) -> str:
    """The name of a queue's dead-letter queue."""
    return f"{queue}{DLQ_SUFFIX}"


"""AWS's advice: a queue's visibility timeout is at least six times its consumer's timeout."""


class Kind(StrEnum):
    TOPIC = "topic"
    QUEUE = "queue"
    TABLE = "table"
    BUCKET = "bucket"
    SECRET = "secret"  # noqa: S105 - a resource kind


THROTTLE_SAFE_RECEIVES = 5
"""AWS's advice for a queue that triggers a function: a throttled batch counts as a
receive, so allow at least five before the DLQ."""


@dataclass(frozen=True)
class DeadLetter:
    max_receive_count: int = THROTTLE_SAFE_RECEIVES
    retention_s: int = 14 * DAY_S


@dataclass(frozen=True)
class Queue:
    name: str
    visibility_timeout_s: int
    retention_s: int = 4 * DAY_S
    dead_letter: DeadLetter = field(default_factory=DeadLetter)
    local_only: bool = False
    """Exists only in the local runtime (an inspection tap); the cloud stacks skip it."""

    @property
    def dlq_name(self) -> str:
        return dlq_of(self.name)


@dataclass(frozen=True)
class Topic:
    name: str


@dataclass(frozen=True)
class Subscription:
    """A queue subscribed to a topic with raw message delivery."""

    topic: str
    queue: str


@dataclass(frozen=True)
class BucketNotification:
    """S3 tells a queue about objects created under ``prefix``."""

    bucket: str
    queue: str
    prefix: str


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    partition_key: str
    sort_key: str | None = None
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None


@dataclass(frozen=True)
class Bucket:
    name: str


@dataclass(frozen=True)
class Secret:
    name: str
    description: str


@dataclass(frozen=True)
class SqsTrigger:
    """An event source mapping from a queue, with Lambda's SQS settings."""

    queue: str
    batch_size: int = 10
    batching_window_s: int = 0
    report_batch_item_failures: bool = True
    max_concurrency: int = 2


class Profile(StrEnum):
    """Where a deployment's edges are; everything between them is the same topology.

    ``private``: the functions in private subnets reaching AWS through VPC endpoints,
    behind an internal Application Load Balancer. ``lean``: no VPC; an API Gateway HTTP
    API (payload format 2.0) in front of the functions."""

    PRIVATE = "private"
    LEAN = "lean"


DEFAULT_PROFILE = Profile.PRIVATE

GREEDY_PATH_PARAMETER = "proxy"
"""The name of the HTTP API's greedy path variable: ``/orders/{proxy+}``."""


@dataclass(frozen=True)
class HttpRoute:
    """An edge rule: requests for ``path`` and the items under it (``path/{id}``) go to
    the function, which answers 404 and 405 itself."""

    path: str

    @property
    def patterns(self) -> tuple[str, str]:
        """The rule's path patterns, as the load balancer matches them."""
        return (self.path, f"{self.path}/*")

    @property
    def http_api_paths(self) -> tuple[str, str]:
        """The HTTP API's paths for the same rule: the path, and any path under it."""
        return (self.path, f"{self.path}/{{{GREEDY_PATH_PARAMETER}+}}")

    @property
    def route_keys(self) -> tuple[str, str]:
        """The HTTP API's route keys for the rule: every method on each of its paths."""
        collection, items = self.http_api_paths
        return (f"ANY {collection}", f"ANY {items}")

    def route_key(self, path: str) -> str:
        """Which of ``route_keys`` the HTTP API matches for ``path``."""
        return self.route_keys[0] if path == self.path else self.route_keys[1]

    def matches(self, path: str) -> bool:
        """Whether ``patterns`` cover ``path``, as the local gateway routes."""
        return path == self.path or path.startswith(f"{self.path}/")


@dataclass(frozen=True)
class Schedule:
    """EventBridge Scheduler invokes the function every ``every_minutes``."""

    every_minutes: int

    @property
    def expression(self) -> str:
        """The rate, as EventBridge Scheduler writes it."""
        unit = "minute" if self.every_minutes == 1 else "minutes"
        return f"rate({self.every_minutes} {unit})"


Trigger = SqsTrigger | HttpRoute | Schedule


@dataclass(frozen=True)
class Grant:
    """Permission for a function to call ``actions`` on one resource.

    ``env`` names the environment variable through which the function learns the
    resource's identifier (topic ARN, queue URL, table name, bucket name, secret id).
    ``scope`` narrows the resource where IAM allows it: an object-key pattern for a bucket.
    """

    kind: Kind
    resource: str
    actions: tuple[str, ...]
    env: str | None = None
    scope: str = ""
    why_uncalled: tuple[tuple[str, str], ...] = ()
    """(action, reason) for each action the local runtime never calls but AWS needs
    granted; the least-privilege proof (tests/proof) accepts no other unused grant."""


@dataclass(frozen=True)
class Function:
    name: str
    handler: str
    """``module:attribute`` of the Lambda entry point."""
    trigger: Trigger
    grants: tuple[Grant, ...]
    timeout_s: int = 10
    memory_mb: int = 256
    reserved_concurrency: int | None = None
    concurrency: int = 1
    """Worker processes the local runtime runs for this function. A queue consumer gets
    its event source mapping's maximum concurrency: that many pollers invoke it at once."""
    settings: tuple[tuple[str, str], ...] = ()
    """Plain configuration (not resource identifiers) set as environment variables."""
    media_url: bool = False
    """Gets ``MEDIA_BASE_URL``: where processed images are downloaded from."""
    api_url: bool = False
    """Gets ``API_URL``: where clients reach the API."""
    outside_vpc: bool = False
    """Runs outside the VPC in every profile: it calls the public edges, as a client does,
    and the private subnets have no way out to them."""

    @property
    def module(self) -> str:
        return self.handler.split(":", 1)[0]


SQS_CONSUME_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
"""What an SQS event source mapping needs on its queue, on top of a function's grants."""

RUNTIME_SETTINGS = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}
"""Set for every function. The first model pydantic builds in a process looks for plugins
in the entry points of every installed distribution, the Lambda runtime's own included;
no function uses one, and on a cold start the scan is time spent for nothing
(bench/RESULTS.md has what it cost)."""

TRACING_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
"""What active tracing grants every function's role, on ``*`` (X-Ray's writes take no
resource): the X-Ray daemon beside the function sends its spans and its own telemetry
with them. The local stand-in for the daemon checks the first with the function's role
before it keeps a span, as X-Ray would refuse them."""

USED_BY_AWS = {
    "sqs:GetQueueAttributes": "Lambda reads the queue's attributes to create the event "
    "source mapping; the local poller needs none of them",
    "xray:PutTelemetryRecords": "the X-Ray daemon reports its own counters with it; the "
    "local stand-in has none to report",
    "logs:CreateLogStream": "the Lambda runtime writes the function's log with its role",
    "logs:PutLogEvents": "the Lambda runtime writes the function's log with its role",
}
"""Actions a function's role is granted for AWS to use on its behalf, never by its code:
the least-privilege proof (tests/proof) expects no recorded call for them."""


@dataclass(frozen=True)
class Topology:
    topics: tuple[Topic, ...]
    queues: tuple[Queue, ...]
    subscriptions: tuple[Subscription, ...]
    tables: tuple[Table, ...]
    buckets: tuple[Bucket, ...]
    secrets: tuple[Secret, ...]
    functions: tuple[Function, ...]
    notifications: tuple[BucketNotification, ...] = ()
    catch_all: str | None = None
    """The function that answers a request no route matches, where the edge cannot answer
    it itself: the HTTP API's ``$default`` route invokes it, and its resolver answers the
    same JSON 404 that the load balancer's fixed response gives."""

    def queue(self, name: str) -> Queue:
        return _named(self.queues, name)

    def function(self, name: str) -> Function:
        return _named(self.functions, name)

    def sqs_triggered(self) -> Iterator[tuple[Function, SqsTrigger]]:
        for function in self.functions:
            if isinstance(function.trigger, SqsTrigger):
                yield function, function.trigger

    def permissions(self, function: Function) -> tuple[Grant, ...]:
        """Everything the function may do: its grants, and what its trigger needs."""
        if isinstance(function.trigger, SqsTrigger):
            consume = Grant(Kind.QUEUE, function.trigger.queue, SQS_CONSUME_ACTIONS)
            return (*function.grants, consume)
        return function.grants

    def settings(self, function: Function) -> dict[str, str]:
        """The function's plain configuration: what every function runs with
        (:data:`RUNTIME_SETTINGS`), its own settings, and for a queue consumer how many
        receives its queue allows before the DLQ (``MAX_RECEIVE_COUNT``), so it can tell
        its last attempt."""
        settings = {**RUNTIME_SETTINGS, **dict(function.settings)}
        if isinstance(function.trigger, SqsTrigger):
            dead_letter = self.queue(function.trigger.queue).dead_letter
            settings[MAX_RECEIVE_COUNT] = str(dead_letter.max_receive_count)
        return settings

    def scheduled(self) -> Iterator[tuple[Function, Schedule]]:
        for function in self.functions:
            if isinstance(function.trigger, Schedule):
                yield function, function.trigger

    def with_canary(self, every_minutes: int | None = None) -> Topology:
        """This topology with the canary (see :data:`CANARY`), run every ``every_minutes``
        (by default :data:`CANARY_EVERY_MINUTES`)."""
        canary = dataclasses.replace(
            CANARY, trigger=Schedule(every_minutes or CANARY_EVERY_MINUTES)
        )
        others = tuple(f for f in self.functions if f.name != CANARY.name)
        return dataclasses.replace(self, functions=(*others, canary))

    def routes(self) -> Iterator[tuple[Function, HttpRoute]]:
        for function in self.functions:
            if isinstance(function.trigger, HttpRoute):
                yield function, function.trigger

    def resource_names(self, kind: Kind) -> list[str]:
        match kind:
            case Kind.TOPIC:
                return [t.name for t in self.topics]
            case Kind.QUEUE:
                return [q.name for q in self.queues] + [q.dlq_name for q in self.queues]
            case Kind.TABLE:
                return [t.name for t in self.tables]
            case Kind.BUCKET:
                return [b.name for b in self.buckets]
            case Kind.SECRET:
                return [s.name for s in self.secrets]

    def with_timeouts(self, timeouts: Mapping[str, int]) -> Topology:
        """This topology with the named SQS-triggered functions timing out after the given
        seconds, and each one's queue hiding a message VISIBILITY_PER_TIMEOUT times that,
        so that tests and soaks see retries in seconds rather than minutes."""
        queues = {t.queue: timeouts[f.name] for f, t in self.sqs_triggered() if f.name in timeouts}
        return dataclasses.replace(
            self,
            functions=tuple(
                dataclasses.replace(f, timeout_s=timeouts[f.name]) if f.name in timeouts else f
                for f in self.functions
            ),
            queues=tuple(
                dataclasses.replace(q, visibility_timeout_s=VISIBILITY_PER_TIMEOUT * queues[q.name])
                if q.name in queues
                else q
                for q in self.queues
            ),
        )

    def problems(self) -> list[str]:
        """Every inconsistency in the declaration; empty when it is sound."""
        return self._naming_problems() + self._trigger_problems() + self._grant_problems()

    def _naming_problems(self) -> list[str]:
        found = []
        for kind in Kind:
            names = self.resource_names(kind)
            if len(names) != len(set(names)):
                found.append(f"duplicate {kind} names: {sorted(names)}")
        for sub in self.subscriptions:
            if sub.topic not in self.resource_names(Kind.TOPIC):
                found.append(f"subscription to unknown topic {sub.topic}")
            if sub.queue not in self.resource_names(Kind.QUEUE):
                found.append(f"subscription of unknown queue {sub.queue}")
        for note in self.notifications:
            if note.bucket not in self.resource_names(Kind.BUCKET):
                found.append(f"notification from unknown bucket {note.bucket}")
            if note.queue not in self.resource_names(Kind.QUEUE):
                found.append(f"notification to unknown queue {note.queue}")
        return found

    def _trigger_problems(self) -> list[str]:
        found = []
        consumers: set[str] = set()
        for function, trigger in self.sqs_triggered():
            if trigger.queue in consumers:
                found.append(f"queue {trigger.queue} has two consumers")
            consumers.add(trigger.queue)
            found.extend(_mapping_limits(function, trigger))
            if function.concurrency > trigger.max_concurrency:
                found.append(
                    f"{function.name} runs {function.concurrency} local workers, more than its "
                    f"event source mapping's maximum concurrency ({trigger.max_concurrency})"
                )
            queue = next((q for q in self.queues if q.name == trigger.queue), None)
            if queue is None:
                found.append(f"{function.name} is triggered by unknown queue {trigger.queue}")
                continue
            reserved = function.reserved_concurrency or 0
            if (
                queue.dead_letter.max_receive_count < THROTTLE_SAFE_RECEIVES
                and reserved < trigger.max_concurrency
            ):
                # With its mapping's maximum reserved, the function is never throttled
                # for it; without, a throttle can use up the receives of a sound message.
                found.append(
                    f"queue {queue.name} allows {queue.dead_letter.max_receive_count} "
                    f"receives: a throttled batch counts as one, so allow at least "
                    f"{THROTTLE_SAFE_RECEIVES} or reserve {function.name}'s mapping's "
                    "maximum concurrency"
                )
            wanted = VISIBILITY_PER_TIMEOUT * function.timeout_s
            if queue.visibility_timeout_s != wanted:
                found.append(
                    f"queue {queue.name} visibility {queue.visibility_timeout_s}s is not "
                    f"{VISIBILITY_PER_TIMEOUT}x {function.name}'s timeout ({wanted}s)"
                )
        for function, schedule in self.scheduled():
            if not 1 <= schedule.every_minutes <= 1440:
                found.append(f"{function.name} must run every 1..1440 minutes")
            elif function.timeout_s >= schedule.every_minutes * 60:
                found.append(
                    f"{function.name} may run {function.timeout_s} s, not less than its "
                    f"interval ({schedule.every_minutes} min): runs would overlap"
                )
        return found

    def _grant_problems(self) -> list[str]:
        found = []
        routed = {function.name for function, _ in self.routes()}
        if self.catch_all is not None and self.catch_all not in routed:
            found.append(f"the catch-all {self.catch_all} is not a function behind a route")
        for function in self.functions:
            for grant in function.grants:
                if grant.resource not in self.resource_names(grant.kind):
                    found.append(f"{function.name}: unknown {grant.kind} {grant.resource}")
                if any("*" in action for action in grant.actions):
                    found.append(f"{function.name}: wildcard action on {grant.resource}")
        return found


MAX_SQS_WAIT_S = 20
"""SQS's longest ReceiveMessage wait: a batching window beyond it spans several receives."""


def _mapping_limits(function: Function, trigger: SqsTrigger) -> list[str]:
    """What Lambda's CreateEventSourceMapping and PutFunctionConcurrency would refuse."""
    found = []
    name = function.name
    if not 0 <= trigger.batching_window_s <= 300:
        found.append(f"{name} batching window must be 0..300 s")
    # A standard queue takes up to 10 messages a batch, or 10,000 with a batching window.
    largest = 10 if trigger.batching_window_s == 0 else 10_000
    if not 1 <= trigger.batch_size <= largest:
        found.append(f"{name} batch size must be 1..{largest} with this batching window")
    if not 2 <= trigger.max_concurrency <= 1000:
        found.append(f"{name} maximum concurrency must be 2..1000")
    reserved = function.reserved_concurrency
    if reserved is not None and reserved < trigger.max_concurrency:
        found.append(
            f"{name} reserves {reserved} concurrent executions, fewer than its event source "
            f"mapping's maximum concurrency ({trigger.max_concurrency}): the mapping would "
            "be throttled"
        )
    return found


_Named = TypeVar("_Named", Queue, Function)


def _named(items: tuple[_Named, ...], name: str) -> _Named:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {name!r} in the topology")


APP_STACK = "Conveyor-App"
"""The deployed stack that holds the functions, data and outputs (``ClientSecretsArn``)."""
NETWORK_STACK = "Conveyor-Network"
LEAN_STACK = "Conveyor-Lean"
"""The lean profile's one stack: the app stack's contents, outside any VPC. Its own name,
so that it can stand beside a private deployment and never replaces one by mistake."""
APP_STACKS = {Profile.PRIVATE: APP_STACK, Profile.LEAN: LEAN_STACK}
"""The stack that holds the functions, data and outputs, per profile."""
ORDERS_TOPIC = "orders"
ORDERS_TABLE = "orders"
ARCHIVE_BUCKET = "archive"
CLIENT_SECRETS = "client-secrets"
MEDIA_BUCKET = "media"
MEDIA_EVENTS_TOPIC = "media-events"
IMAGES_TABLE = "images"
IDEMPOTENCY_TABLE = "idempotency"
MEDIA_EVENTS_TAP = "media-events-tap"
BILLING_QUEUE = "billing"
ARCHIVE_QUEUE = "archive"
IMAGES_QUEUE = "images"
PUBLISHER_FUNCTION = "publisher"
BILLING_FUNCTION = "billing"
ARCHIVE_FUNCTION = "archive"
PRESIGN_FUNCTION = "presign"
IMAGES_FUNCTION = "images"
CANARY_FUNCTION = "canary"
CANARY_EVERY_MINUTES = 5
CANARY_CLIENTS = (
    f"{VERIFICATION_CLIENT_PREFIX}canary",
    f"{VERIFICATION_CLIENT_PREFIX}canary-other",
)
"""The clients the canary calls as (the second for tenancy): an operator adds them with
``conveyor clients add`` once the stack is deployed; the local stack adds its own."""

_CLIENT_SECRETS_GRANT = Grant(
    Kind.SECRET, CLIENT_SECRETS, ("secretsmanager:GetSecretValue",), env="CLIENT_SECRETS_ID"
)

# The publisher records an order as accepted; billing writes its bill over that record.
# Both read an existing record to tell a retry of the same order from another one.
_ORDERS_TABLE_GRANT = Grant(
    Kind.TABLE, ORDERS_TABLE, ("dynamodb:GetItem", "dynamodb:PutItem"), env="ORDERS_TABLE"
)

TOPOLOGY = Topology(
    topics=(Topic(ORDERS_TOPIC), Topic(MEDIA_EVENTS_TOPIC)),
    queues=(
        Queue(BILLING_QUEUE, visibility_timeout_s=60),
        Queue(ARCHIVE_QUEUE, visibility_timeout_s=60),
        Queue(IMAGES_QUEUE, visibility_timeout_s=360, retention_s=DAY_S),
        Queue(MEDIA_EVENTS_TAP, visibility_timeout_s=30, retention_s=DAY_S, local_only=True),
    ),
    subscriptions=(
        Subscription(ORDERS_TOPIC, BILLING_QUEUE),
        Subscription(ORDERS_TOPIC, ARCHIVE_QUEUE),
        Subscription(MEDIA_EVENTS_TOPIC, MEDIA_EVENTS_TAP),
    ),
    notifications=(BucketNotification(MEDIA_BUCKET, IMAGES_QUEUE, prefix=UPLOAD_PREFIX),),
    catch_all=PUBLISHER_FUNCTION,
    tables=(
        Table(
            ORDERS_TABLE,
            partition_key="client_id",
            sort_key="order_id",
            indexes=(
                Index("by_customer", partition_key="customer_id", sort_key="accepted_at"),
                Index("by_status", partition_key="status", sort_key="accepted_at"),
            ),
            # Only verification traffic's orders carry it (conveyor.core.orders).
            ttl_attribute=ORDER_EXPIRY_ATTRIBUTE,
        ),
        Table(
            IMAGES_TABLE,
            partition_key="image_id",
            indexes=(Index("by_status", partition_key="status", sort_key="updated_at"),),
            ttl_attribute="expires_at",
        ),
        # Powertools' idempotency records: it checks their expiry itself; TTL removes them.
        Table(IDEMPOTENCY_TABLE, partition_key="id", ttl_attribute="expiration"),
    ),
    buckets=(Bucket(ARCHIVE_BUCKET), Bucket(MEDIA_BUCKET)),
    secrets=(
        Secret(CLIENT_SECRETS, "HMAC secrets of the HTTP clients: {client_id: [secret, ...]}"),
    ),
    functions=(
        Function(
            PUBLISHER_FUNCTION,
            handler="conveyor.functions.publisher:handler",
            trigger=HttpRoute("/orders"),
            grants=(
                Grant(Kind.TOPIC, ORDERS_TOPIC, ("sns:Publish",), env="ORDERS_TOPIC_ARN"),
                _ORDERS_TABLE_GRANT,
                # Powertools' idempotency: a conditional put returns the record it found
                # (ReturnValuesOnConditionCheckFailure), so it never needs GetItem.
                Grant(
                    Kind.TABLE,
                    IDEMPOTENCY_TABLE,
                    ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
                    env="IDEMPOTENCY_TABLE",
                ),
                _CLIENT_SECRETS_GRANT,
            ),
            concurrency=4,
            reserved_concurrency=50,
        ),
        Function(
            BILLING_FUNCTION,
            handler="conveyor.functions.billing:handler",
            trigger=SqsTrigger(BILLING_QUEUE),
            concurrency=2,
            reserved_concurrency=2,  # its mapping's maximum: never throttled for it
            grants=(
                _ORDERS_TABLE_GRANT,
                Grant(
                    Kind.QUEUE,
                    dlq_of(BILLING_QUEUE),
                    ("sqs:SendMessage",),
                    env="DEAD_LETTER_QUEUE_URL",
                ),
            ),
        ),
        Function(
            ARCHIVE_FUNCTION,
            handler="conveyor.functions.archive:handler",
            trigger=SqsTrigger(ARCHIVE_QUEUE),
            concurrency=2,
            reserved_concurrency=2,  # its mapping's maximum: never throttled for it
            grants=(
                Grant(
                    Kind.BUCKET,
                    ARCHIVE_BUCKET,
                    ("s3:GetObject", "s3:PutObject"),
                    env="ARCHIVE_BUCKET",
                    scope=f"{ARCHIVE_PREFIX}*",
                ),
                Grant(
                    Kind.QUEUE,
                    dlq_of(ARCHIVE_QUEUE),
                    ("sqs:SendMessage",),
                    env="DEAD_LETTER_QUEUE_URL",
                ),
            ),
        ),
        Function(
            PRESIGN_FUNCTION,
            handler="conveyor.functions.presign:handler",
            trigger=HttpRoute("/uploads"),
            grants=(
                # A presigned POST is signed with the function's own credentials, so the
                # function must be allowed what the upload does.
                Grant(
                    Kind.BUCKET,
                    MEDIA_BUCKET,
                    ("s3:PutObject",),
                    env="MEDIA_BUCKET",
                    scope=f"{UPLOAD_PREFIX}*",
                ),
                Grant(
                    Kind.TABLE,
                    IMAGES_TABLE,
                    ("dynamodb:GetItem", "dynamodb:PutItem"),
                    env="IMAGES_TABLE",
                ),
                _CLIENT_SECRETS_GRANT,
            ),
            media_url=True,
            reserved_concurrency=20,
        ),
        Function(
            IMAGES_FUNCTION,
            handler="conveyor.functions.images:handler",
            trigger=SqsTrigger(IMAGES_QUEUE),
            timeout_s=60,
            memory_mb=1024,
            concurrency=2,
            reserved_concurrency=50,  # a flood of uploads cannot take the whole account
            grants=(
                Grant(
                    Kind.BUCKET,
                    MEDIA_BUCKET,
                    ("s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject"),
                    env="MEDIA_BUCKET",
                    scope=f"{UPLOAD_PREFIX}*",
                    why_uncalled=(
                        (
                            "s3:GetObjectVersion",
                            "the bucket is versioned, so AWS's events name the object's "
                            "version and the function reads that version; the emulator's "
                            "events carry no versionId",
                        ),
                    ),
                ),
                Grant(Kind.BUCKET, MEDIA_BUCKET, ("s3:PutObject",), scope=f"{PROCESSED_PREFIX}*"),
                Grant(Kind.BUCKET, MEDIA_BUCKET, ("s3:PutObject",), scope=f"{QUARANTINE_PREFIX}*"),
                Grant(
                    Kind.TABLE,
                    IMAGES_TABLE,
                    ("dynamodb:GetItem", "dynamodb:UpdateItem"),
                    env="IMAGES_TABLE",
                ),
                Grant(
                    Kind.TOPIC, MEDIA_EVENTS_TOPIC, ("sns:Publish",), env="MEDIA_EVENTS_TOPIC_ARN"
                ),
                Grant(
                    Kind.QUEUE,
                    dlq_of(IMAGES_QUEUE),
                    ("sqs:SendMessage",),
                    env="DEAD_LETTER_QUEUE_URL",
                ),
            ),
            settings=(("MAX_IMAGE_PIXELS", "40000000"),),
        ),
    ),
)

CANARY = Function(
    CANARY_FUNCTION,
    handler="conveyor.functions.canary:handler",
    trigger=Schedule(CANARY_EVERY_MINUTES),
    # It reads the secrets of the clients it calls as, like the functions that check them.
    grants=(_CLIENT_SECRETS_GRANT,),
    timeout_s=240,
    reserved_concurrency=1,  # one run at a time
    settings=(("CANARY_CLIENTS", ",".join(CANARY_CLIENTS)),),
    media_url=True,
    api_url=True,
    outside_vpc=True,
)
"""The canary: the client-side checks of ``conveyor verify`` against its own stack, on a
schedule, one metric per check (``conveyor.functions.canary``). Deployed with
``-c canary=true``, run locally with ``conveyor up --canary``; not in :data:`TOPOLOGY`."""
