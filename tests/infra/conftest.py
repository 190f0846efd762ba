"""The app synthesized once per session, offline, and helpers to read its templates."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "16,18,20")

from aws_cdk import Stack
from aws_cdk.assertions import Match
from aws_cdk.assertions import Template as Assertions

from conveyor.infra.app import make_app
from conveyor.infra.data import NAME_TAG
from conveyor.topology import APP_STACKS, DEFAULT_PROFILE, NETWORK_STACK, Profile


@dataclass
class Template:
    """One synthesized stack's template, with its resources indexed by topology name."""

    stack: Stack
    body: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.body["Resources"])

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}

    def named(self, kind: str) -> dict[str, str]:
        """Topology name -> logical id, for resources of ``kind`` tagged with their name."""
        found = {}
        for logical_id, resource in self.of_type(kind).items():
            for tag in resource.get("Properties", {}).get("Tags", []):
                if tag["Key"] == NAME_TAG:
                    found[tag["Value"]] = logical_id
        return found

    def name_of(self, logical_id: str) -> str:
        for tag in self.resources[logical_id].get("Properties", {}).get("Tags", []):
            if tag["Key"] == NAME_TAG:
                return str(tag["Value"])
        raise KeyError(f"{logical_id} carries no {NAME_TAG} tag")

    def describe(self, expression: Any) -> str:
        """A readable ``kind:name[/scope]`` for a resource reference in a policy."""
        if isinstance(expression, dict) and "Fn::Join" in expression:
            parts = expression["Fn::Join"][1]
            return self.describe(parts[0]) + "".join(p for p in parts[1:] if isinstance(p, str))
        if isinstance(expression, dict) and ("Ref" in expression or "Fn::GetAtt" in expression):
            logical_id = expression.get("Ref") or expression["Fn::GetAtt"][0]
            kind = self.resources[logical_id]["Type"].split("::")[-1].lower()
            return (
                f"{kind}:{self.name_of(logical_id)}"
                if kind != "loggroup"
                else (f"loggroup:{logical_id}")
            )
        return f"literal:{expression}"


@dataclass
class Synthesized:
    """One profile's synthesized stacks."""

    app: Template
    outdir: Path
    network_template: Template | None = None

    @property
    def network(self) -> Template:
        assert self.network_template is not None, "the lean profile has no network stack"
        return self.network_template

    @property
    def templates(self) -> list[Template]:
        """Every stack of the profile, in the order they deploy."""
        return [t for t in (self.network_template, self.app) if t is not None]


def synthesize(root: Path, context: dict[str, str] | None = None) -> Synthesized:
    """The app synthesized offline into ``root``, with ``context`` as ``-c`` would give."""
    app = make_app(str(root / "cdk.out"), layers_dir=root / "layers", context=context)
    assembly = app.synth()
    profile = Profile((context or {}).get("profile", DEFAULT_PROFILE))
    stacks = {child.node.id: child for child in app.node.children if isinstance(child, Stack)}

    def template(name: str) -> Template:
        return Template(stacks[name], assembly.get_stack_by_name(name).template)

    network = NETWORK_STACK if profile is Profile.PRIVATE else None
    return Synthesized(
        app=template(APP_STACKS[profile]),
        outdir=root / "cdk.out",
        network_template=template(network) if network else None,
    )


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default profile (private), as ``make synth`` builds it."""
    return synthesize(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="session")
def lean(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The lean profile (``-c profile=lean``)."""
    return synthesize(tmp_path_factory.mktemp("synth-lean"), {"profile": Profile.LEAN})


@pytest.fixture(scope="session")
def profiles(synthesized: Synthesized, lean: Synthesized) -> dict[Profile, Synthesized]:
    return {Profile.PRIVATE: synthesized, Profile.LEAN: lean}


@pytest.fixture(scope="session")
def canaried(tmp_path_factory: pytest.TempPathFactory) -> dict[Profile, Synthesized]:
    """Each profile with the canary (``-c canary=true``)."""
    return {
        profile: synthesize(
            tmp_path_factory.mktemp(f"synth-canary-{profile}"),
            {"profile": profile, "canary": "true"},
        )
        for profile in Profile
    }


@pytest.fixture(
    params=[(p, c) for c in (False, True) for p in Profile],
    ids=lambda v: f"{v[0]}{'+canary' if v[1] else ''}",
)
def each_variant(
    request: pytest.FixtureRequest, profiles: dict[Profile, Synthesized]
) -> Synthesized:
    """Each profile, without and with the canary: for what every deployable must pass."""
    profile, canary = request.param
    if canary:
        return request.getfixturevalue("canaried")[profile]  # type: ignore[no-any-return]
    return profiles[profile]


@pytest.fixture(params=list(Profile), ids=str)
def each_profile(
    request: pytest.FixtureRequest, profiles: dict[Profile, Synthesized]
) -> Synthesized:
    """Each profile's synthesis in turn: for what must hold of both."""
    return profiles[request.param]


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# AWS's managed CloudFront policies, by their fixed ids.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_AND_CLOUDFRONT_2022 = "33f36d7e-f396-46d9-90e0-52428a34d9dc"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


def assert_api_distribution(template: Template, origin_request_policy: str, origin: Any) -> None:
    """The API's distribution: HTTPS only, every method, nothing cached, and every
    request forwarded as ``origin_request_policy`` says, to an origin like ``origin``."""
    Assertions.from_stack(template.stack).has_resource_properties(
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": Match.object_like(
                {
                    "Comment": "conveyor API",
                    "DefaultCacheBehavior": Match.object_like(
                        {
                            "ViewerProtocolPolicy": "https-only",
                            # Every method, header and body goes through unchanged, so
                            # the signature verifies as sent; no answer is ever cached.
                            "AllowedMethods": Match.array_with(["GET", "POST", "DELETE"]),
                            "CachePolicyId": CACHING_DISABLED,
                            "OriginRequestPolicyId": origin_request_policy,
                        }
                    ),
                    "Origins": [Match.object_like(origin)],
                }
            )
        },
    )
