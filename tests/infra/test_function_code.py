"""What ships to Lambda is the include list of deployed packages, and nothing else."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conveyor.infra.layers import PYC_SUFFIX, build_function_code, compile_for_lambda
from conveyor.local.interpreter import choose
from conveyor.topology import LAMBDA_PYTHON
from tests.infra.conftest import Synthesized

# Spelled out here, not read from the app: adding a package to what ships must fail here.
DEPLOYED_ROOTS = ("conveyor/core/", "conveyor/functions/", "conveyor/aws/", "conveyor/verify/")


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
    top = ("conveyor/__init__.py", f"conveyor/__pycache__/__init__{PYC_SUFFIX}")
    strays = [f for f in files if f not in top and not f.startswith(DEPLOYED_ROOTS)]
    assert strays == [], "host code in the Lambda package"
    for entry_point in ("publisher", "billing", "archive", "presign", "images", "canary"):
        assert f"conveyor/functions/{entry_point}.py" in files
    assert "conveyor/verify/photograph.jpg" in files, "the canary's upload check sends it"
    # Bytecode only beside its module, and only for Lambda's Python (after `make build`).
    for f in files:
        if f.endswith(".pyc"):
            folder, _, name = f.rpartition("/__pycache__/")
            assert name.endswith(PYC_SUFFIX), f
            assert f"{folder}/{name.removesuffix(PYC_SUFFIX)}.py" in files, f


def lambda_python() -> str:
    interpreter = choose()
    assert interpreter.deployed, f"CPython {LAMBDA_PYTHON} is needed: make lambda-python"
    return interpreter.path


def test_built_code_carries_unchecked_hash_bytecode_for_lambdas_python(tmp_path: Path) -> None:
    python = lambda_python()
    built = build_function_code(python, tmp_path / "code")
    sources = sorted(built.rglob("*.py"))
    assert sources
    magic = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util, sys; sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER)",
        ],
        capture_output=True,
        check=True,
    ).stdout
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}{PYC_SUFFIX}"
        header = pyc.read_bytes()[:16]
        assert header[:4] == magic, pyc
        # PEP 552: flags 0b01 is hash-based and not checked against the source, so the
        # modification times a zip extraction leaves do not matter.
        assert int.from_bytes(header[4:8], "little") == 0b01, pyc


def test_every_module_of_a_layer_is_compiled(tmp_path: Path) -> None:
    layer = tmp_path / "layer" / "python" / "package"
    layer.mkdir(parents=True)
    for name in ("a", "b"):
        (layer / f"{name}.py").write_text(f"VALUE = {name!r}\n")
    assert compile_for_lambda(tmp_path / "layer", lambda_python()) == 2
