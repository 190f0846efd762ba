"""Function costs: cold-start imports against a bare ``import boto3``, warm CPU time per
request or batch with the AWS calls stubbed, and the size of what is deployed.

Traces are sampled as deployed (5%); ``BENCH_TRACE_SAMPLE=1`` times every span sent."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.aws.config import DEFAULT_TRACE_SAMPLE, sampling_environment
from conveyor.infra.layers import LAYERS, build_layer, size_of
from conveyor.infra.package import function_code_dir
from conveyor.infra.settings import LAYERS_DIR
from conveyor.local.interpreter import choose
from conveyor.topology import RUNTIME_SETTINGS, TOPOLOGY

COLD_RUNS = 15
WARM_RUNS = 2000
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    # Every module, this project's and the libraries', is timed from compiled bytecode,
    # as a deployment that ships it runs; kept out of the source tree.
    "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "conveyor-bench-pycache"),
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    # What every deployed function runs with.
    **RUNTIME_SETTINGS,
    # As active tracing gives it, at the deployed default sample: a sampled span is
    # encoded and sent, as in Lambda (nothing listens; a datagram costs the same).
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    **sampling_environment(float(os.environ.get("BENCH_TRACE_SAMPLE", DEFAULT_TRACE_SAMPLE))),
}


def _fresh(python: str, code: str) -> str:
    return subprocess.run(
        [python, "-c", code], env=ENV, capture_output=True, text=True, check=True
    ).stdout


def _import_code(libraries: list[str], module: str | None) -> str:
    """A program that imports ``libraries``, then ``module``, and prints how long each
    step took (the interpreter's own start-up excluded): what ``module`` adds on top of
    its libraries is timed on its own, not as the difference of two noisy processes."""
    return (
        "import importlib, time\n"
        "t = time.perf_counter()\n"
        f"for name in {libraries!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"  # a module only its package may import; it was loaded
        "        pass\n"
        "middle = time.perf_counter()\n"
        f"if {module!r}:\n"
        f"    importlib.import_module({module!r})\n"
        "print(middle - t, time.perf_counter() - middle)"
    )


def import_ms(
    python: str, imports: dict[str, tuple[list[str], str | None]]
) -> dict[str, tuple[float, float]]:
    """Median ms of each entry's two steps (its libraries, then its module) in a fresh
    interpreter. The entries take turns, run after run, so that a busy spell on the
    shared machine slows them all alike instead of skewing one ratio."""
    programs = {name: _import_code(*modules) for name, modules in imports.items()}
    for program in programs.values():
        _fresh(python, program)  # writes the bytecode
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in programs}
    for _ in range(COLD_RUNS):
        for name, program in programs.items():
            libraries, module = map(float, _fresh(python, program).split())
            samples[name].append((libraries * 1000, module * 1000))
    return {
        name: (
            statistics.median(libraries for libraries, _ in values),
            statistics.median(module for _, module in values),
        )
        for name, values in samples.items()
    }


def libraries_of(python: str, module: str) -> list[str]:
    """The third-party modules that importing ``module`` loads, in the order it loads them:
    the part of its cold start that is the libraries' and not this project's."""
    code = (
        f"import sys; import {module}; print('\\n'.join(name for name in sys.modules"
        " if name.partition('.')[0] not in sys.stdlib_module_names | {'conveyor'}"
        " and not name.startswith('_')))"  # __main__, and the interpreter's own start-up hooks
    )
    return _fresh(python, code).split()


FUNCTIONS = {function.name for function in TOPOLOGY.functions}
LIBRARY_PARTS = {
    "pydantic (BaseModel)": "pydantic.main",
    "Powertools Logger and Metrics": "aws_lambda_powertools",
    "Powertools event_handler": "aws_lambda_powertools.event_handler",
    "Powertools batch": "aws_lambda_powertools.utilities.batch",
    "Pillow (Image)": "PIL.Image",
    "OpenTelemetry SDK (trace)": "opentelemetry.sdk.trace",
    "OpenTelemetry botocore instrumentation": "opentelemetry.instrumentation.botocore",
    "OTLP encoding (protobuf)": "opentelemetry.exporter.otlp.proto.common.trace_encoder",
}
"""What each library the functions are built on adds to ``import boto3`` on its own."""


TRACING = "tracing (conveyor.aws.tracing with its libraries)"


def cold_starts() -> dict[str, Any]:
    """Timed on Lambda's Python (``make lambda-python``) when it is built."""
    python = choose()
    imports: dict[str, tuple[list[str], str | None]] = {"boto3": (["boto3"], None)}
    for part, module in LIBRARY_PARTS.items():
        imports[f"boto3 + {part}"] = (["boto3", module], None)
    for function in TOPOLOGY.functions:
        imports[function.name] = (libraries_of(python.path, function.module), function.module)
    # Tracing whole: its libraries and its setup (the instrumentation patching botocore,
    # the exporter) on top of what every function loads anyway.
    imports[TRACING] = (["boto3", "aws_lambda_powertools"], "conveyor.aws.tracing")
    ms = import_ms(python.path, imports)
    baseline = ms["boto3"][0]
    found: dict[str, Any] = {
        "python": python.describe(),
        "boto3 (baseline)": {"ms": round(baseline, 1), "x boto3": 1.0},
    }
    for part in LIBRARY_PARTS:
        libraries, _ = ms[f"boto3 + {part}"]
        found[f"boto3 + {part}"] = {
            "ms": round(libraries, 1),
            "x boto3": round(libraries / baseline, 2),
        }
    base, tracing = ms[TRACING]
    found[TRACING] = {
        "boto3 + Powertools, ms": round(base, 1),
        "tracing on top, ms": round(tracing, 1),
        "tracing on top, x boto3": round(tracing / baseline, 2),
    }
    for function in TOPOLOGY.functions:
        libraries, own = ms[function.name]
        found[function.name] = {
            "its libraries alone, ms": round(libraries, 1),
            "its libraries alone, x boto3": round(libraries / baseline, 2),
            "own modules on top, ms": round(own, 1),
            "own modules on top, x boto3": round(own / baseline, 3),
        }
    return found


class _Stub:
    """An AWS client whose every call answers at once, so only our code is measured; it
    counts the calls, each a round trip in AWS."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        def call(**_: Any) -> dict[str, Any]:
            self.calls.append(name)
            return self.answer

        return call


def _cpu_ms(call: Callable[[], object], runs: int) -> float:
    call()
    samples = []
    for _ in range(runs):
        started = time.process_time()
        call()
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


def warm_costs() -> dict[str, Any]:
    os.environ.update({k: v for k, v in ENV.items() if k.startswith(("AWS_", "OTEL_"))})
    os.environ.update(
        {
            "ORDERS_TOPIC_ARN": "arn:t",
            "CLIENT_SECRETS_ID": "s",
            "ORDERS_TABLE": "orders",
            "IDEMPOTENCY_TABLE": "idempotency",
            "ARCHIVE_BUCKET": "b",
            "DEAD_LETTER_QUEUE_URL": "q",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    from aws_lambda_powertools.utilities import parameters

    from conveyor.aws import clients
    from conveyor.core.orders import Order, accept
    from conveyor.core.signing import sign
    from conveyor.functions import archive, billing, publisher
    from conveyor.local.edges import AlbEdge, Request
    from conveyor.local.mapping import sqs_event
    from conveyor.local.workers import LambdaContext
    from conveyor.topology import HttpRoute

    secret = "bench-secret-0123456789"  # noqa: S105 - a made-up client for the benchmark
    # The steady state: the secret table is in the function's cache.
    parameters.get_secret = lambda *a, **k: {"bench": [secret]}  # type: ignore[assignment]
    stubs = {
        "sns": _Stub({"MessageId": "m"}),
        "dynamodb": _Stub({}),
        "s3": _Stub({}),
        "sqs": _Stub({}),
    }
    clients.clear_cache()
    for module in (publisher, billing, archive):
        module.client = stubs.__getitem__  # type: ignore[attr-defined]
    context: Any = LambdaContext("bench", 256, "arn", "r", deadline=time.monotonic() + 3600)
    order = {
        "customer_id": "cust-1",
        "currency": "EUR",
        "items": [{"sku": f"SKU-{n}", "quantity": n + 1, "unit_price": "19.99"} for n in range(3)],
    }
    body = json.dumps(order).encode()

    def post() -> object:
        headers = {
            "content-type": "application/json",
            **sign("bench", secret, "POST", "/orders", body, time.time()),
        }
        request = Request("POST", "/orders", headers, body, "127.0.0.1")
        return publisher.handler(AlbEdge().event(request, HttpRoute("/orders")), context)

    accepted = accept(
        Order.model_validate(order),
        order_id="o",
        client_id="bench",
        correlation_id="c",
        now=datetime.now(UTC),
    )
    batch = sqs_event(
        [
            {
                "MessageId": f"m{n}",
                "ReceiptHandle": "r",
                "Body": accepted.model_dump_json().replace('"o"', f'"o{n}"', 1),
            }
            for n in range(10)
        ],
        "arn:q",
        "us-east-1",
    )
    # Every invocation writes its EMF line, as in Lambda; to a sink, not the bench's table.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for stub in stubs.values():
            stub.calls.clear()
        assert post()["statusCode"] == 202  # type: ignore[index]
        trips = sorted(f"{name}.{call}" for name, stub in stubs.items() for call in stub.calls)
        return {
            "publisher AWS round trips per request": len(trips),
            "publisher calls": ", ".join(trips),
            "publisher per request": round(_cpu_ms(post, WARM_RUNS), 3),
            "billing per batch of 10": round(
                _cpu_ms(lambda: billing.handler(batch, context), WARM_RUNS // 4), 3
            ),
            "archive per batch of 10": round(
                _cpu_ms(lambda: archive.handler(batch, context), WARM_RUNS // 4), 3
            ),
        }


def package_sizes() -> dict[str, float]:
    """MB zipped as Lambda receives them: the function code and each layer."""

    def zipped(root: Path, name: str) -> float:
        path = LAYERS_DIR.parent / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive_file:
            for file in sorted(root.rglob("*")):
                relative = file.relative_to(root).as_posix()
                if file.is_file() and "__pycache__" not in relative:
                    archive_file.write(file, relative)
        return round(path.stat().st_size / 1e6, 2)

    sizes = {"function code (zipped)": zipped(function_code_dir(), "function-code")}
    for name in LAYERS:
        layer = LAYERS_DIR / name
        if not (layer / "python" / "NOT_BUILT").exists() and (layer / "python").is_dir():
            path = layer
        else:
            path = build_layer(name)
        sizes[f"layer {name} (unzipped)"] = round(size_of(path) / 1e6, 1)
        sizes[f"layer {name} (zipped)"] = zipped(path, name)
    return sizes


OWN_MODULES_MAX_X = 0.10
"""A function's own modules may add at most this much of ``import boto3`` to what its
libraries alone cost; the libraries themselves are a choice, not a target."""


def run() -> tuple[dict[str, Any], list[str]]:
    cold, warm, sizes = cold_starts(), warm_costs(), package_sizes()
    missed = [
        f"cold start: {name}'s own modules add {found['own modules on top, x boto3']}x "
        f"import boto3 on top of its libraries (target at most {OWN_MODULES_MAX_X}x)"
        for name, found in cold.items()
        if name in FUNCTIONS and found["own modules on top, x boto3"] > OWN_MODULES_MAX_X
    ]
    if warm["publisher per request"] > 1.0:
        missed.append(f"publisher takes {warm['publisher per request']} ms of CPU per request")
    result = {"cold start, ms": cold, "warm CPU, ms (median)": warm, "package MB": sizes}
    print(json.dumps(result, indent=1))
    return result, missed


if __name__ == "__main__":
    _, failures = run()
    print("\n".join(failures) or "all function targets met")
    sys.exit(1 if failures else 0)
