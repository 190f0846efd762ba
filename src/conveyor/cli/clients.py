"""``conveyor clients``: who may call the HTTP API, kept in the client-secrets document.

Against the local stack by default; against AWS given ``--stack`` (its
``ClientSecretsArn`` output) or ``--secret-id``, with ``--region``; these options come
before the command: ``conveyor clients --stack Conveyor-App add shop-frontend``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, TypeVar

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table

from conveyor.aws.config import DEFAULT_SECRETS_MAX_AGE_S
from conveyor.cli.app import StateDir, app, fail, running
from conveyor.cli.render import console
from conveyor.local.runtime import LOCAL_SECRETS_MAX_AGE_S
from conveyor.local.state import DEFAULT_STATE_DIR, EmulatorClients
from conveyor.ops import clients as documents
from conveyor.topology import APP_STACKS, CLIENT_SECRETS

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

Outcome = TypeVar("Outcome")
SECRETS_OUTPUT = "ClientSecretsArn"

clients_app = typer.Typer(
    help="Manage the API's clients and their HMAC secrets: the local stack's, or a deployed "
    "stack's with --stack or --secret-id (before the command). Secrets are printed once, "
    "when made, and never logged.",
    no_args_is_help=True,
)
app.add_typer(clients_app, name="clients")

Name = Annotated[str, typer.Argument(help="The client id, as it sends X-Client-Id.")]
GivenSecret = Annotated[
    str | None,
    typer.Option("--secret", help="Use this secret (16+ characters) instead of a random one."),
]


@dataclass(frozen=True)
class Target:
    """The client-secrets document to edit, and how long until a change counts."""

    secretsmanager: SecretsManagerClient
    secret_id: str
    cache_s: int

    def read(self) -> documents.Document:
        try:
            return documents.read(self.secretsmanager, self.secret_id)
        except (documents.ClientsError, BotoCoreError, ClientError) as exc:
            fail(f"cannot read {self.secret_id}: {exc}")

    def edit(self, change: Callable[[documents.Document], Outcome]) -> Outcome:
        try:
            outcome = documents.edit(self.secretsmanager, self.secret_id, change)
        except documents.ClientsError as exc:
            fail(str(exc))
        except (BotoCoreError, ClientError) as exc:
            fail(f"cannot update {self.secret_id}: {exc}")
        return outcome

    def show_secret(self, client_id: str, secret: str) -> None:
        console.print(f"client [bold]{client_id}[/] secret (shown once, keep it safe):")
        console.print(secret, markup=False, highlight=False, soft_wrap=True)
        console.print(f"the functions accept it within {self.cache_s} s (their secrets cache)")


def _aws_secret_id(session: boto3.session.Session, stack: str) -> str:
    try:
        described = session.client("cloudformation").describe_stacks(StackName=stack)
    except (BotoCoreError, ClientError) as exc:
        fail(f"cannot read stack {stack}: {exc}")
    [found] = described["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    if SECRETS_OUTPUT not in outputs:
        stacks = " or ".join(APP_STACKS.values())
        fail(f"stack {stack} has no {SECRETS_OUTPUT} output; is it {stacks}?")
    return str(outputs[SECRETS_OUTPUT])


@clients_app.callback()
def target(
    context: typer.Context,
    directory: StateDir = DEFAULT_STATE_DIR,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            help=f"A deployed app stack ({' or '.join(APP_STACKS.values())}): its secret.",
        ),
    ] = None,
    secret_id: Annotated[
        str | None, typer.Option("--secret-id", help="The client-secrets secret's ARN or name.")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="AWS region (default: your environment's).")
    ] = None,
) -> None:
    if stack is None and secret_id is None:
        info = running(directory)
        local = EmulatorClients(info.emulator_url)("secretsmanager")
        secret = info.resources.secrets[CLIENT_SECRETS]
        context.obj = Target(local, secret, LOCAL_SECRETS_MAX_AGE_S)
        return
    session = boto3.session.Session(region_name=region)
    secret = secret_id if secret_id is not None else _aws_secret_id(session, str(stack))
    context.obj = Target(session.client("secretsmanager"), secret, DEFAULT_SECRETS_MAX_AGE_S)


@clients_app.command("list")
def list_clients(context: typer.Context) -> None:
    """Every client and how many secrets it holds (never the secrets)."""
    chosen: Target = context.obj
    document = chosen.read()
    table = Table(title=f"clients in {chosen.secret_id}")
    table.add_column("client id")
    table.add_column("secrets", justify="right")
    for summary in documents.summaries(document):
        table.add_row(summary.client_id, str(summary.secrets))
    console.print(table)


@clients_app.command()
def add(context: typer.Context, name: Name, secret: GivenSecret = None) -> None:
    """Add a client with one secret (32 random bytes unless --secret); prints it once."""
    chosen: Target = context.obj
    chosen.show_secret(name, chosen.edit(lambda d: documents.add(d, name, secret)))


@clients_app.command()
def rotate(context: typer.Context, name: Name, secret: GivenSecret = None) -> None:
    """Give a client a new secret beside its old ones; prints it once. Retire the old
    ones once the client has switched."""
    chosen: Target = context.obj
    chosen.show_secret(name, chosen.edit(lambda d: documents.rotate(d, name, secret)))


@clients_app.command()
def retire(context: typer.Context, name: Name) -> None:
    """Drop all but a client's newest secret."""
    chosen: Target = context.obj
    dropped = chosen.edit(lambda d: documents.retire(d, name))
    console.print(
        f"retired {dropped} old secret(s) of {name}; they stop working within {chosen.cache_s} s"
    )


@clients_app.command()
def remove(context: typer.Context, name: Name) -> None:
    """Remove a client and every secret it holds."""
    chosen: Target = context.obj
    chosen.edit(lambda d: documents.remove(d, name))
    console.print(f"removed {name}; its requests are refused within {chosen.cache_s} s")
