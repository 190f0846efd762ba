"""What ships to Lambda is the include list of deployed packages, and nothing else."""

from __future__ import annotations

from pathlib import Path

from tests.infra.conftest import Synthesized

# Spelled out here, not read from the app: adding a package to what ships must fail here.
DEPLOYED_ROOTS = ("conveyor/core/", "conveyor/functions/", "conveyor/aws/")


def function_code_assets(synthesized: Synthesized) -> set[Path]:
    """The asset directories the functions' code comes from, read from the template."""
    found = set()
    for resource in synthesized.app.of_type("AWS::Lambda::Function").values():
        key = resource["Properties"]["Code"].get("S3Key")
        if isinstance(key, str):  # the CDK's helper functions carry inline code
            found.add(synthesized.outdir / f"asset.{key.removesuffix('.zip')}")
    return found


def test_every_function_ships_only_the_deployed_packages(synthesized: Synthesized) -> None:
    [asset] = function_code_assets(synthesized)
    files = sorted(p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file())
    assert files, f"{asset} is empty"
    strays = [f for f in files if f != "conveyor/__init__.py" and not f.startswith(DEPLOYED_ROOTS)]
    assert strays == [], "host code in the Lambda package"
    for entry_point in ("publisher", "billing", "archive", "presign", "images"):
        assert f"conveyor/functions/{entry_point}.py" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
