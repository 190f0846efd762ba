"""cfn-lint and cdk-nag on the synthesized templates of both profiles, with and without
the canary."""

from __future__ import annotations

import csv

from aws_cdk import Stack
from aws_cdk.assertions import Annotations, Match
from cfnlint.api import lint  # type: ignore[import-untyped]

from tests.infra.conftest import Synthesized


def test_cfn_lint_reports_no_errors(each_variant: Synthesized) -> None:
    errors = []
    templates = sorted(each_variant.outdir.glob("*.template.json"))
    assert len(templates) == len(each_variant.templates)
    for template in templates:
        matches = lint(template.read_text(), regions=["us-east-1"])
        errors += [f"{template.name}: {m}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_cdk_nag_reports_no_unsuppressed_errors(each_variant: Synthesized) -> None:
    for template in each_variant.templates:
        findings = Annotations.from_stack(template.stack).find_error(
            "*", Match.string_like_regexp("AwsSolutions-.*")
        )
        assert [f"{f.id}: {str(f.entry.data)[:200]}" for f in findings] == []


def test_every_suppression_has_a_reason_and_suppresses_something(
    each_variant: Synthesized,
) -> None:
    for template in each_variant.templates:
        stack: Stack = template.stack
        metadata = stack.template_options.metadata
        assert metadata is not None
        rules = list(metadata["cdk_nag"]["rules_to_suppress"])
        for resource in template.resources.values():
            rules += resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        assert rules
        for rule in rules:
            assert len(rule["reason"]) >= 40, rule["id"]
        report = each_variant.outdir / f"AwsSolutions--{stack.stack_name}-NagReport.csv"
        with report.open() as handle:
            suppressed = {
                row["Rule ID"].split("[")[0]
                for row in csv.DictReader(handle)
                if row["Compliance"] == "Suppressed"
            }
        assert {r["id"] for r in rules} == suppressed, "no stale suppressions"
