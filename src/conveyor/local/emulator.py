"""The AWS emulator: moto's server in a child process on 127.0.0.1.

A child process keeps the emulator's request handling off the runtime's GIL and lets
the runtime survive restarting it. Given a state directory, it keeps its state there
(:mod:`conveyor.local.persistence`) and starts from what it held. Setting
``AWS_ENDPOINT_URL`` points the runtime at an emulator that is already running instead.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor.local.persistence import (
    SNAPSHOT_EVERY_S,
    JournaledApp,
    StateError,
    StateLock,
    Store,
    Wsgi,
    replayer,
)

EMULATOR_REGION = "us-east-1"
EMULATOR_ACCOUNT = "123456789012"
# moto accepts any credentials; these keep boto3 from looking for real ones.
EMULATOR_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "conveyor-local",
    "AWS_SECRET_ACCESS_KEY": "conveyor-local",
    "AWS_DEFAULT_REGION": EMULATOR_REGION,
}


class EmulatorError(RuntimeError):
    pass


class Emulator:
    """A moto server child process; ``url`` is its endpoint once started."""

    def __init__(
        self, log_path: Path, state_dir: Path | None = None, start_timeout_s: float = 30.0
    ) -> None:
        """``state_dir``: where it keeps its state across restarts (none: in memory)."""
        self._log_path = log_path
        self._state_dir = state_dir
        self._timeout = start_timeout_s
        self._process: subprocess.Popen[str] | None = None
        self.url = ""
        self.restored = ""
        """What it found in its state directory, in words."""

    def start(self) -> str:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self._log_path.open("a")
        state = [] if self._state_dir is None else [str(self._state_dir)]
        self._process = subprocess.Popen(  # noqa: S603 - our own module, our own path
            [sys.executable, "-m", "conveyor.local.emulator", *state],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        log.close()
        assert self._process.stdout is not None
        deadline = time.monotonic() + self._timeout
        line = self._process.stdout.readline().strip()
        if line.startswith(UNLOADABLE):
            self.stop()
            raise EmulatorError(line.removeprefix(UNLOADABLE))
        if line.startswith(RESTORED):
            self.restored = line.removeprefix(RESTORED)
            line = self._process.stdout.readline().strip()
        if not line.startswith("port="):
            self.stop()
            raise EmulatorError(f"the emulator did not start; see {self._log_path}")
        self.url = f"http://127.0.0.1:{int(line.removeprefix('port='))}"
        wait_until_reachable(self.url, deadline)
        return self.url

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop it: given the time, it takes a last snapshot of its state first."""
        if self._process is None:
            return
        if self._process.stdin:
            self._process.stdin.close()  # EOF: the emulator saves its state and ends
        try:
            self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()
        self._process = None


def wait_until_reachable(url: str, deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310 - loopback
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise EmulatorError(f"the emulator at {url} is not answering: {exc}") from exc
            time.sleep(0.05)


def speed_up_moto() -> None:
    """Costs in moto that profiles of the pipeline showed, removed without changing what
    the emulator answers (bench/RESULTS.md has the profile):

    * routing a request lists moto's package directory (``listdir`` + ``isdir`` for
      each of ~150 entries) every time; the listing cannot change while it runs;
    * ``ReceiveMessage`` checks each message's retention by computing *all* the queue's
      attributes, approximate counts included, which scans every message: a receive on
      a queue of n messages costs n^2. Only the retention period is needed;
    * the visible, in-flight and delayed scans behind a queue's messages and its
      approximate counts read the clock once per message (a datetime built each time);
      every ``SendMessage`` (and each SNS fan-out) builds all the attributes, so sending
      to a queue with a backlog was mostly clock reads. One reading per scan answers the
      same;
    * responses go out as a header write and a body write; with Nagle's algorithm on,
      the second waits for the client's delayed ACK (~40 ms on Linux).
    """
    import functools

    from moto import backends
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Message, Queue, SQSBackend
    from werkzeug.serving import WSGIRequestHandler

    listing = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = functools.cache(lambda: listing)

    def retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
        queue = self.get_queue(queue_name)
        period = int(queue.message_retention_period)  # type: ignore[attr-defined]
        return period + message.sent_timestamp / 1000 > time.time()  # type: ignore[operator]

    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]

    # Message.visible is ``now > visible_at`` and Message.delayed ``now < delayed_until``.
    def deliverable(self: Queue) -> list[Message]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and now >= m.delayed_until]

    def in_flight(self: Queue) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if now <= m.visible_at)

    def delayed(self: Queue) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if now < m.delayed_until)

    Queue.messages = property(deliverable)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_not_visible = property(in_flight)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_delayed = property(delayed)  # type: ignore[assignment,method-assign]
    WSGIRequestHandler.disable_nagle_algorithm = True


