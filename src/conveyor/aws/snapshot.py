"""Safe to restore from a SnapStart snapshot (``-c snap_start=true``).

With SnapStart, Lambda runs a function's init once, snapshots its memory, and starts every
new execution environment from that snapshot, so whatever init made is shared by all of
them. The functions make nothing unique at init (ids and timestamps are made per request,
clients on first use), and what could still leak across restores is made afresh after
each one through the runtime's hook: the AWS clients (and any connection they hold), the
``random`` module's state and the generator of trace ids (:mod:`conveyor.aws.tracing`).
"""

from __future__ import annotations

import random
from collections.abc import Callable

try:  # Lambda's Python runtime (3.12 and later) provides the hooks
    from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]
except ImportError:  # anywhere else there is no snapshot to restore from
    register_after_restore = None

HOOKS: list[Callable[[], object]] = []
"""What runs after a restore, in order of registration."""


def after_restore(hook: Callable[[], object]) -> Callable[[], object]:
    """Run ``hook`` after every restore from a snapshot; usable as a decorator."""
    HOOKS.append(hook)
    if register_after_restore is not None:
        register_after_restore(hook)
    return hook


after_restore(random.seed)  # no argument: fresh entropy from the operating system
