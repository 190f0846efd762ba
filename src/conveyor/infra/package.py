"""The function code asset: an include list of the packages that run in Lambda.

Only the pure core, the function entry points and the AWS-side helpers they share are
deployed. Anything else in ``conveyor`` (the local runtime, operator tools, the CLI, this
CDK app) stays on the host, whether or not someone remembers to exclude it.

``make build`` stages it in ``build/function-code`` with bytecode for Lambda's Python
(see :func:`conveyor.infra.layers.compile_for_lambda`); synthesis uses that copy while it
matches the sources, and otherwise stages the sources alone.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from functools import cache
from pathlib import Path

from conveyor import DEPLOYED_PACKAGES
from conveyor.infra.settings import FUNCTION_CODE_DIR, SOURCE_DIR

DIGEST = FUNCTION_CODE_DIR.with_suffix(".sources")
"""The digest of the sources ``build/function-code`` was built from (kept beside it, so
that it does not ship)."""


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


def sources_digest() -> str:
    """A digest of every deployed file (sources and data), path and content."""
    digest = hashlib.sha256()
    package = SOURCE_DIR / "conveyor"
    files = [package / "__init__.py"]
    files += sorted(
        p
        for name in DEPLOYED_PACKAGES
        for p in (package / name).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    for path in files:
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def built_is_current() -> bool:
    return DIGEST.exists() and DIGEST.read_text() == sources_digest()


@cache
def function_code_dir() -> Path:
    """What the functions' code asset is made of: ``make build``'s compiled copy when it
    matches the sources; else a staged copy of the sources for this process (parallel
    syntheses never share one), removed when the process ends (the CDK has copied it)."""
    if built_is_current():
        return FUNCTION_CODE_DIR
    staged = Path(tempfile.mkdtemp(prefix="conveyor-function-code-"))
    atexit.register(shutil.rmtree, staged, ignore_errors=True)
    return stage(staged)
