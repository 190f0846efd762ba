"""The order model, its validation and its pricing.

Amounts are :class:`~decimal.Decimal` end to end: a unit price arrives as a decimal
string, is multiplied exactly, and the total is rounded once, to the currency's minor
unit, with banker's rounding.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from conveyor.core.currencies import MINOR_UNITS
from conveyor.core.validation import Identifier

if TYPE_CHECKING:
    # The shape SNS takes; a type only, nothing of the AWS SDK is imported here.
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

MAX_ITEMS = 100
MAX_QUANTITY = 10_000
MAX_METADATA_KEYS = 32
EVENT_ORDER_ACCEPTED = "order.accepted"

_PRICE = re.compile(r"[0-9]{1,12}(\.[0-9]{1,4})?")
# Matched in full, ASCII digits only: a backslash-d would admit other scripts' digits,
# and a dollar anchor a trailing newline, both of which Decimal() then accepts.


def _parse_price(value: Any) -> Decimal:
    # Only a string keeps the exact value the client meant; a JSON number may already
    # have been rounded by a float somewhere on the way.
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "12.50"')
    if not _PRICE.fullmatch(value):
        raise ValueError("must be a non-negative decimal string with at most 4 decimal places")
    return Decimal(value)


def _known_currency(value: str) -> str:
    if value not in MINOR_UNITS:
        raise ValueError('must be an active ISO 4217 currency code such as "EUR"')
    return value


Price = Annotated[
    Decimal,
    BeforeValidator(_parse_price),
    WithJsonSchema({"type": "string", "pattern": f"^{_PRICE.pattern}$", "examples": ["12.50"]}),
]
Currency = Annotated[
    str,
    StringConstraints(strict=True),
    AfterValidator(_known_currency),
    WithJsonSchema({"type": "string", "enum": sorted(MINOR_UNITS)}),
]
Quantity = Annotated[int, Field(strict=True, gt=0, le=MAX_QUANTITY)]
MetadataKey = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(strict=True, max_length=512)]


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Identifier
    quantity: Quantity
    unit_price: Price


class Order(BaseModel):
    """An order as a client submits it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: Identifier | None = None
    customer_id: Identifier
    currency: Currency
    items: Annotated[list[OrderItem], Field(min_length=1, max_length=MAX_ITEMS)]
    metadata: Annotated[
        dict[MetadataKey, MetadataValue] | None, Field(max_length=MAX_METADATA_KEYS)
    ] = None

    @field_validator("items")
    @classmethod
    def _costs_something(cls, items: list[OrderItem], info: ValidationInfo) -> list[OrderItem]:
        # Prices may be finer than the currency's minor unit; the total may not vanish.
        currency = info.data.get("currency")
        if currency is not None and _total(items, currency) == 0:
            raise ValueError(f"the order's total rounds to 0 {currency}")
        return items


class AcceptedOrder(Order):
    """An order as the publisher puts it on the ``orders`` topic.

    Consumers ignore fields they do not know, so the message can grow without breaking
    the ones already subscribed.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    order_id: Identifier
    client_id: Identifier
    accepted_at: datetime
    correlation_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]


def accept(
    order: Order, *, order_id: str, client_id: str, correlation_id: str, now: datetime
) -> AcceptedOrder:
    return AcceptedOrder(
        **order.model_dump(mode="json", exclude={"order_id"}),
        order_id=order.order_id or order_id,
        client_id=client_id,
        accepted_at=now.astimezone(UTC),
        correlation_id=correlation_id,
    )


def message_attributes(order: AcceptedOrder) -> dict[str, MessageAttributeValueTypeDef]:
    """The SNS message attributes an accepted order is published with, for subscription
    filters and for tracing it across functions."""
    return {
        name: {"DataType": "String", "StringValue": value}
        for name, value in (
            ("event_type", EVENT_ORDER_ACCEPTED),
            ("order_id", order.order_id),
            ("correlation_id", order.correlation_id),
        )
    }


def order_total(order: Order) -> Decimal:
    """Sum of the lines, rounded once to the currency's minor unit."""
    return _total(order.items, order.currency)


def _total(items: list[OrderItem], currency: str) -> Decimal:
    exact = sum((item.unit_price * item.quantity for item in items), Decimal(0))
    return exact.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]), ROUND_HALF_EVEN)


CONTENT_FIELDS = {"customer_id", "currency", "items", "metadata"}
"""What an order is, as opposed to who sent it and when: its idempotency payload."""


def content_hash(order: Order) -> str:
    """A digest of the order's content, the same for a client's retries of one order and
    different for any change to what is bought, for whom or at what price."""
    content = order.model_dump(mode="json", include=CONTENT_FIELDS)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


ARCHIVE_PREFIX = "archive/orders/"

VERIFICATION_CLIENT_PREFIX = "conveyor-verify-"
"""Clients whose ids start with this are verification traffic (``conveyor verify``'s run
clients, the canary's): their orders expire a day after acceptance, in the table by TTL
and in the archive by the bucket's lifecycle, so checks that run every few minutes leave
nothing behind."""
VERIFICATION_RETENTION = timedelta(days=1)
ORDER_EXPIRY_ATTRIBUTE = "expires_at"


def expires_at(client_id: str, accepted_at: datetime) -> int | None:
    """When an order of ``client_id`` expires (epoch seconds, for DynamoDB's TTL): a day
    after acceptance for verification traffic; never for anyone else's."""
    if not client_id.startswith(VERIFICATION_CLIENT_PREFIX):
        return None
    return int((accepted_at + VERIFICATION_RETENTION).timestamp())


def archive_key(order: AcceptedOrder) -> str:
    """Where an order's JSON copy lives, under its client (order ids are the client's
    own); a function of the order alone, so rewrites land on the same key."""
    return archive_key_of(order.client_id, order.order_id, order.accepted_at)


def archive_key_of(client_id: str, order_id: str, accepted_at: datetime) -> str:
    day = accepted_at.astimezone(UTC)
    return f"{ARCHIVE_PREFIX}{client_id}/{day:%Y/%m/%d}/{order_id}.json"
