"""A verification's results for machines: JSON, and JUnit XML for CI."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree

from conveyor.verify.checks import Outcome, Result


def summary(results: Sequence[Result]) -> dict[str, int]:
    counted = Counter(r.outcome for r in results)
    return {outcome.value: counted[outcome] for outcome in Outcome}


def as_dict(results: Sequence[Result], run: dict[str, Any]) -> dict[str, Any]:
    return {
        "run": run,
        "summary": summary(results),
        "checks": [
            {
                "name": r.name,
                "outcome": r.outcome.value,
                "detail": r.detail,
                "evidence": r.evidence,
                "seconds": round(r.seconds, 3),
            }
            for r in results
        ],
    }


def as_json(results: Sequence[Result], run: dict[str, Any]) -> str:
    return json.dumps(as_dict(results, run), indent=2, default=str)


def as_junit(results: Sequence[Result], suite: str = "conveyor verify") -> str:
    counts = summary(results)
    root = ElementTree.Element(
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(counts[Outcome.FAIL]),
        skipped=str(counts[Outcome.SKIP]),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for result in results:
        case = ElementTree.SubElement(
            root,
            "testcase",
            classname="conveyor.verify",
            name=result.name,
            time=f"{result.seconds:.3f}",
        )
        if result.outcome is Outcome.FAIL:
            failure = ElementTree.SubElement(case, "failure", message=result.detail)
            failure.text = json.dumps(result.evidence, default=str)
        elif result.outcome is Outcome.SKIP:
            ElementTree.SubElement(case, "skipped", message=result.detail)
        ElementTree.SubElement(case, "system-out").text = json.dumps(result.evidence, default=str)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)
