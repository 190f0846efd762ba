"""The environment contract between the deployment (CDK or local runtime) and functions.

A function learns the identifiers of the resources it may touch from environment
variables named by its grants in :mod:`conveyor.topology`; nothing else is configured.
"""

from __future__ import annotations

import os

MAX_RECEIVE_COUNT = "MAX_RECEIVE_COUNT"
"""How many receives a queue consumer's queue allows before its DLQ, from the topology."""


class ConfigurationError(RuntimeError):
    pass


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigurationError(
            f"environment variable {name} is not set; the deployment sets it from the "
            "function's grants in conveyor.topology"
        )
    return value
