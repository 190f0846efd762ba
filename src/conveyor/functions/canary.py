"""The canary: on a schedule, the client-side checks of ``conveyor verify`` against this
function's own stack, through its public edges, as a client calls them.

Each run is one invocation (EventBridge Scheduler in AWS, the local runtime's timer on the
laptop). It signs as the canary's clients (:data:`conveyor.topology.CANARY_CLIENTS`),
whose secrets it reads like the functions that check them; they are verification
clients, so their orders expire a day later. Per run it logs every check's result with
its evidence, and counts:

* ``CanaryCheckFailed`` per check (dimension ``check``): 1 failed, 0 passed; a skipped
  check counts nothing;
* ``CanaryChecksFailed``: how many failed; an alarm fires on one;
* ``CanaryRuns``: 1; an alarm fires when runs stop.

Operator checks (dead letters, alarms, logs) stay with ``conveyor verify``: the canary's
role reads no more than a client's secrets.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from conveyor.aws import client_secrets, metrics, tracing
from conveyor.aws.config import API_URL, MEDIA_BASE_URL, required
from conveyor.verify import checks
from conveyor.verify.checks import Outcome, Result, Target, photograph
from conveyor.verify.http import Api, Client
from conveyor.verify.results import as_dict

logger = Logger()

CANARY_CLIENTS = "CANARY_CLIENTS"
ORDER_DEADLINE_S = 45.0
UPLOAD_DEADLINE_S = 60.0
"""Shorter than ``conveyor verify``'s, so that a run in which every wait runs out still
ends within the function's timeout."""


def run_id(event: dict[str, Any]) -> str:
    """The run's id, from the schedule's time and execution id when the event has them."""
    scheduled = str(event.get("scheduled_at") or datetime.now(UTC).isoformat())
    stamp = "".join(ch for ch in scheduled if ch.isdigit())[:14]
    execution = str(event.get("execution_id") or os.urandom(3).hex())
    return f"canary-{stamp}-{execution[:8]}"


def _clients() -> tuple[Client, Client] | str:
    """The canary's two clients, or why it cannot have them."""
    wanted = required(CANARY_CLIENTS).split(",")
    found = []
    for client_id in wanted:
        secrets = client_secrets.secrets_of(client_id)
        if not secrets:
            return (
                f"the canary's client {client_id} is not in the client secrets; add "
                f"{' and '.join(wanted)} with `conveyor clients --stack <stack> add <id>`"
            )
        found.append(Client(client_id, secrets[-1]))
    return found[0], found[1]


def _said(result: Result) -> None:
    logger.info(
        "canary check",
        check=result.name,
        outcome=result.outcome.value,
        detail=result.detail,
        evidence=result.evidence,
        seconds=round(result.seconds, 3),
    )


@metrics.published
@tracing.invocation()
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = run_id(event)
    api_url = required(API_URL)
    logger.append_keys(canary_run=run)
    clients = _clients()
    if isinstance(clients, str):
        found = [Result(c.name, Outcome.FAIL, clients, {}, 0.0) for c in checks.CLIENT]
        for result in found:
            _said(result)
        client_id = ""
    else:
        client, other = clients
        client_id = client.client_id
        target = Target(
            Api(api_url, client, run),
            required(MEDIA_BASE_URL),
            other,
            photograph(),
            order_deadline_s=ORDER_DEADLINE_S,
            upload_deadline_s=UPLOAD_DEADLINE_S,
        )
        found = checks.run(target, checks.CLIENT, _said)
    for result in found:
        if result.outcome is not Outcome.SKIP:
            failed = int(result.outcome is Outcome.FAIL)
            metrics.count(metrics.CANARY_CHECK_FAILED, failed, check=result.name)
    failures = sum(r.outcome is Outcome.FAIL for r in found)
    metrics.count(metrics.CANARY_CHECKS_FAILED, failures)
    metrics.count(metrics.CANARY_RUNS)
    report = as_dict(found, {"id": run, "target": api_url, "client": client_id})
    logger.info("canary run", summary=report["summary"])
    return report
