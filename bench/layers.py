"""Cold imports from a layer as Lambda runs them: CPython 3.12 with bytecode writing off
(``/opt`` is read-only), from the layer as pip installs it and from the same layer with
the bytecode ``make build`` compiles (unchecked-hash pycs).

The built layers are for arm64 and cannot be imported here, so the benchmark installs
the same pinned packages for this machine's platform, the same way, and compiles them
the same way (:func:`conveyor.infra.layers.compile_for_lambda`). It also checks that the
built layers and function code carry a pyc for every module.
"""

from __future__ import annotations

import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from conveyor.infra.layers import LAYERS, compile_for_lambda, lambda_pycs, pinned
from conveyor.infra.package import built_is_current
from conveyor.infra.settings import FUNCTION_CODE_DIR, LAYERS_DIR
from conveyor.local.interpreter import choose
from conveyor.topology import LAMBDA_PYTHON

RUNS = 11
MIN_SPEED_UP = 1.2
"""Importing from the compiled layer must be at least this much faster."""
IMPORTS = [
    "boto3",
    "pydantic",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.batch",
]
PROGRAM = (
    "import importlib, time\n"
    "t = time.perf_counter()\n"
    f"for name in {IMPORTS!r}:\n"
    "    importlib.import_module(name)\n"
    "print(time.perf_counter() - t)"
)


def host_layer(destination: Path) -> Path:
    """The powertools layer's pins and boto3, for this machine, as pip installs them."""
    machine = platform.machine()
    target = destination / "python"
    platforms = (
        "--platform",
        f"manylinux2014_{machine}",
        "--platform",
        f"manylinux_2_28_{machine}",
    )
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *("--no-compile", "--only-binary=:all:", "--implementation", "cp"),
            *("--python-version", LAMBDA_PYTHON, "--target", str(target), *platforms),
            *(pinned("boto3"), *(pinned(d) for d in LAYERS["powertools"])),
        ],
        check=True,
    )
    for cache in target.rglob("__pycache__"):
        shutil.rmtree(cache)
    return destination


def import_ms(python: str, layer: Path) -> float:
    # -B: Lambda cannot write bytecode to /opt; -S: nothing but the layer and the stdlib.
    found = subprocess.run(
        [python, "-B", "-S", "-c", PROGRAM],
        env={"PYTHONPATH": str(layer / "python"), "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(found.stdout) * 1000


def counts(root: Path) -> dict[str, int]:
    return {
        "py": sum(1 for _ in root.rglob("*.py")),
        "pyc": lambda_pycs(root),
    }


def run() -> tuple[dict[str, Any], list[str]]:
    interpreter = choose()
    missed: list[str] = []
    if not interpreter.deployed:
        return {}, [f"CPython {LAMBDA_PYTHON} is needed (make lambda-python)"]
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-layers-") as scratch:
        plain = host_layer(Path(scratch) / "plain")
        compiled = Path(scratch) / "compiled"
        shutil.copytree(plain, compiled)
        compile_for_lambda(compiled, interpreter.path)
        samples: dict[str, list[float]] = {"without bytecode": [], "with bytecode": []}
        for _ in range(RUNS):  # interleaved, so a busy spell slows both alike
            samples["without bytecode"].append(import_ms(interpreter.path, plain))
            samples["with bytecode"].append(import_ms(interpreter.path, compiled))
    median = {name: round(statistics.median(values), 1) for name, values in samples.items()}
    speed_up = round(median["without bytecode"] / median["with bytecode"], 2)
    built = {name: counts(LAYERS_DIR / name) for name in LAYERS}
    built["function code"] = counts(FUNCTION_CODE_DIR) if built_is_current() else {}
    result = {
        "python": interpreter.version,
        "imports": IMPORTS,
        "cold import ms (median of 11, -B)": median,
        "speed-up": speed_up,
        "built by make build (py / pyc)": built,
    }
    if speed_up < MIN_SPEED_UP:
        missed.append(f"bytecode speeds the layer's cold import {speed_up}x (< {MIN_SPEED_UP}x)")
    for name, found in built.items():
        if not found or found["pyc"] < found["py"]:
            missed.append(f"{name}: run make build; it compiles every module ({found})")
    print(json.dumps(result, indent=1))
    return result, missed


if __name__ == "__main__":
    _, failures = run()
    print("\n".join(failures) or "all layer targets met")
    sys.exit(1 if failures else 0)
