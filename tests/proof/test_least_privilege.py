"""Least privilege, proved by use.

The integration and end-to-end tests run the whole system with every AWS call checked
against its function's role (``conveyor.local.iam``) and recorded, in a directory per
deploy profile. This test takes each profile's records and that profile's synthesized
template, and asks an IAM policy evaluator
(``@cloud-copilot/iam-simulate``, run by ``simulate.mjs``) three things:

* would the deployed role allow every call that was made? (else AccessDenied in AWS);
* did the local check decide each call as the evaluator does? (it is no laxer);
* is every grant of every role used by some call, or explained in the topology?

It runs after the tests that make the records (``make test`` runs it last); on its own,
with no records, it fails and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conveyor.local.emulator import EMULATOR_ACCOUNT, EMULATOR_REGION
from conveyor.local.iam import RECORD_ENV, arn, role_policy
from conveyor.topology import TOPOLOGY, USED_BY_AWS, Function, Kind, Profile
from tests.infra.conftest import Synthesized, Template, as_list

DEPLOYABLE = TOPOLOGY.with_canary()
"""Every function a deployment can have, the canary among them, held against each
profile's template synthesized with it (``-c canary=true``)."""

HERE = Path(__file__).parent
SIMULATOR = HERE / "simulate.mjs"

KINDS = {
    "AWS::SQS::Queue": Kind.QUEUE,
    "AWS::SNS::Topic": Kind.TOPIC,
    "AWS::DynamoDB::Table": Kind.TABLE,
    "AWS::DynamoDB::GlobalTable": Kind.TABLE,
    "AWS::S3::Bucket": Kind.BUCKET,
    "AWS::SecretsManager::Secret": Kind.SECRET,
}


@dataclass(frozen=True)
class Atom:
    """One action on one resource pattern of a role's policy: the unit a call uses."""

    sid: str
    action: str
    resource: str


@dataclass(frozen=True)
class Recorded:
    action: str
    resource: str
    allowed: bool


def records(profile: Profile) -> dict[str, set[Recorded]]:
    """What the local stacks of ``profile`` recorded, by function."""
    where = os.environ.get(RECORD_ENV)
    if not where or not (Path(where) / profile).is_dir():
        pytest.fail(
            f"no IAM records of the {profile} profile: run the integration and e2e tests "
            f"with {RECORD_ENV}=<dir> first, then this test with the same setting "
            "(`make test` does both)"
        )
    found: dict[str, set[Recorded]] = {}
    for path in sorted((Path(where) / profile).glob("*.jsonl")):
        lines = path.read_text().splitlines()
        found[path.stem] = {Recorded(**json.loads(line)) for line in lines}
    return found


def resolve(template: Template, expression: Any) -> str:
    """A policy's resource expression as the canonical ARN the local runtime records."""
    if isinstance(expression, str):
        return expression
    if "Fn::Join" in expression:
        delimiter, parts = expression["Fn::Join"]
        return str(delimiter).join(resolve(template, p) for p in parts)
    if "Ref" in expression and str(expression["Ref"]).startswith("AWS::"):
        pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": EMULATOR_REGION,
            "AWS::AccountId": EMULATOR_ACCOUNT,
        }
        return pseudo[expression["Ref"]]
    logical_id = expression.get("Ref") or expression["Fn::GetAtt"][0]
    kind = template.resources[logical_id]["Type"]
    if kind == "AWS::Logs::LogGroup":
        return f"arn:aws:logs:{EMULATOR_REGION}:{EMULATOR_ACCOUNT}:log-group:{logical_id}:*"
    return arn(KINDS[kind], template.name_of(logical_id))


def role_atoms(template: Template, function: str) -> list[Atom]:
    """The function's role policy in the template, split into single-action atoms."""
    role = template.named("AWS::IAM::Role")[function]
    atoms: list[Atom] = []
    for policy in template.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            # Role policies here are plain allows; anything else needs more than atoms.
            assert statement["Effect"] == "Allow", statement
            assert not {"Condition", "NotAction", "NotResource"} & statement.keys(), statement
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    sid = f"A{len(atoms)}"
                    atoms.append(Atom(sid, action, resolve(template, resource)))
    return atoms