def behave_as_aws() -> None:
    """Where moto answers otherwise than AWS in what this system relies on, made to
    answer as AWS does:

    * moving ``AWSCURRENT`` with ``UpdateSecretVersionStage`` leaves moto's default
      version where it was, so a ``GetSecretValue`` that names no stage (every function's)
      still read the old value; in AWS it reads the version ``AWSCURRENT`` is on;
    * a secret's versions change in place under concurrent requests: two edits could
      both see ``AWSCURRENT`` on the version they read and both move it (a lost update
      that AWS never allows). Each change to a secret's versions is made whole, one at a
      time.
    """
    import functools
    import threading

    from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

    one_at_a_time = threading.Lock()
    original_move = SecretsManagerBackend.update_secret_version_stage
    original_put = SecretsManagerBackend.put_secret_value

    @functools.wraps(original_move)
    def move(
        self: SecretsManagerBackend,
        secret_id: str,
        version_stage: str,
        remove_from_version_id: str,
        move_to_version_id: str,
    ) -> tuple[str, str]:
        with one_at_a_time:
            moved = original_move(
                self, secret_id, version_stage, remove_from_version_id, move_to_version_id
            )
            secret = self.secrets[secret_id]
            if version_stage == "AWSCURRENT" and move_to_version_id:
                assert isinstance(secret, FakeSecret)  # a replica is never updated itself
                secret.set_default_version_id(move_to_version_id)
            return moved

    @functools.wraps(original_put)
    def put(self: SecretsManagerBackend, *args: Any, **kwargs: Any) -> str:
        with one_at_a_time:
            return original_put(self, *args, **kwargs)

    SecretsManagerBackend.update_secret_version_stage = move  # type: ignore[method-assign]
    SecretsManagerBackend.put_secret_value = put  # type: ignore[method-assign]


ANONYMOUS_REFUSED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
)


class RefuseAnonymous:
    """What every bucket here does in AWS, where its public access is blocked: a request
    that carries no signature (no ``Authorization`` header, no presigned query) is refused.
    moto serves anyone. A presigned POST carries its signature in its form, so POSTs pass,
    as do moto's own ``/moto-api`` pages."""

    def __init__(self, app: Wsgi) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        query = str(environ.get("QUERY_STRING", ""))
        signed = (
            "HTTP_AUTHORIZATION" in environ or "X-Amz-Signature=" in query or "Signature=" in query
        )
        path = str(environ.get("PATH_INFO", ""))
        if signed or environ["REQUEST_METHOD"] == "POST" or path.startswith("/moto-api"):
            return self.app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "application/xml")])
        return [ANONYMOUS_REFUSED]


RESTORED = "restored="
UNLOADABLE = "unloadable="
"""The first line the emulator prints, before its port, when it keeps state."""


def _persistent(app: Wsgi, state_dir: Path) -> tuple[Wsgi, Store]:
    """``app`` with its state loaded from ``state_dir`` and journaled there from now on;
    exits the process, saying why, if the state cannot be loaded."""
    from moto.sqs.models import Queue

    store = Store(state_dir, StateLock())
    long_poll = Queue.wait_for_messages

    def wait_unshared(self: Queue, timeout: int) -> None:
        with store.lock.released():
            long_poll(self, timeout)

    Queue.wait_for_messages = wait_unshared  # type: ignore[method-assign]
    try:
        restored = store.load(replayer(app))
    except StateError as exc:
        print(f"{UNLOADABLE}{exc}", flush=True)
        sys.exit(3)
    print(f"{RESTORED}{restored.describe()}", flush=True)
    return JournaledApp(app, store), store


def _snapshots(store: Store, stop: threading.Event) -> None:
    while not stop.wait(SNAPSHOT_EVERY_S):
        if store.appended:
            store.snapshot()


def _serve(state_dir: Path | None) -> None:
    # Every request is otherwise logged; the runtime keeps its own logs.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    speed_up_moto()
    behave_as_aws()
    app: Wsgi = DomainDispatcherApplication(create_backend_app)
    store = None
    stop = threading.Event()
    if state_dir is not None:
        app, store = _persistent(app, state_dir)
        threading.Thread(target=_snapshots, args=(store, stop), daemon=True).start()
    app = RefuseAnonymous(app)
    server = make_server("127.0.0.1", 0, app, True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"port={server.server_address[1]}", flush=True)
    # stdin is a pipe from the runtime: EOF means the runtime is gone, however it ended.
    sys.stdin.read()
    server.shutdown()
    stop.set()
    if store is not None:
        store.snapshot()
        store.close()


if __name__ == "__main__":
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
    _serve(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
