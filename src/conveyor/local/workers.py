"""One process per function instance, each with only that function's environment.

Like a Lambda execution environment, a worker runs one invocation at a time, keeps its
module state (clients, caches) between invocations, and is thrown away when it times
out or dies; the pool starts a fresh one in its place. A worker is a plain child process
of the interpreter it is given (Lambda's Python where this machine has it, see
:mod:`conveyor.local.interpreter`), linked to the runtime by one socket.
"""

from __future__ import annotations

import decimal
import importlib
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import Any

from conveyor import DEPLOYED_PACKAGES
from conveyor.local.iam import Guard
from conveyor.topology import Function

START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class WorkerSpec:
    function: str
    handler: str
    timeout_s: int
    memory_mb: int
    env: Mapping[str, str]
    log_path: Path
    guard: Guard | None = None
    """The function's role, applied to every AWS call the worker makes."""
    python: str = sys.executable
    """The interpreter the worker runs on."""


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation: a result, or an error (raised, timed out, crashed)."""

    result: Any = None
    error: str | None = None
    error_type: str | None = None
    duration_ms: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class WholeLines(io.TextIOBase):
    """A text stream that hands its file whole lines, each in one ``write(2)``.

    The workers of one function append to one log file. A line-buffered stream writes a
    ``print()`` as two calls, the text and then the newline, so another worker's line
    could land in between and both lines (an EMF metric among them) would be lost to
    whoever parses the log. With ``O_APPEND`` a single write is never split.
    """

    encoding = "utf-8"

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._partial = ""

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, text: str) -> int:
        complete, newline, self._partial = (self._partial + text).rpartition("\n")
        if newline:
            self._write(complete + newline)
        return len(text)

    def close(self) -> None:
        if self._partial:
            self._write(self._partial)
            self._partial = ""
        super().close()

    def _write(self, text: str) -> None:
        data = text.encode("utf-8", "backslashreplace")
        while data:
            data = data[os.write(self._fd, data) :]


def log_to(path: Path) -> WholeLines:
    """Send this process's output to ``path``: Python's as whole lines, and native code's
    through the same descriptors."""
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    stream = WholeLines(1)
    sys.stdout = sys.stderr = stream
    return stream


class MarshalError(ValueError):
    """A handler's result that Lambda's Python runtime could not send back as JSON."""

    error_type = "Runtime.MarshalError"


def _runtime_default(value: Any) -> Any:
    # The Python runtime's encoder knows one type beyond JSON's own: Decimal, as a number.
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def marshalled(result: Any) -> Any:
    """The result as the caller receives it from Lambda: encoded to JSON by the runtime
    and decoded again. Whatever does not encode fails the invocation, as in Lambda."""
    try:
        return json.loads(json.dumps(result, default=_runtime_default))
    except (TypeError, ValueError) as exc:
        raise MarshalError(f"Unable to marshal response: {exc}") from exc


def forget_deployed_modules() -> None:
    """Drop the deployed code (and Powertools) that this process imported to start, so
    that the handler imports it afresh, as a Lambda cold start does: the worker's own
    module reads the topology, which imports some deployed modules."""
    packages = {f"conveyor.{name}" for name in DEPLOYED_PACKAGES} | {"aws_lambda_powertools"}
    for name in list(sys.modules):
        if any(name == p or name.startswith(f"{p}.") for p in packages):
            del sys.modules[name]


_BOOT = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv[2]); "
    "from conveyor.local.workers import main; main(int(sys.argv[1]))"
)


def import_paths() -> list[str]:
    """This process's own import paths (the project, the tests), without its standard
    library and installed packages, which the worker's interpreter has its own of."""
    installed = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    found = []
    for entry in sys.path:
        path = os.path.abspath(entry or os.getcwd())
        if os.path.isdir(path) and not any(path.startswith(p) for p in installed):
            found.append(path)
    return found


def main(fd: int) -> None:
    """A worker process: takes its spec over the socket at ``fd``, then serves."""
    connection = Connection(fd)
    _serve(connection, connection.recv())


