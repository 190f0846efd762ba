"""The function code asset: an include list of the packages that run in Lambda.

Only the pure core, the function entry points and the AWS-side helpers they share are
deployed. Anything else in ``conveyor`` (the local runtime, operator tools, the CLI, this
CDK app) stays on the host, whether or not someone remembers to exclude it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from conveyor import DEPLOYED_PACKAGES
from conveyor.infra.settings import SOURCE_DIR


def stage(destination: Path) -> Path:
    """Copy the deployed packages (sources only) into ``destination``/conveyor."""
    package = SOURCE_DIR / "conveyor"
    target = destination / "conveyor"
    target.mkdir(parents=True)
    shutil.copy2(package / "__init__.py", target / "__init__.py")
    for name in DEPLOYED_PACKAGES:
        shutil.copytree(
            package / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return destination


@cache
def function_code_dir() -> Path:
    """A staged copy for this process (parallel syntheses never share one); the CDK
    copies it into the cloud assembly, so it is removed when the process ends."""
    staged = Path(tempfile.mkdtemp(prefix="conveyor-function-code-"))
    atexit.register(shutil.rmtree, staged, ignore_errors=True)
    return stage(staged)