def document(atoms: list[Atom]) -> dict[str, Any]:
    statements = [
        {"Sid": a.sid, "Effect": "Allow", "Action": a.action, "Resource": a.resource} for a in atoms
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def simulate(
    policies: dict[str, dict[str, Any]], requests: list[dict[str, str]]
) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules").is_dir():
        pytest.fail("the IAM evaluator is not installed: npm ci --prefix tests/proof")
    answer = subprocess.run(
        [node, str(SIMULATOR)],
        input=json.dumps({"policies": policies, "requests": requests}),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    answers: list[dict[str, Any]] = json.loads(answer.stdout)
    assert len(answers) == len(requests)
    return answers


def principal(function: str) -> str:
    return f"arn:aws:iam::{EMULATOR_ACCOUNT}:role/conveyor-{function}"


def why_uncalled(function: Function, atom: Atom) -> str | None:
    """The topology's reason for a grant no call used, if it gives one."""
    if atom.action in USED_BY_AWS:
        return USED_BY_AWS[atom.action]
    for grant in DEPLOYABLE.permissions(function):
        if arn(grant.kind, grant.resource, grant.scope) == atom.resource:
            reasons = dict(grant.why_uncalled)
            if atom.action in reasons:
                return reasons[atom.action]
    return None


@dataclass
class Verdicts:
    denied_in_aws: list[str]
    disagreements: list[str]
    invalid: list[str]
    unused: list[str]
    explained: list[str]


Asked = list[tuple[str, str, Recorded]]
"""(policy: deployed or local, function, recorded call), one per request to the evaluator."""


def ask(
    recorded: dict[str, set[Recorded]], atoms: dict[str, list[Atom]]
) -> tuple[Asked, list[dict[str, Any]]]:
    """Every recorded call against the deployed role and against the local one."""
    policies: dict[str, dict[str, Any]] = {}
    requests: list[dict[str, str]] = []
    asked: Asked = []
    for function in DEPLOYABLE.functions:
        policies[f"deployed-{function.name}"] = document(atoms[function.name])
        policies[f"local-{function.name}"] = role_policy(DEPLOYABLE, function)
        for call in sorted(recorded[function.name], key=lambda c: (c.action, c.resource)):
            for which in ("deployed", "local"):
                requests.append(
                    {
                        "policy": f"{which}-{function.name}",
                        "principal": principal(function.name),
                        "action": call.action,
                        "resource": call.resource,
                    }
                )
                asked.append((which, function.name, call))
    return asked, simulate(policies, requests)


def judge(asked: Asked, answers: list[dict[str, Any]], found: Verdicts) -> set[tuple[str, str]]:
    """Fills in the calls' verdicts; returns the (function, atom sid) pairs some call used."""
    used: set[tuple[str, str]] = set()
    for (which, name, call), answer in zip(asked, answers, strict=True):
        said = f"{name}: {call.action} on {call.resource}"
        if answer["result"] == "Error":
            found.invalid.append(f"{said}: {answer['errors']}")
            continue
        allowed = answer["result"] == "Allowed"
        if which == "deployed":
            used.update((name, sid) for sid in answer["allowedBy"])
            if not allowed:
                found.denied_in_aws.append(f"{said} ({answer['result']})")
        elif allowed != call.allowed:
            local = "allowed" if call.allowed else "denied"
            found.disagreements.append(f"{said}: locally {local}, evaluator {answer['result']}")
    return used


@pytest.fixture(scope="module", params=list(Profile), ids=str)
def profile(request: pytest.FixtureRequest) -> Profile:
    """Each profile's recorded calls, against that profile's own template."""
    return Profile(request.param)


@pytest.fixture(scope="module")
def verdicts(profile: Profile, canaried: dict[Profile, Synthesized]) -> Verdicts:
    recorded = records(profile)
    missing = sorted({f.name for f in DEPLOYABLE.functions} - recorded.keys())
    if missing:
        pytest.fail(
            f"no calls were recorded for {missing} in the {profile} profile: did the "
            "integration tests run?"
        )
    app = canaried[profile].app
    atoms = {f.name: role_atoms(app, f.name) for f in DEPLOYABLE.functions}
    asked, answers = ask(recorded, atoms)
    found = Verdicts([], [], [], [], [])
    used = judge(asked, answers, found)
    for function in DEPLOYABLE.functions:
        for atom in atoms[function.name]:
            if (function.name, atom.sid) in used:
                continue
            reason = why_uncalled(function, atom)
            line = f"{function.name}: {atom.action} on {atom.resource}"
            if reason:
                found.explained.append(f"{line}: {reason}")
            else:
                found.unused.append(line)
    report = Path(os.environ[RECORD_ENV]) / profile / "proof.txt"
    lines = [f"{len(asked) // 2} recorded calls", "granted and never called, explained:"]
    report.write_text("\n".join(lines + [f"  {line}" for line in found.explained]) + "\n")
    return found


def test_every_recorded_call_is_a_real_iam_action(verdicts: Verdicts) -> None:
    assert not verdicts.invalid, "not IAM actions or resources:\n" + "\n".join(verdicts.invalid)


def test_the_deployed_roles_allow_every_call_the_functions_made(verdicts: Verdicts) -> None:
    assert not verdicts.denied_in_aws, "AWS would deny:\n" + "\n".join(verdicts.denied_in_aws)


def test_the_local_check_decides_as_the_evaluator_does(verdicts: Verdicts) -> None:
    assert not verdicts.disagreements, "\n".join(verdicts.disagreements)


def test_every_grant_is_used_or_the_topology_says_why(verdicts: Verdicts) -> None:
    assert not verdicts.unused, "granted, never called, and no reason in the topology:\n" + (
        "\n".join(verdicts.unused)
    )


def test_the_records_cover_every_function_and_its_trigger(profile: Profile) -> None:
    # A proof over too few calls proves little: each queue consumer must have polled
    # with its role, and each function must have made a call of its own.
    recorded = records(profile)
    for function in DEPLOYABLE.functions:
        actions = {c.action for c in recorded[function.name]}
        own = actions - {"sqs:ReceiveMessage", "sqs:DeleteMessage"}
        assert own, function.name
        if function.name in {f.name for f, _ in DEPLOYABLE.sqs_triggered()}:
            assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions, function.name
