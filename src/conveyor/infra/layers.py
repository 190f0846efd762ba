"""``make build``: the Lambda layers and the function code, for Lambda's platform, without
Docker.

pip installs manylinux wheels for Python 3.12 on arm64 into ``build/layers/<name>/python``,
at exactly the versions pinned in pyproject.toml (read from this environment's installed
distributions, so there is one place to change a version). Then every module, the layers'
and the function code's (``build/function-code``), is compiled to bytecode by CPython 3.12
itself: Lambda's ``/opt`` and ``/var/task`` are read-only, so without it each cold start
would compile Powertools and pydantic from source. The pycs are unchecked-hash ones, valid
whatever modification times the zip extraction leaves.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from conveyor.infra.package import DIGEST, sources_digest, stage
from conveyor.infra.settings import FUNCTION_CODE_DIR, LAYERS_DIR
from conveyor.topology import LAMBDA_PYTHON

LAYERS = {
    "powertools": ("aws-lambda-powertools", "pydantic"),
    "imaging": ("pillow",),
    "telemetry": (
        "opentelemetry-api",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-common",
        "opentelemetry-instrumentation-botocore",
        "wrapt",
    ),
}
# Lambda's Python 3.12 runtime is Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels run.
PLATFORM = (
    "--platform",
    "manylinux2014_aarch64",
    "--platform",
    "manylinux_2_28_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    LAMBDA_PYTHON,
    "--only-binary=:all:",
)


def pinned(distribution: str) -> str:
    return f"{distribution}=={version(distribution)}"


def build_layer(name: str, destination: Path = LAYERS_DIR) -> Path:
    target = destination / name / "python"
    shutil.rmtree(target.parent, ignore_errors=True)
    target.mkdir(parents=True)
    subprocess.run(  # noqa: S603 - our own interpreter's pip, fixed arguments
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *PLATFORM,
            "--target",
            str(target),
            *(pinned(d) for d in LAYERS[name]),
        ],
        check=True,
    )
    for cache in target.rglob("__pycache__"):
        shutil.rmtree(cache)
    return target.parent


PYC_SUFFIX = f".cpython-{LAMBDA_PYTHON.replace('.', '')}.pyc"
"""The bytecode files Lambda's Python reads."""


def compile_for_lambda(root: Path, python: str) -> int:
    """Compile every module under ``root`` with ``python`` (Lambda's version) to
    unchecked-hash pycs; the number of pycs written."""
    subprocess.run(  # noqa: S603 - an interpreter the caller names, fixed arguments
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(root),
        ],
        check=True,
    )
    return lambda_pycs(root)


def lambda_pycs(root: Path) -> int:
    """How many bytecode files for Lambda's Python are under ``root``."""
    return sum(1 for _ in root.rglob(f"*{PYC_SUFFIX}"))


def build_function_code(python: str, destination: Path = FUNCTION_CODE_DIR) -> Path:
    """The deployed packages, compiled; synthesis uses them while the sources match."""
    shutil.rmtree(destination, ignore_errors=True)
    stage(destination)
    compile_for_lambda(destination, python)
    if destination == FUNCTION_CODE_DIR:
        DIGEST.write_text(sources_digest())
    return destination


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def runtime_requirements() -> list[str]:
    """What a function can import in Lambda: the layers' packages, and the runtime's
    boto3 (pinned here as the project pins it)."""
    return [pinned("boto3"), *(pinned(d) for name in LAYERS for d in LAYERS[name])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requirements", action="store_true", help="print the pins, build nothing")
    parser.add_argument("--python", help=f"CPython {LAMBDA_PYTHON}, to compile the bytecode with")
    args = parser.parse_args()
    if args.requirements:
        print("\n".join(runtime_requirements()))
        return
    if not args.python:
        parser.error(f"--python: CPython {LAMBDA_PYTHON} is needed to compile for Lambda")
    for name in LAYERS:
        path = build_layer(name)
        pycs = compile_for_lambda(path, args.python)
        print(f"{name:<14} {size_of(path) / 1e6:6.1f} MB  {pycs:5} pycs  {path}")
    code = build_function_code(args.python)
    pycs = lambda_pycs(code)
    print(f"{'function code':<14} {size_of(code) / 1e6:6.1f} MB  {pycs:5} pycs  {code}")


if __name__ == "__main__":
    main()
