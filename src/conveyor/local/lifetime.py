"""How child processes of the runtime behave around its lifetime."""

from __future__ import annotations

import signal


def ignore_interrupts() -> None:
    """Ctrl-C reaches the whole process group; only the runtime should act on it, so
    that it can stop its children in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
