"""Order validation (property-based) and pricing with Decimal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from conveyor.core.currencies import MINOR_UNITS
from conveyor.core.orders import (
    AcceptedOrder,
    Order,
    accept,
    archive_key,
    order_total,
)
from conveyor.core.validation import field_errors, strict_json

identifiers = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
prices = st.decimals(min_value=0, max_value=Decimal("999999999999.9999"), places=4).map(
    lambda d: format(d.normalize(), "f")
)
items = st.fixed_dictionaries(
    {"sku": identifiers, "quantity": st.integers(1, 10_000), "unit_price": prices}
)


paying_items = st.fixed_dictionaries(
    {
        "sku": identifiers,
        "quantity": st.integers(1, 10_000),
        "unit_price": st.decimals(min_value=1, max_value=999_999, places=4).map(
            lambda d: format(d.normalize(), "f")
        ),
    }
)
valid_orders = st.fixed_dictionaries(
    {
        "customer_id": identifiers,
        "currency": st.sampled_from(sorted(MINOR_UNITS)),
        # The first line costs at least 1 in any currency: no total rounds to zero.
        "items": st.tuples(paying_items, st.lists(items, max_size=99)).map(lambda t: [t[0], *t[1]]),
    },
    optional={
        "order_id": identifiers,
        "metadata": st.dictionaries(
            st.text(min_size=1, max_size=64), st.text(max_size=512), max_size=32
        ),
    },
)


@settings(max_examples=200)
@given(valid_orders)
def test_any_valid_order_round_trips(raw: dict[str, Any]) -> None:
    order = Order.model_validate_json(json.dumps(raw))
    again = order.model_dump(mode="json", exclude_none=True)
    assert again == {
        **raw,
        "items": [{**i, "unit_price": str(Decimal(i["unit_price"]))} for i in raw["items"]],
    }
    assert Order.model_validate_json(json.dumps(again)) == order


def _required_field_mutations() -> st.SearchStrategy[tuple[str, Any]]:
    """(path, replacement) pairs; None as replacement deletes the field."""
    wrong = st.one_of(
        st.none(), st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.integers())
    )
    return st.one_of(
        st.tuples(st.sampled_from(["customer_id", "currency", "items"]), st.just(None)),
        st.tuples(
            st.just("customer_id"),
            st.one_of(wrong, st.just(""), st.just("has space"), st.just("x" * 65)),
        ),
        st.tuples(
            st.just("currency"),
            st.one_of(wrong, st.sampled_from(["eur", "EURO", "XAU", "ZZZ", ""])),
        ),
        st.tuples(st.just("items"), st.one_of(wrong, st.just([]), st.just([{}]))),
        st.tuples(st.just("items.0.sku"), st.one_of(wrong, st.just(""), st.just("a/b"))),
        st.tuples(
            st.just("items.0.quantity"),
            st.one_of(
                st.integers(max_value=0),
                st.integers(min_value=10_001),
                st.just("2"),
                st.just(2.5),
                st.just(True),
            ),
        ),
        st.tuples(
            st.just("items.0.unit_price"),
            st.one_of(
                st.floats(allow_nan=False),
                st.integers(),
                st.just("-1.00"),
                st.just("1.23456"),
                st.just("1e3"),
                st.just("NaN"),
                st.just(""),
                st.just(" 1.00"),
                st.just("1.00\n"),
                st.just("\u0661\u0662"),
            ),
        ),
    )


@settings(max_examples=300)
@given(valid_orders, _required_field_mutations())
def test_any_mutation_of_a_required_field_is_rejected(
    raw: dict[str, Any], mutation: tuple[str, Any]
) -> None:
    path, replacement = mutation
    *parents, leaf = path.split(".")
    target: Any = raw
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if replacement is None and not parents:
        del target[leaf]
    else:
        target[leaf] = replacement
    with pytest.raises(ValidationError) as caught:
        Order.model_validate_json(json.dumps(raw))
    assert field_errors(caught.value), "a rejection must name at least one field"


def test_unknown_fields_are_rejected_so_typos_are_not_silently_dropped() -> None:
    body = {
        "customer_id": "c",
        "currency": "EUR",
        "items": [{"sku": "a", "quantity": 1, "unit_price": "1", "qty": 2}],
    }
    with pytest.raises(ValidationError) as caught:
        Order.model_validate_json(json.dumps(body))
    assert field_errors(caught.value) == [
        {"field": "items.0.qty", "message": "Extra inputs are not permitted"}
    ]


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"a":' * 300])
def test_bodies_that_are_not_an_order_object_are_rejected(body: bytes) -> None:
    with pytest.raises(ValidationError):
        Order.model_validate_json(body)


def _order(currency: str, *lines: tuple[int, str]) -> Order:
    return Order(
        customer_id="c",
        currency=currency,
        items=[
            {"sku": f"s{i}", "quantity": q, "unit_price": p}  # type: ignore[misc]
            for i, (q, p) in enumerate(lines)
        ],
    )


@pytest.mark.parametrize(
    ("currency", "lines", "total"),
    [
        ("EUR", [(3, "0.10")], Decimal("0.30")),  # a float would give 0.30000000000000004
        ("EUR", [(1, "0.025")], Decimal("0.02")),  # half to even
        ("EUR", [(1, "0.015")], Decimal("0.02")),
        ("JPY", [(2, "150.5")], Decimal("301")),
        ("BHD", [(1, "1.2345")], Decimal("1.234")),  # three minor units; 0.0005 to even
        ("USD", [(10_000, "999999999999.9999")], Decimal("9999999999999999.00")),
    ],
)
def test_totals_are_exact_decimals_rounded_once_to_the_minor_unit(
    currency: str, lines: list[tuple[int, str]], total: Decimal
) -> None:
    result = order_total(_order(currency, *lines))
    assert result == total
    assert result.as_tuple().exponent == -MINOR_UNITS[currency]


def test_accepting_keeps_the_clients_order_id_and_stamps_the_rest() -> None:
    order = Order.model_validate_json(
        json.dumps(
            {
                "order_id": "mine-1",
                "customer_id": "c",
                "currency": "EUR",
                "items": [{"sku": "a", "quantity": 1, "unit_price": "1.50"}],
            }
        )
    )
    accepted = accept(
        order,
        order_id="generated",
        client_id="shop",
        correlation_id="r-1",
        now=datetime(2026, 3, 9, 23, 59, tzinfo=UTC),
    )
    assert accepted.order_id == "mine-1"
    assert accepted.client_id == "shop"
    assert AcceptedOrder.model_validate_json(accepted.model_dump_json()) == accepted
    assert archive_key(accepted) == "archive/orders/shop/2026/03/09/mine-1.json"


def test_a_generated_order_id_is_used_when_the_client_gives_none() -> None:
    order = _order("EUR", (1, "1"))
    accepted = accept(
        order, order_id="gen-1", client_id="shop", correlation_id="r", now=datetime.now(UTC)
    )
    assert accepted.order_id == "gen-1"


def test_consumers_ignore_fields_added_to_the_message_later() -> None:
    accepted = accept(
        _order("EUR", (1, "1")),
        order_id="o",
        client_id="shop",
        correlation_id="r",
        now=datetime.now(UTC),
    )
    grown = {**json.loads(accepted.model_dump_json()), "loyalty_tier": "gold"}
    assert AcceptedOrder.model_validate_json(json.dumps(grown)) == accepted


@pytest.mark.parametrize("number", ["2.0", "9999.99999999999999", "1e3", "2.5", '"2"', "true"])
def test_integer_fields_take_json_integers_only(number: str) -> None:
    body = (
        '{"customer_id": "c", "currency": "EUR", '
        f'"items": [{{"sku": "a", "quantity": {number}, "unit_price": "1"}}]}}'
    ).encode()
    with pytest.raises(ValidationError) as raised:
        Order.model_validate(strict_json(body))
    assert [e["field"] for e in field_errors(raised.value)] == ["items.0.quantity"]
    with pytest.raises(ValidationError):
        Order.model_validate_json(body)


def test_a_json_integer_is_accepted() -> None:
    body = (
        b'{"customer_id": "c", "currency": "EUR", '
        b'"items": [{"sku": "a", "quantity": 2, "unit_price": "1"}]}'
    )
    assert Order.model_validate(strict_json(body)).items[0].quantity == 2


@pytest.mark.parametrize(
    "body",
    [
        b'{"customer_id": "c", "currency": "EUR", "currency": "JPY", "items": []}',
        b'{"customer_id": "c", "items": [{"sku": "a", "sku": "b"}]}',
    ],
)
def test_a_duplicate_key_anywhere_is_an_error_not_last_wins(body: bytes) -> None:
    with pytest.raises(ValueError, match="more than once"):
        strict_json(body)


def test_json_nested_past_the_parsers_depth_is_an_error_not_a_crash() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        strict_json(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_are_errors(constant: str) -> None:
    with pytest.raises(ValueError, match="not JSON"):
        strict_json(f'{{"quantity": {constant}}}'.encode())


@pytest.mark.parametrize(
    ("currency", "price", "quantity"),
    [("JPY", "0.5", 1), ("EUR", "0.001", 4), ("EUR", "0", 3), ("BHD", "0.0004", 1)],
)
def test_an_order_whose_total_rounds_to_zero_is_refused(
    currency: str, price: str, quantity: int
) -> None:
    with pytest.raises(ValidationError) as raised:
        _order(currency, (quantity, price))
    [error] = field_errors(raised.value)
    assert error["field"] == "items"
    assert f"rounds to 0 {currency}" in error["message"]


def test_prices_finer_than_the_minor_unit_are_fine_when_the_total_is_not_zero() -> None:
    assert order_total(_order("JPY", (3, "0.5"))) == Decimal("2")  # 1.5 to even
    assert order_total(_order("EUR", (1, "0.0049"), (1, "0.0100"))) == Decimal("0.01")


def test_only_verification_clients_orders_expire_a_day_after_acceptance() -> None:
    from datetime import UTC, datetime

    from conveyor.core.orders import VERIFICATION_CLIENT_PREFIX, expires_at

    accepted = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    canary = expires_at(f"{VERIFICATION_CLIENT_PREFIX}canary", accepted)
    assert canary == int(accepted.timestamp()) + 86_400
    assert expires_at("shop-frontend", accepted) is None
    assert expires_at("verify-lookalike", accepted) is None, "only the reserved prefix"
