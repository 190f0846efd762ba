"""Request signing: known vectors, tampering, clock skew, rotation, constant time."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

import pytest

from conveyor.core.signing import (
    MAX_AGE_S,
    MAX_FUTURE_S,
    AuthenticationError,
    SignedRequest,
    sign,
    signature,
    verify,
)

NOW = 1_700_000_000.0
BODY = b'{"customer_id":"c-1"}'
SECRETS = {"shop": ["s3cr3t-key"], "rotating": ["old-secret", "new-secret"]}


def secrets_for(client_id: str) -> Sequence[str]:
    return SECRETS.get(client_id, [])


def request(
    headers: dict[str, str], body: bytes = BODY, method: str = "POST", path: str = "/orders"
) -> SignedRequest:
    return SignedRequest(method=method, path=path, body=body, headers=headers)


def signed(
    client: str = "shop",
    secret: str = "s3cr3t-key",
    at: float = NOW,
    body: bytes = BODY,
    method: str = "POST",
    path: str = "/orders",
) -> dict[str, str]:
    return sign(client, secret, method, path, body, at)


# Computed independently with `openssl dgst -sha256 -hmac` over the canonical string.
@pytest.mark.parametrize(
    ("secret", "method", "path", "body", "expected"),
    [
        (
            "s3cr3t-key",
            "POST",
            "/orders",
            BODY,
            "v1=c945d4f21c73c5966e1052da95f76d7ccff5fd0462ad4120ebdb4ac21d80a4fd",
        ),
        (
            "another",
            "post",
            "/uploads",
            b"",
            "v1=01e56127ddf98784bedfc2a143a3f49f5ff6e9dd30e3c729cd21b3e7ca66794d",
        ),
    ],
)
def test_signature_matches_known_vectors(
    secret: str, method: str, path: str, body: bytes, expected: str
) -> None:
    assert signature(secret, "1700000000", method, path, body) == expected


def test_a_correctly_signed_request_authenticates_its_client() -> None:
    assert verify(request(signed()), secrets_for, NOW) == "shop"


def test_header_names_are_case_insensitive_as_alb_lowercases_them() -> None:
    lowered = {k.lower(): v for k, v in signed().items()}
    assert verify(request(lowered), secrets_for, NOW) == "shop"


@pytest.mark.parametrize(
    "tampered",
    [
        pytest.param(lambda: request(signed(), body=BODY + b" "), id="body"),
        pytest.param(lambda: request(signed(), method="PUT"), id="method"),
        pytest.param(lambda: request(signed(), path="/uploads"), id="path"),
        pytest.param(
            lambda: request({**signed(), "X-Timestamp": str(int(NOW) + 1)}), id="timestamp"
        ),
        pytest.param(lambda: request({**signed(), "X-Client-Id": "rotating"}), id="client"),
        pytest.param(
            lambda: request({**signed(), "X-Signature": signed()["X-Signature"][:-1] + "0"}),
            id="signature-digit",
        ),
        pytest.param(
            lambda: request(
                {**signed(), "X-Signature": signed()["X-Signature"].replace("v1=", "v2=")}
            ),
            id="version",
        ),
    ],
)
def test_any_tampering_is_rejected(tampered: object) -> None:
    with pytest.raises(AuthenticationError):
        verify(tampered(), secrets_for, NOW)  # type: ignore[operator]


@pytest.mark.parametrize("skew", [-MAX_AGE_S, -1, 0, 1, MAX_FUTURE_S])
def test_timestamps_up_to_five_minutes_old_or_a_clock_skew_ahead_are_accepted(
    skew: int,
) -> None:
    assert MAX_FUTURE_S < MAX_AGE_S, "the future bound is clock skew, not a replay window"
    assert verify(request(signed(at=NOW + skew)), secrets_for, NOW) == "shop"


@pytest.mark.parametrize("skew", [-MAX_AGE_S - 1, -86_400])
def test_timestamps_older_than_five_minutes_are_rejected(skew: int) -> None:
    with pytest.raises(AuthenticationError, match="too old"):
        verify(request(signed(at=NOW + skew)), secrets_for, NOW)


@pytest.mark.parametrize("skew", [MAX_FUTURE_S + 1, 300, 86_400])
def test_timestamps_further_ahead_than_clock_skew_are_rejected(skew: int) -> None:
    with pytest.raises(AuthenticationError, match="future"):
        verify(request(signed(at=NOW + skew)), secrets_for, NOW)


@pytest.mark.parametrize(
    "value", ["", "abc", "1.7e9", "-1700000000", "\uff11\uff17" + "\uff10" * 8, "9" * 20]
)
def test_timestamps_that_are_not_unix_seconds_are_rejected(value: str) -> None:
    with pytest.raises(AuthenticationError):
        verify(request({**signed(), "X-Timestamp": value}), secrets_for, NOW)


@pytest.mark.parametrize("missing", ["X-Client-Id", "X-Timestamp", "X-Signature"])
def test_a_missing_header_is_rejected(missing: str) -> None:
    headers = signed()
    del headers[missing]
    with pytest.raises(AuthenticationError, match="missing"):
        verify(request(headers), secrets_for, NOW)


def test_an_unknown_client_is_rejected_even_with_a_valid_signature_shape() -> None:
    with pytest.raises(AuthenticationError, match="unknown"):
        verify(request(signed(client="stranger", secret="s3cr3t-key")), secrets_for, NOW)


@pytest.mark.parametrize("secret", ["old-secret", "new-secret"])
def test_during_rotation_either_active_secret_authenticates(secret: str) -> None:
    assert verify(request(signed("rotating", secret)), secrets_for, NOW) == "rotating"


def test_a_retired_secret_no_longer_authenticates() -> None:
    def after_rotation(client_id: str) -> Sequence[str]:
        return ["new-secret"] if client_id == "rotating" else []

    with pytest.raises(AuthenticationError, match="mismatch"):
        verify(request(signed("rotating", "old-secret")), after_rotation, NOW)


def test_every_secret_is_compared_in_constant_time_without_short_circuit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    # The first secret matches; the second must still be compared.
    verify(request(signed("rotating", "old-secret")), secrets_for, NOW)
    assert len(compared) == 2
    compared.clear()
    # An unknown client costs one comparison too, against a decoy.
    with pytest.raises(AuthenticationError):
        verify(request(signed("stranger", "x")), secrets_for, NOW)
    assert len(compared) == 1
