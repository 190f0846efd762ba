"""Which Python the local functions run on: Lambda's, when this machine has it.

Lambda runs the functions on CPython 3.12 with the layers' packages. ``make
lambda-python`` builds the same here (``build/lambda-python``: CPython 3.12 with exactly
the layers' pinned packages and boto3, and this project's source on its path), and the
local runtime starts every function's workers on it. Without it, the workers run on the
host's Python, and ``conveyor up`` says so.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conveyor.topology import LAMBDA_PYTHON

ENV_DIR = Path(__file__).resolve().parents[3] / "build" / "lambda-python"
OVERRIDE = "CONVEYOR_LAMBDA_PYTHON"
"""An interpreter to run the functions on instead of ``build/lambda-python``."""


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str

    @property
    def deployed(self) -> bool:
        """Whether it is the Python that Lambda runs the functions on."""
        return self.version.rsplit(".", 1)[0] == LAMBDA_PYTHON

    def describe(self) -> str:
        if self.deployed:
            return f"Python {self.version}, as Lambda runs them"
        host = f"Python {self.version}, the host's"
        return f"{host}, not Lambda's {LAMBDA_PYTHON} (make lambda-python)"


def _version(path: str) -> str | None:
    try:
        found = subprocess.run(  # noqa: S603 - an interpreter we were pointed at
            [path, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip()


def choose() -> Interpreter:
    """Lambda's Python if it is prepared here, else this process's own."""
    candidate = os.environ.get(OVERRIDE) or str(ENV_DIR / "bin" / "python")
    version = _version(candidate) if Path(candidate).exists() else None
    if version is not None:
        return Interpreter(candidate, version)
    return Interpreter(sys.executable, platform.python_version())
