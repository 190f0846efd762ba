"""The checks ``conveyor verify`` runs against a deployment, from outside: each has a
stable name, proves one documented property, and reports what it saw.

Client checks use only the API, the media URL and the bucket's public endpoint, as a
client of the API can. Operator checks read the stack's queues, alarms and logs, where
the caller's credentials allow it; a check that cannot apply to the target (HTTPS
against the plain-HTTP local gateway, alarms in local mode) is skipped with the reason,
never passed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import Any, Protocol
from urllib.error import URLError
from urllib.parse import urlsplit

from conveyor.core.media import VARIANT_HEADERS
from conveyor.verify.http import Answer, Api, Client, object_url, plain_http, post_form, send

ORDER_DEADLINE_S = 60.0
"""How long an accepted order may take to be billed and archived."""
UPLOAD_DEADLINE_S = 120.0
"""How long an uploaded photograph may take to become its variants."""
POLL_S = 1.0
VARIANTS = ("large", "medium", "thumb")


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Result:
    name: str
    outcome: Outcome
    detail: str
    evidence: Mapping[str, Any]
    seconds: float


class CheckFailed(Exception):
    """The property does not hold; ``detail`` says what was seen instead."""


class NotApplicable(Exception):
    """The check cannot apply to this target; ``detail`` says why."""


@dataclass(frozen=True)
class Alarm:
    name: str
    state: str
    actions: tuple[str, ...]
    deliverable: bool
    """Whether its actions reach someone: the topic exists and has a subscription."""


class Operator(Protocol):
    """What an operator's credentials can read of the deployment."""

    def dead_letters(self) -> Mapping[str, int]:
        """Each DLQ's name and how many messages it holds."""
        ...

    def archived(self, client_id: str, order_id: str, accepted_at: str) -> bool: ...

    def alarms(self) -> list[Alarm] | None:
        """Every alarm of the deployment; ``None`` where there are none to have."""
        ...

    def log_retention(self) -> Mapping[str, int | None] | None:
        """Each function log group's retention in days (``None``: kept forever);
        ``None`` where there are no log groups to have."""
        ...


@dataclass(frozen=True)
class Photo:
    filename: str
    content_type: str
    data: bytes


PHOTOGRAPH = "photograph.jpg"
"""The real photograph the upload check sends, shipped beside these checks so that a
canary has it too: NASA's rocket launch (640x427, public domain), as scikit-image's
sample data carries it."""


def photograph() -> Photo:
    data = resources.files(__package__).joinpath(PHOTOGRAPH).read_bytes()
    return Photo(PHOTOGRAPH, "image/jpeg", data)


@dataclass
class Target:
    """A deployment, as verify reaches it."""

    api: Api
    media_url: str
    """Where the variants must be served from (the media distribution, or origin)."""
    other: Client | None
    """A second client, for tenancy; ``None`` when none could be had."""
    photo: Photo
    operator: Operator | None = None
    order_deadline_s: float = ORDER_DEADLINE_S
    upload_deadline_s: float = UPLOAD_DEADLINE_S
    made: dict[str, list[str]] = field(default_factory=dict)
    """What the run made, by kind (orders, uploads): for the clean-up and the report."""

    def order(self, check: str, **fields: Any) -> dict[str, Any]:
        """An order of this run, marked as verification traffic."""
        order_id = f"verify-{self.api.run_id}-{check}"[:64]
        self.made.setdefault("orders", []).append(order_id)
        return {
            "order_id": order_id,
            "customer_id": "verify",
            "currency": "EUR",
            "items": [{"sku": "VERIFY-1", "quantity": 1, "unit_price": "1.00"}],
            "metadata": {"verification_run": self.api.run_id},
            **fields,
        }


Run = Callable[[Target, dict[str, Any]], str]
"""A check: raises :class:`CheckFailed` or :class:`NotApplicable`, or returns what it
proved; it adds what it saw to the evidence."""


@dataclass(frozen=True)
class Check:
    name: str
    operator: bool
    """Needs an operator's credentials, not only a client's."""
    run: Run


def expect(answer: Answer, status: int, evidence: dict[str, Any], error: str | None = None) -> Any:
    """The answer's JSON, once its status (and error code) are what the API documents."""
    evidence.update(answer.evidence())
    payload = answer.json()
    got_error = payload.get("error") if isinstance(payload, dict) else None
    if answer.status != status or (error is not None and got_error != error):
        wanted = f"{status} {error}" if error else str(status)
        raise CheckFailed(f"expected {wanted}, got {answer.status} {got_error or ''}".rstrip())
    return payload


def wait_for(
    probe: Callable[[], Any], deadline_s: float, what: str, evidence: dict[str, Any]
) -> Any:
    began = time.monotonic()
    while True:
        found = probe()
        if found:
            evidence["waited_s"] = round(time.monotonic() - began, 1)
            return found
        if time.monotonic() - began > deadline_s:
            raise CheckFailed(f"{what} not within {deadline_s:g} s")
        time.sleep(POLL_S)


