"""``make build``: the Lambda layers, installed for the Lambda platform without Docker.

pip installs manylinux wheels for Python 3.12 on arm64 into ``build/layers/<name>/python``,
at exactly the versions pinned in pyproject.toml (read from this environment's installed
distributions, so there is one place to change a version).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from conveyor.infra.settings import LAYERS_DIR
from conveyor.topology import LAMBDA_PYTHON

LAYERS = {
    "powertools": ("aws-lambda-powertools", "pydantic"),
    "imaging": ("pillow",),
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


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def runtime_requirements() -> list[str]:
    """What a function can import in Lambda: the layers' packages, and the runtime's
    boto3 (pinned here as the project pins it)."""
    return [pinned("boto3"), *(pinned(d) for name in LAYERS for d in LAYERS[name])]


def main() -> None:
    if sys.argv[1:] == ["--requirements"]:
        print("\n".join(runtime_requirements()))
        return
    for name in LAYERS:
        path = build_layer(name)
        print(f"{name:<11} {size_of(path) / 1e6:6.1f} MB  {path}")


if __name__ == "__main__":
    main()
