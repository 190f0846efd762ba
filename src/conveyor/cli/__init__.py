"""``conveyor``: run the system on this machine and talk to it.

Thin commands: the work lives in :mod:`conveyor.local` and :mod:`conveyor.ops`, and
everything shown is built in :mod:`conveyor.cli.render`.
"""

from __future__ import annotations

import sys

from conveyor.cli import (  # noqa: F401 - registers the commands
    api,
    clients,
    dead_letters,
    info,
    stack,
    traces,
    verify,
)
from conveyor.cli.app import app


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)