def _https_only(target: Target, evidence: dict[str, Any]) -> str:
    base = target.api.base_url
    if urlsplit(base).scheme != "https":
        raise NotApplicable(
            "the target is plain HTTP (the local gateway on loopback); the deployed edge's "
            "HTTPS is proved on its template"
        )
    try:
        answer = send("POST", plain_http(base).rstrip("/") + "/orders", b"{}")
    except (URLError, OSError) as exc:
        evidence["plain_http"] = f"connection refused ({exc})"
        return "plain HTTP cannot connect"
    evidence.update(answer.evidence())
    location = answer.header("Location") or ""
    if answer.status in (301, 302, 307, 308) and location.startswith("https://"):
        return f"plain HTTP is redirected to {location}"
    payload = answer.json()
    if answer.status == 403 and not (isinstance(payload, dict) and "error" in payload):
        return "plain HTTP is refused at the edge (403)"
    raise CheckFailed(f"plain HTTP reached the API: {answer.status}")


def _signed_order_accepted(target: Target, evidence: dict[str, Any]) -> str:
    order = target.order("accepted")
    payload = expect(
        target.api.call("signed-order-accepted", "POST", "/orders", order), 202, evidence
    )
    if payload.get("order_id") != order["order_id"]:
        raise CheckFailed(f"answered for order {payload.get('order_id')}")
    return "a signed order is accepted"


def _refused(spoil: str) -> Run:
    """A check that a request spoiled in one way (see :meth:`Api.call`) is refused."""

    def run(target: Target, evidence: dict[str, Any]) -> str:
        order = target.order(f"refused-{spoil}")
        api, path = target.api, "/orders"
        name = f"{spoil}-refused"
        if spoil == "wrong-signature":
            impostor = Client(api.client.client_id, "not-the-clients-secret-0123456789")
            expect(api.call(name, "POST", path, order, as_client=impostor), 401, evidence)
        elif spoil == "stale-timestamp":
            stale = time.time() - 306  # the window is 300 s
            expect(api.call(name, "POST", path, order, signed_at=stale), 401, evidence)
        elif spoil == "tampered-body":
            signed = json.dumps(dict(order, customer_id="someone-else")).encode()
            expect(api.call(name, "POST", path, order, sign_body=signed), 401, evidence)
        else:
            answer = api.call(name, "POST", path, order, query="admin=true")
            expect(answer, 400, evidence, "query_not_allowed")
        return f"a request with a {spoil.replace('-', ' ')} is refused"

    return run


def _exact_replay(target: Target, evidence: dict[str, Any]) -> str:
    order = target.order("replay")
    del order["order_id"]  # keyed by the request's signature instead
    first, again = target.api.replay("exact-replay", "POST", "/orders", order)
    one = expect(first, 202, evidence)
    other = expect(again, 202, evidence)
    if other != one or again.header("Idempotent-Replayed") != "true":
        raise CheckFailed(
            f"the replay made order {other.get('order_id')} after {one.get('order_id')}"
        )
    return "an exact replay gets the first answer and makes no second order"


def _same_order_twice(target: Target, evidence: dict[str, Any]) -> str:
    order = target.order("twice")
    first = expect(target.api.call("same-order-twice", "POST", "/orders", order), 202, evidence)
    answer = target.api.call("same-order-twice", "POST", "/orders", order)
    second = expect(answer, 202, evidence)
    if second != first or answer.header("Idempotent-Replayed") != "true":
        raise CheckFailed("the second submission was not answered as a replay of the first")
    return "the same order twice gets the same answer"


def _reused_id_refused(target: Target, evidence: dict[str, Any]) -> str:
    order = target.order("reused")
    expect(target.api.call("reused-id", "POST", "/orders", order), 202, evidence)
    changed = dict(order, customer_id="verify-other-content")
    answer = target.api.call("reused-id", "POST", "/orders", changed)
    expect(answer, 409, evidence, "idempotency_conflict")
    return "the same order id with other content is a 409"


def _tenant_isolation(target: Target, evidence: dict[str, Any]) -> str:
    if target.other is None:
        raise NotApplicable("needs a second client, which this run could not make")
    order = target.order("tenancy")
    api = target.api
    expect(api.call("tenancy", "POST", "/orders", order), 202, evidence)
    path = f"/orders/{order['order_id']}"
    theirs = expect(api.call("tenancy", "GET", path, as_client=target.other), 404, evidence)
    unknown = api.call("tenancy", "GET", f"/orders/verify-{api.run_id}-never-made")
    if expect(unknown, 404, evidence) != theirs:
        raise CheckFailed("another client's order and no order read differently")
    return "a second client cannot read the first client's order (404, as for no order)"


