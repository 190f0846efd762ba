"""``conveyor clients``: who may call the HTTP API, kept in the client-secrets document.

Against the local stack by default; against AWS given ``--stack`` (its
``ClientSecretsArn`` output) or ``--secret-id``, with ``--region``.
"""

from __future__ import annotations

from collections.abc import Callable
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
from conveyor.ops import clients as document_of
from conveyor.topology import APP_STACK, CLIENT_SECRETS

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

Outcome = TypeVar("Outcome")
SECRETS_OUTPUT = "ClientSecretsArn"

clients_app = typer.Typer(
    help="Manage the API's clients and their HMAC secrets (local stack unless --stack or "
    "--secret-id). Secrets are printed once, when made, and never logged.",
    no_args_is_help=True,
)
app.add_typer(clients_app, name="clients")

Stack = Annotated[
    str | None,
    typer.Option("--stack", help=f"A deployed app stack (e.g. {APP_STACK}): its secret."),
]
SecretId = Annotated[
    str | None, typer.Option("--secret-id", help="The client-secrets secret's ARN or name.")
]
Region = Annotated[str | None, typer.Option(help="AWS region (default: your environment's).")]
Name = Annotated[str, typer.Argument(help="The client id, as it sends X-Client-Id.")]
GivenSecret = Annotated[
    str | None,
    typer.Option("--secret", help="Use this secret (16+ characters) instead of a random one."),
]


def _target(
    directory: StateDir, stack: str | None, secret_id: str | None, region: str | None
) -> tuple[SecretsManagerClient, str, int]:
    """The Secrets Manager client, the secret's id, and the functions' cache time."""
    if stack is None and secret_id is None:
        info = running(directory)
        local = EmulatorClients(info.emulator_url)("secretsmanager")
        return local, info.resources.secrets[CLIENT_SECRETS], LOCAL_SECRETS_MAX_AGE_S
    session = boto3.session.Session(region_name=region)
    if secret_id is None:
        try:
            described = session.client("cloudformation").describe_stacks(StackName=str(stack))
        except (BotoCoreError, ClientError) as exc:
            fail(f"cannot read stack {stack}: {exc}")
        outputs = {
            o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])
        }
        if SECRETS_OUTPUT not in outputs:
            fail(f"stack {stack} has no {SECRETS_OUTPUT} output; is it the app stack?")
        secret_id = outputs[SECRETS_OUTPUT]
    return session.client("secretsmanager"), secret_id, DEFAULT_SECRETS_MAX_AGE_S


def _edit(
    directory: StateDir,
    stack: str | None,
    secret_id: str | None,
    region: str | None,
    change: Callable[[document_of.Document], Outcome],
) -> tuple[Outcome, int]:
    secretsmanager, target, cache_s = _target(directory, stack, secret_id, region)
    try:
        document = document_of.read(secretsmanager, target)
        outcome = change(document)
        document_of.write(secretsmanager, target, document)
    except document_of.ClientsError as exc:
        fail(str(exc))
    except (BotoCoreError, ClientError) as exc:
        fail(f"cannot update {target}: {exc}")
    return outcome, cache_s


def _show_secret(client_id: str, secret: str, cache_s: int) -> None:
    console.print(f"client [bold]{client_id}[/] secret (shown once, keep it safe):")
    console.print(secret, markup=False, highlight=False, soft_wrap=True)
    console.print(f"the functions accept it within {cache_s} s (their secrets cache)")


@clients_app.command("list")
def list_clients(
    directory: StateDir = DEFAULT_STATE_DIR,
    stack: Stack = None,
    secret_id: SecretId = None,
    region: Region = None,
) -> None:
    """Every client and how many secrets it holds (never the secrets)."""
    secretsmanager, target, _ = _target(directory, stack, secret_id, region)
    try:
        document = document_of.read(secretsmanager, target)
    except (document_of.ClientsError, BotoCoreError, ClientError) as exc:
        fail(f"cannot read {target}: {exc}")
    table = Table(title=f"clients in {target}")
    table.add_column("client id")
    table.add_column("secrets", justify="right")
    for summary in document_of.summaries(document):
        table.add_row(summary.client_id, str(summary.secrets))
    console.print(table)


@clients_app.command()
def add(
    name: Name,
    secret: GivenSecret = None,
    directory: StateDir = DEFAULT_STATE_DIR,
    stack: Stack = None,
    secret_id: SecretId = None,
    region: Region = None,
) -> None:
    """Add a client with one secret (32 random bytes unless --secret); prints it once."""
    made, cache_s = _edit(
        directory, stack, secret_id, region, lambda d: document_of.add(d, name, secret)
    )
    _show_secret(name, str(made), cache_s)


@clients_app.command()
def rotate(
    name: Name,
    secret: GivenSecret = None,
    directory: StateDir = DEFAULT_STATE_DIR,
    stack: Stack = None,
    secret_id: SecretId = None,
    region: Region = None,
) -> None:
    """Give a client a new secret beside its old ones; prints it once. Retire the old
    ones once the client has switched."""
    made, cache_s = _edit(
        directory, stack, secret_id, region, lambda d: document_of.rotate(d, name, secret)
    )
    _show_secret(name, str(made), cache_s)


@clients_app.command()
def retire(
    name: Name,
    directory: StateDir = DEFAULT_STATE_DIR,
    stack: Stack = None,
    secret_id: SecretId = None,
    region: Region = None,
) -> None:
    """Drop all but a client's newest secret."""
    dropped, cache_s = _edit(
        directory, stack, secret_id, region, lambda d: document_of.retire(d, name)
    )
    console.print(
        f"retired {dropped} old secret(s) of {name}; they stop working within {cache_s} s"
    )


@clients_app.command()
def remove(
    name: Name,
    directory: StateDir = DEFAULT_STATE_DIR,
    stack: Stack = None,
    secret_id: SecretId = None,
    region: Region = None,
) -> None:
    """Remove a client and every secret it holds."""
    _, cache_s = _edit(directory, stack, secret_id, region, lambda d: document_of.remove(d, name))
    console.print(f"removed {name}; its requests are refused within {cache_s} s")
