"""The package's shape: what ships to Lambda imports only what ships, and the packages
depend on each other one way."""

from __future__ import annotations

import ast
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from conveyor import DEPLOYED_PACKAGES

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "conveyor"
DEPLOYED = set(DEPLOYED_PACKAGES)
"""What ships to Lambda, verify's checks among it: the canary runs them."""
LAMBDA_LIBRARIES = {
    "boto3",
    "botocore",
    "aws_lambda_powertools",
    "pydantic",
    "PIL",
    "snapshot_restore_py",
    "opentelemetry",
}
"""What the deployed code may import besides itself and the standard library: the
runtime dependencies in pyproject.toml (the Lambda layers), and the SnapStart hooks that
Lambda's Python runtime provides."""


def unit_of(path: Path) -> str:
    """``core`` for conveyor/core/..., ``topology`` for conveyor/topology.py."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imports(path: Path) -> list[tuple[str, bool]]:
    """Every module ``path`` imports, anywhere in the file, and whether the import is
    only for the type checker (under ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in typing_only) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module == "conveyor":  # from conveyor import x: x is a unit of its own
                found += [
                    (f"conveyor.{alias.name}", id(node) in typing_only) for alias in node.names
                ]
            else:
                found.append((node.module, id(node) in typing_only))
    return found


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")


def test_deployed_code_imports_only_deployed_code_and_the_lambda_libraries() -> None:
    wrong = []
    for path in sources():
        if unit_of(path) not in DEPLOYED:
            continue
        for module, typing_only in imports(path):
            top = module.split(".")[0]
            if top == "conveyor":
                ok = module.split(".")[1] in DEPLOYED or module.split(".")[1] == unit_of(path)
            else:
                ok = top in LAMBDA_LIBRARIES or top in sys.stdlib_module_names
                ok = ok or (typing_only and top.startswith("mypy_boto3_"))
            if not ok:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert wrong == []


def dependencies() -> dict[str, set[str]]:
    """unit -> the other units of ``conveyor`` it imports."""
    graph: dict[str, set[str]] = {}
    for path in sources():
        unit = unit_of(path)
        graph.setdefault(unit, set())
        for module, _ in imports(path):
            parts = module.split(".")
            if parts[0] == "conveyor" and len(parts) > 1 and parts[1] != unit:
                graph[unit].add(parts[1])
    return graph


def test_packages_depend_on_each_other_one_way() -> None:
    graph = dependencies()
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as cycle:
        raise AssertionError(f"packages import each other: {cycle.args[1]}") from None
    assert order.index("core") < order.index("aws") < order.index("functions")
    for host in ("local", "ops", "cli", "infra"):
        assert not {host} & set().union(*(graph[d] for d in DEPLOYED)), host


def test_the_pure_core_imports_nothing_else_of_the_project() -> None:
    assert dependencies()["core"] == set()
