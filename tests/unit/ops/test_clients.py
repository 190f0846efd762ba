"""The client-secrets document's edits, and ``conveyor clients`` against a deployed stack
(CloudFormation and Secrets Manager in moto's in-process mock)."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from typer.testing import CliRunner

import conveyor.cli  # noqa: F401 - registers every command on the app
from conveyor.cli.app import app
from conveyor.core.signing import MIN_SECRET_LENGTH
from conveyor.local.provision import Resources
from conveyor.ops import clients
from conveyor.topology import APP_STACK, CLIENT_SECRETS


def test_add_makes_a_long_random_secret_and_refuses_a_second_add() -> None:
    document: clients.Document = {}
    made = clients.add(document, "shop")
    assert len(made) >= 43, "32 random bytes, base64url"
    assert document == {"shop": [made]}
    assert clients.add({}, "shop") != made
    with pytest.raises(clients.ClientsError, match="exists"):
        clients.add(document, "shop")


def test_rotate_appends_and_retire_keeps_only_the_newest() -> None:
    document: clients.Document = {"shop": ["first-secret-000000"]}
    newer = clients.rotate(document, "shop", "second-secret-00000")
    assert newer == "second-secret-00000"
    assert document["shop"] == ["first-secret-000000", "second-secret-00000"]
    assert clients.retire(document, "shop") == 1
    assert document["shop"] == ["second-secret-00000"]
    assert clients.retire(document, "shop") == 0


@pytest.mark.parametrize(
    ("client_id", "secret", "reason"),
    [
        ("has space", None, "not a client id"),
        ("", None, "not a client id"),
        ("x" * 65, None, "not a client id"),
        ("shop", "short", f"at least {MIN_SECRET_LENGTH}"),
        ("shop", " padded-secret-0000 ", "without surrounding spaces"),
    ],
)
def test_bad_ids_and_guessable_secrets_are_refused_with_a_reason(
    client_id: str, secret: str | None, reason: str
) -> None:
    with pytest.raises(clients.ClientsError, match=reason):
        clients.add({}, client_id, secret)


def test_an_unknown_client_is_named_with_the_known_ones() -> None:
    with pytest.raises(clients.ClientsError, match="the clients are: a, b"):
        clients.remove({"a": [], "b": []}, "c")


def test_clients_against_a_deployed_stack_finds_the_secret_by_its_output(
    resources: Resources,
) -> None:
    secret_arn = resources.secrets[CLIENT_SECRETS]
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"ClientSecretsArn": {"Value": secret_arn}},
    }
    boto3.client("cloudformation").create_stack(
        StackName=APP_STACK, TemplateBody=json.dumps(template)
    )
    runner = CliRunner()
    target = ["clients", "--stack", APP_STACK, "--region", "us-east-1"]
    added = runner.invoke(app, [*target, "add", "shop-frontend"])
    assert added.exit_code == 0, added.output
    printed = re.search(r"keep it safe\):\n(\S+)\n", added.output)
    assert printed
    stored = json.loads(
        boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    )
    assert stored["shop-frontend"] == [printed.group(1)]
    assert "within 300 s" in added.output, "AWS's cache time, not the local one"
    listed = runner.invoke(app, [*target, "list"])
    assert re.search(r"shop-frontend\s+│\s+1", listed.output), listed.output
    assert printed.group(1) not in listed.output
    missing = runner.invoke(app, ["clients", "--stack", "NoSuchStack", "list"])
    assert missing.exit_code == 1
    assert "cannot read stack NoSuchStack" in missing.output


def secret_document(resources: Resources) -> clients.Document:
    """The document as every function reads it: GetSecretValue naming no version."""
    secretsmanager = boto3.client("secretsmanager")
    raw = secretsmanager.get_secret_value(SecretId=resources.secrets[CLIENT_SECRETS])
    return dict(json.loads(raw["SecretString"]))


def test_an_edit_is_what_every_reader_of_the_secret_sees_next(resources: Resources) -> None:
    secretsmanager = boto3.client("secretsmanager")
    made = clients.edit(
        secretsmanager, resources.secrets[CLIENT_SECRETS], lambda d: clients.add(d, "shop")
    )
    assert secret_document(resources)["shop"] == [made]


def test_an_edit_that_collides_with_another_is_made_again_on_top_of_it(
    resources: Resources,
) -> None:
    secretsmanager = boto3.client("secretsmanager")
    secret_id = resources.secrets[CLIENT_SECRETS]
    calls: list[clients.Document] = []

    def add_shop_while_another_operator_adds_a_warehouse(document: clients.Document) -> str:
        calls.append(dict(document))
        if len(calls) == 1:
            # The other operator's whole edit lands between this one's read and write.
            clients.edit(secretsmanager, secret_id, lambda d: clients.add(d, "warehouse"))
        return clients.add(document, "shop")

    made = clients.edit(secretsmanager, secret_id, add_shop_while_another_operator_adds_a_warehouse)
    assert len(calls) == 2, "read again after the collision"
    assert "warehouse" not in calls[0]
    assert "warehouse" in calls[1]
    stored = secret_document(resources)
    assert stored["shop"] == [made]
    assert len(stored["warehouse"]) == 1, "neither edit is lost"


def test_an_edit_that_keeps_colliding_is_refused_with_a_reason_and_changes_nothing(
    resources: Resources,
) -> None:
    secretsmanager = boto3.client("secretsmanager")
    secret_id = resources.secrets[CLIENT_SECRETS]
    others = iter(f"other-{n}" for n in range(10))

    def always_overtaken(document: clients.Document) -> str:
        clients.edit(secretsmanager, secret_id, lambda d: clients.add(d, next(others)))
        return clients.add(document, "shop")

    with pytest.raises(clients.ConcurrentEditError, match="was not applied; run it again"):
        clients.edit(secretsmanager, secret_id, always_overtaken, attempts=3)
    stored = secret_document(resources)
    assert "shop" not in stored
    assert {"other-0", "other-1", "other-2"} <= set(stored), "the others' edits all landed"


def test_the_cli_says_to_retry_when_its_edit_could_not_land(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    def overtaken(*_: object, **__: object) -> bool:
        return False

    monkeypatch.setattr(clients, "_swap", overtaken)
    result = CliRunner().invoke(
        app, ["clients", "--secret-id", resources.secrets[CLIENT_SECRETS], "add", "shop"]
    )
    assert result.exit_code == 1
    assert "was changed by someone else" in result.output
    assert "keep it safe" not in result.output, "no secret is shown for an edit that failed"