def _serve(connection: Connection, spec: WorkerSpec) -> None:
    from conveyor.local.lifetime import ignore_interrupts

    # The worker's only link to the runtime is this socket: when the runtime goes away,
    # however it ends, recv() sees EOF and the worker returns.
    ignore_interrupts()
    output = log_to(spec.log_path)
    forget_deployed_modules()
    if spec.guard is not None:
        spec.guard.install()
    try:
        module_name, attribute = spec.handler.split(":", 1)
        handler: Callable[[Any, Any], Any] = getattr(
            importlib.import_module(module_name), attribute
        )
    except Exception:
        traceback.print_exc()
        connection.send({"ready": False, "error": traceback.format_exc(limit=3)})
        return
    connection.send({"ready": True})
    region = spec.env.get("AWS_DEFAULT_REGION", "us-east-1")
    arn = f"arn:aws:lambda:{region}:000000000000:function:{spec.function}"
    while True:
        try:
            event = connection.recv()
        except EOFError:
            output.close()
            return
        context = LambdaContext(
            function_name=spec.function,
            memory_limit_in_mb=spec.memory_mb,
            invoked_function_arn=arn,
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + spec.timeout_s,
        )
        started = time.perf_counter()
        try:
            outcome: dict[str, Any] = {"result": handler(event, context)}
        except Exception as exc:
            traceback.print_exc()
            outcome = {"error": str(exc) or type(exc).__name__, "error_type": type(exc).__name__}
        else:
            try:
                outcome["result"] = marshalled(outcome["result"])
            except MarshalError as exc:
                print(f"[ERROR] Runtime.MarshalError: {exc}", flush=True)
                outcome = {"error": str(exc), "error_type": MarshalError.error_type}
        outcome["duration_ms"] = (time.perf_counter() - started) * 1000
        connection.send(outcome)


class WorkerError(RuntimeError):
    pass


class _Worker:
    def __init__(self, spec: WorkerSpec) -> None:
        self.connection, child = Pipe()
        log = os.open(spec.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # Exactly the function's environment, as Lambda gives it; what fails before
            # the worker takes over its output still reaches the function's log.
            self.process = subprocess.Popen(  # noqa: S603 - our own boot line
                [spec.python, "-c", _BOOT, str(child.fileno()), json.dumps(import_paths())],
                env=dict(spec.env),
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            os.close(log)
            child.close()
        self.connection.send(spec)

    def wait_ready(self, timeout_s: float) -> None:
        if not self.connection.poll(timeout_s):
            self.kill()
            raise WorkerError("worker did not start in time")
        message = self.connection.recv()
        if not message.get("ready"):
            self.kill()
            raise WorkerError(f"worker failed to import its handler:\n{message.get('error')}")

    def call(self, event: Any, timeout_s: float) -> Invocation:
        started = time.perf_counter()
        try:
            self.connection.send(event)
            if not self.connection.poll(timeout_s):
                self.kill()
                return Invocation(
                    error=f"timed out after {timeout_s:.0f}s",
                    error_type="Timeout",
                    duration_ms=(time.perf_counter() - started) * 1000,
                )
            outcome = self.connection.recv()
        except (EOFError, OSError):
            self.kill()
            return Invocation(
                error="the worker process died",
                error_type="WorkerDied",
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        return Invocation(
            result=outcome.get("result"),
            error=outcome.get("error"),
            error_type=outcome.get("error_type"),
            duration_ms=float(outcome["duration_ms"]),
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=5)
        self.connection.close()

    def stop(self) -> None:
        self.connection.close()  # the worker sees EOF and returns
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class FunctionStats:
    invocations: int = 0
    errors: int = 0
    last_duration_ms: float = 0.0
    total_duration_ms: float = 0.0


class FunctionPool:
    """``concurrency`` warm workers for one function; ``invoke`` blocks for a free one."""

    def __init__(
        self,
        function: Function,
        env: Mapping[str, str],
        log_dir: Path,
        guard: Guard | None = None,
        python: str = sys.executable,
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.function = function
        self.spec = WorkerSpec(
            function=function.name,
            handler=function.handler,
            timeout_s=function.timeout_s,
            memory_mb=function.memory_mb,
            env=dict(env),
            log_path=log_dir / f"{function.name}.log",
            guard=guard,
            python=python,
        )
        self.stats = FunctionStats()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        started = [_Worker(self.spec) for _ in range(self.function.concurrency)]
        for worker in started:
            worker.wait_ready(START_TIMEOUT_S)
            self._workers.append(worker)
            self._idle.put(worker)

    def invoke(self, event: Any) -> Invocation:
        worker = self._idle.get()
        try:
            outcome = worker.call(event, self.spec.timeout_s)
        finally:
            if worker.alive:
                self._idle.put(worker)
            else:
                self._replace(worker)
        with self._lock:
            self.stats.invocations += 1
            self.stats.errors += outcome.failed
            self.stats.last_duration_ms = outcome.duration_ms
            self.stats.total_duration_ms += outcome.duration_ms
        return outcome

    def _replace(self, dead: _Worker) -> None:
        with self._lock:
            if dead in self._workers:
                self._workers.remove(dead)
            if self._closed:
                return
        fresh = _Worker(self.spec)
        fresh.wait_ready(START_TIMEOUT_S)
        with self._lock:
            self._workers.append(fresh)
        self._idle.put(fresh)

    def alive(self) -> int:
        with self._lock:
            return sum(worker.alive for worker in self._workers)

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._workers]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._workers)
        for worker in workers:
            worker.stop()