def _status(target: Target, check: str, order_id: str) -> dict[str, Any] | None:
    answer = target.api.call(check, "GET", f"/orders/{order_id}")
    payload = answer.json()
    return payload if answer.status == 200 and isinstance(payload, dict) else None


def _order_billed(target: Target, evidence: dict[str, Any]) -> str:
    order = target.order("billed")
    expect(target.api.call("order-billed", "POST", "/orders", order), 202, evidence)

    def billed() -> dict[str, Any] | None:
        view = _status(target, "order-billed", order["order_id"])
        return view if view and view.get("status") == "billed" else None

    view = wait_for(billed, target.order_deadline_s, "billed", evidence)
    return f"billed {view.get('total')} {view.get('currency')}, followed by its status"


def _order_archived(target: Target, evidence: dict[str, Any]) -> str:
    operator = _operator(target)
    order = target.order("archived")
    expect(target.api.call("order-archived", "POST", "/orders", order), 202, evidence)
    view = wait_for(
        lambda: _status(target, "order-archived", order["order_id"]),
        target.order_deadline_s,
        "the order's status",
        evidence,
    )
    client_id = target.api.client.client_id
    wait_for(
        lambda: operator.archived(client_id, order["order_id"], view["accepted_at"]),
        target.order_deadline_s,
        "archived",
        evidence,
    )
    return "the order's JSON copy is in the archive"


def _presigned(
    target: Target, check: str, photo: Photo, evidence: dict[str, Any]
) -> dict[str, Any]:
    request = {
        "filename": photo.filename,
        "content_type": photo.content_type,
        "size": len(photo.data),
    }
    grant: dict[str, Any] = expect(
        target.api.call(check, "POST", "/uploads", request), 200, evidence
    )
    target.made.setdefault("uploads", []).append(grant["upload_id"])
    return grant


def _upload(target: Target, check: str, photo: Photo, evidence: dict[str, Any]) -> dict[str, Any]:
    """Upload ``photo`` and wait until it settles; its status view."""
    grant = _presigned(target, check, photo, evidence)
    stored = post_form(grant["url"], grant["fields"], photo.filename, photo.data)
    evidence["upload_status"] = stored.status
    if stored.status not in (200, 201, 204):
        raise CheckFailed(f"the presigned POST was refused: {stored.status}")

    def settled() -> dict[str, Any] | None:
        answer = target.api.call(check, "GET", f"/uploads/{grant['upload_id']}")
        view = answer.json()
        if answer.status == 200 and view.get("status") in ("processed", "failed"):
            return dict(view)
        return None

    view: dict[str, Any] = wait_for(settled, target.upload_deadline_s, "settled", evidence)
    evidence["upload_id"] = grant["upload_id"]
    return view


def _variants(target: Target, evidence: dict[str, Any]) -> str:
    view = _upload(target, "variants", target.photo, evidence)
    if view["status"] != "processed":
        raise CheckFailed(f"the photograph failed: {view.get('reason')}")
    variants = view.get("variants") or {}
    if sorted(variants) != sorted(VARIANTS):
        raise CheckFailed(f"variants {sorted(variants)}, not {list(VARIANTS)}")
    for label in VARIANTS:
        url = str(variants[label]["url"])
        if not url.startswith(target.media_url.rstrip("/") + "/"):
            raise CheckFailed(f"{label} is served from {url}, not through {target.media_url}")
        served = send("GET", url)
        evidence[label] = {
            "status": served.status,
            "bytes": len(served.body),
            "ms": round(served.ms),
        }
        if served.status != 200 or not (served.header("Content-Type") or "").startswith("image/"):
            raise CheckFailed(f"{label}: {served.status} {served.header('Content-Type')}")
        missing = [name for name, value in VARIANT_HEADERS.items() if served.header(name) != value]
        if missing:
            raise CheckFailed(f"{label} is served without {', '.join(missing)}")
    return "a photograph becomes three variants, served through the media URL with their headers"


def _bucket_refuses(target: Target, evidence: dict[str, Any]) -> str:
    grant = _presigned(target, "direct-read", target.photo, evidence)
    key = f"processed/large/{grant['upload_id']}.jpg"
    direct = send("GET", object_url(grant["url"], key))
    evidence["direct_read"] = direct.status
    if direct.status != 403:
        raise CheckFailed(f"an unsigned read of the bucket got {direct.status}, not 403")
    return "the bucket refuses a direct read (403)"


def _hostile_upload(target: Target, evidence: dict[str, Any]) -> str:
    impostor = Photo("verify-impostor.jpg", "image/jpeg", b"<html><script>x()</script></html>" * 64)
    view = _upload(target, "hostile-upload", impostor, evidence)
    if view["status"] != "failed" or not view.get("reason"):
        raise CheckFailed(f"a hostile upload ended {view['status']} {view.get('reason') or ''}")
    evidence["reason"] = view["reason"]
    return f"a hostile upload is quarantined as {view['reason']}"


