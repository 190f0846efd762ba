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


SECRETS_MAX_AGE = "CLIENT_SECRETS_MAX_AGE_S"
"""How long a function trusts its cached copy of the client secrets, in seconds."""
DEFAULT_SECRETS_MAX_AGE_S = 300
"""In AWS: a client added, rotated or retired counts everywhere after five minutes (retire
an old secret only after that). The local runtime sets 5 s."""


def secrets_max_age_s() -> int:
    return int(os.environ.get(SECRETS_MAX_AGE, DEFAULT_SECRETS_MAX_AGE_S))


API_URL = "API_URL"
"""Where clients reach the API: the edge's HTTPS URL in AWS, the local gateway locally."""
MEDIA_BASE_URL = "MEDIA_BASE_URL"
"""Where processed images are downloaded from: the CDN in AWS, the media origin locally."""


DEFAULT_TRACE_SAMPLE = 0.05
"""The share of orders and uploads traced in AWS (``-c trace_sample``); locally, all."""


def sampling_environment(rate: float) -> dict[str, str]:
    """OpenTelemetry's own variables for a sampling ``rate``: decided where a trace
    starts, followed by every hop after it."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"a trace sampling rate is between 0 and 1, not {rate}")
    return {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": str(rate)}
