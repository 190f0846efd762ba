"""``conveyor verify``: prove a running deployment, local or in AWS, from outside."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from conveyor.aws.config import DEFAULT_SECRETS_MAX_AGE_S
from conveyor.cli import render
from conveyor.cli.app import ProfileOption, StateDir, app, fail
from conveyor.cli.render import console
from conveyor.core.orders import VERIFICATION_CLIENT_PREFIX
from conveyor.local.runtime import LOCAL_SECRETS_MAX_AGE_S, LocalRuntime, RuntimeOptions
from conveyor.local.state import DEFAULT_STATE_DIR, EmulatorClients, NotRunningError, RuntimeInfo
from conveyor.ops import clients as documents
from conveyor.ops.verification import (
    STACK_OUTPUTS,
    RunClients,
    StackOperator,
    dead_letter_queues,
    run_id,
    stack_log_groups,
    stack_outputs,
    wait_until_accepted,
)
from conveyor.topology import (
    ARCHIVE_BUCKET,
    CLIENT_SECRETS,
    DEFAULT_PROFILE,
    ORDERS_TABLE,
    TOPOLOGY,
    Profile,
    dlq_of,
)
from conveyor.verify import checks, results
from conveyor.verify.checks import Outcome, Target, photograph
from conveyor.verify.http import Api


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/console/api/overview", timeout=5):  # noqa: S310
            return True
    except OSError:
        return False


@contextmanager
def _local(directory: Path, profile: Profile, say: Console) -> Iterator[tuple[RuntimeInfo, str]]:
    """The local stack that runs in ``directory``, or one started for the run."""
    try:
        info = RuntimeInfo.load(directory)
        if _answers(info.gateway_url):
            yield info, f"the local stack in {directory}"
            return
    except NotRunningError:
        pass
    say.print(f"no local stack runs in {directory}: starting one for this run")
    runtime = LocalRuntime(RuntimeOptions(state_dir=directory, port=0, profile=profile))
    with runtime as started:
        yield started.info, f"a local stack started in {directory}"


@dataclass(frozen=True)
class Reach:
    """How this run reaches a deployment."""

    api_url: str
    media_url: str
    secretsmanager: Any
    secret_id: str
    cache_s: int
    """How long the functions may take to know a new client (their secrets cache)."""
    operator: StackOperator | None
    said: str


def _local_reach(info: RuntimeInfo, said: str) -> Reach:
    aws = EmulatorClients(info.emulator_url)
    resources = info.resources
    dead = {dlq_of(q.name) for q in TOPOLOGY.queues}
    operator = StackOperator(
        aws,
        {name: url for name, url in resources.queues.items() if name in dead},
        resources.buckets[ARCHIVE_BUCKET],
        resources.tables[ORDERS_TABLE],
    )
    return Reach(
        info.gateway_url,
        f"{info.media_url}/media/",
        aws("secretsmanager"),
        resources.secrets[CLIENT_SECRETS],
        LOCAL_SECRETS_MAX_AGE_S,
        operator,
        said,
    )


def _stack_reach(session: boto3.session.Session, stack: str) -> Reach:
    cloudformation = session.client("cloudformation")
    outputs = stack_outputs(cloudformation, stack)
    missing = [name for name in STACK_OUTPUTS if name not in outputs]
    if missing:
        fail(f"stack {stack} lacks the outputs {', '.join(missing)}; deploy this version")
    operator = StackOperator(
        session.client,
        dead_letter_queues(outputs["DeadLetterQueues"]),
        outputs["ArchiveBucket"],
        outputs["OrdersTable"],
        alarm_topic=outputs["AlarmTopicArn"],
        log_groups=stack_log_groups(cloudformation, stack),
    )
    return Reach(
        outputs["ApiUrl"],
        f"https://{outputs['MediaDomain']}/",
        session.client("secretsmanager"),
        outputs["ClientSecretsArn"],
        DEFAULT_SECRETS_MAX_AGE_S,
        operator,
        f"stack {stack}",
    )


@contextmanager
def _target(reach: Reach, client_id: str | None, say: Console) -> Iterator[Target]:
    """The target, with the run's clients made (and removed after), and the run's
    orders removed after it where the caller may."""
    run = run_id()
    clients = RunClients(reach.secretsmanager, reach.secret_id)
    try:
        own = f"{VERIFICATION_CLIENT_PREFIX}{run}"
        client = clients.existing(client_id) if client_id else clients.make(own)
        other = clients.make(f"{own}-other")
        changed_at = time.monotonic()
        api = Api(reach.api_url, client, run)
        say.print(
            f"verifying {reach.said} as client {client.client_id} (run {run}); the functions "
            f"know the run's clients after their secrets cache, {reach.cache_s} s"
        )
        for made in (client, other):
            if not wait_until_accepted(api, made, changed_at, reach.cache_s):
                fail(f"the functions did not accept client {made.client_id}")
        yield Target(api, reach.media_url, other, photograph(), reach.operator)
        if reach.operator is not None and not client_id:
            removed = reach.operator.remove_orders_of(client.client_id)
            say.print(f"removed the run's {removed} order(s) and their archived copies")
    finally:
        clients.remove()


@app.command()
def verify(
    directory: StateDir = DEFAULT_STATE_DIR,
    profile: ProfileOption = DEFAULT_PROFILE,
    stack: Annotated[
        str | None,
        typer.Option(
            help="A deployed app stack (Conveyor-App or Conveyor-Lean): everything "
            "comes from its outputs and the client secrets."
        ),
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of --stack.")] = None,
    url: Annotated[
        str | None, typer.Option(help="The API's URL, with --media-url and --secret-id.")
    ] = None,
    media_url: Annotated[
        str | None, typer.Option(help="Where the variants must be served from.")
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(help="Verify as this existing client instead of one made for the run."),
    ] = None,
    secret_id: Annotated[
        str | None, typer.Option(help="The client secrets' ARN or name (with --url).")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Run only this check; repeat for more. The checks: {', '.join(checks.NAMES)}."
        ),
    ] = None,
    skip: Annotated[list[str] | None, typer.Option(help="Leave this check out; repeat.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON, not as a table.")
    ] = False,
    junit: Annotated[
        Path | None, typer.Option(help="Also write the results as JUnit XML to this file.")
    ] = None,
) -> None:
    """Prove a running deployment does what the API documents, from outside: signatures,
    replays, idempotency, tenancy, billing, variants, quarantine, and (with an operator's
    credentials) dead letters, alarms and logs. The local stack by default (one is
    started if none runs); --stack for a deployed one. Exits 1 if any check fails."""
    # With --json, standard output carries the report alone; the run talks on stderr.
    say = Console(stderr=True) if as_json else console
    try:
        selected = checks.chosen(only or (), skip or ())
    except ValueError as exc:
        fail(str(exc))
    try:
        with ExitStack() as scope:
            if stack is not None:
                reach = _stack_reach(boto3.session.Session(region_name=region), stack)
            elif url is not None:
                if secret_id is None or media_url is None:
                    fail("--url needs --media-url and --secret-id (the client secrets' name)")
                session = boto3.session.Session(region_name=region)
                reach = Reach(
                    url,
                    media_url,
                    session.client("secretsmanager"),
                    secret_id,
                    DEFAULT_SECRETS_MAX_AGE_S,
                    None,
                    f"the API at {url}",
                )
            else:
                reach = _local_reach(*scope.enter_context(_local(directory, profile, say)))
            target = scope.enter_context(_target(reach, client_id, say))
            on_result = (lambda _: None) if as_json else render.print_check
            found = checks.run(target, selected, on_result)
    except (BotoCoreError, ClientError, documents.ClientsError) as exc:
        fail(f"cannot reach the deployment's AWS side: {exc}")
    run = {"id": target.api.run_id, "target": reach.said, "client": target.api.client.client_id}
    if as_json:
        print(results.as_json(found, run))
    else:
        console.print(render.verify_table(found))
    if junit is not None:
        junit.write_text(results.as_junit(found))
    if any(r.outcome is Outcome.FAIL for r in found):
        raise typer.Exit(1)