def _operator(target: Target) -> Operator:
    if target.operator is None:
        raise NotApplicable("needs an operator's credentials for the stack")
    return target.operator


def _no_dead_letters(target: Target, evidence: dict[str, Any]) -> str:
    depths = dict(_operator(target).dead_letters())
    evidence.update(depths)
    holding = {name: n for name, n in depths.items() if n}
    if holding:
        raise CheckFailed(", ".join(f"{name} holds {n}" for name, n in sorted(holding.items())))
    return f"{len(depths)} dead-letter queues, all empty"


def _alarms_armed(target: Target, evidence: dict[str, Any]) -> str:
    alarms = _operator(target).alarms()
    if alarms is None:
        raise NotApplicable(
            "local mode has no CloudWatch alarms; the templates' are checked offline"
        )
    evidence["alarms"] = len(alarms)
    if not alarms:
        raise CheckFailed("the deployment has no alarms")
    wrong = [
        f"{a.name} is {a.state}"
        if a.state not in ("OK", "INSUFFICIENT_DATA")
        else f"{a.name} reaches no one"
        for a in alarms
        if a.state not in ("OK", "INSUFFICIENT_DATA") or not a.actions or not a.deliverable
    ]
    if wrong:
        raise CheckFailed(
            "; ".join(wrong[:5]) + (f" (and {len(wrong) - 5} more)" if len(wrong) > 5 else "")
        )
    return f"{len(alarms)} alarms, none in alarm, each with an action that reaches someone"


def _logs_retained(target: Target, evidence: dict[str, Any]) -> str:
    groups = _operator(target).log_retention()
    if groups is None:
        raise NotApplicable("local mode writes its logs to files, not CloudWatch Logs")
    forever = sorted(name for name, days in groups.items() if days is None)
    evidence["log_groups"] = len(groups)
    if not groups or forever:
        raise CheckFailed(f"kept forever: {', '.join(forever)}" if forever else "no log groups")
    return f"{len(groups)} log groups, each with a retention"


CHECKS = (
    Check("https-only", False, _https_only),
    Check("signed-order-accepted", False, _signed_order_accepted),
    Check("wrong-signature-refused", False, _refused("wrong-signature")),
    Check("stale-timestamp-refused", False, _refused("stale-timestamp")),
    Check("tampered-body-refused", False, _refused("tampered-body")),
    Check("tampered-query-refused", False, _refused("tampered-query")),
    Check("exact-replay-makes-no-second-order", False, _exact_replay),
    Check("same-order-twice-same-answer", False, _same_order_twice),
    Check("reused-id-other-content-refused", False, _reused_id_refused),
    Check("tenant-isolation", False, _tenant_isolation),
    Check("order-billed", False, _order_billed),
    Check("upload-becomes-variants", False, _variants),
    Check("bucket-refuses-direct-read", False, _bucket_refuses),
    Check("hostile-upload-quarantined", False, _hostile_upload),
    Check("order-archived", True, _order_archived),
    Check("no-dead-letters", True, _no_dead_letters),
    Check("alarms-armed", True, _alarms_armed),
    Check("logs-retained", True, _logs_retained),
)
NAMES = tuple(check.name for check in CHECKS)
CLIENT = tuple(check for check in CHECKS if not check.operator)
"""The checks a client's credentials can run: the canary's."""


def chosen(only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Check]:
    """The checks to run; an unknown name is a :class:`ValueError` naming the known ones."""
    only, skip = list(only), list(skip)
    unknown = sorted((set(only) | set(skip)) - set(NAMES))
    if unknown:
        raise ValueError(f"no check named {', '.join(unknown)}; the checks are: {', '.join(NAMES)}")
    return [c for c in CHECKS if (not only or c.name in only) and c.name not in skip]


def run(
    target: Target, checks: Iterable[Check], on_result: Callable[[Result], None] = lambda _: None
) -> list[Result]:
    """Every check, in order; one that errs fails with what it raised, the rest go on."""
    results = []
    for check in checks:
        evidence: dict[str, Any] = {}
        began = time.monotonic()
        try:
            outcome, detail = Outcome.PASS, check.run(target, evidence)
        except NotApplicable as exc:
            outcome, detail = Outcome.SKIP, str(exc)
        except CheckFailed as exc:
            outcome, detail = Outcome.FAIL, str(exc)
        except Exception as exc:  # a check that errs has not proved its property
            outcome, detail = Outcome.FAIL, f"{type(exc).__name__}: {exc}"
        result = Result(check.name, outcome, detail, evidence, time.monotonic() - began)
        results.append(result)
        on_result(result)
    return results
