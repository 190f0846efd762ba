"""The local emulator's state on disk, so that a stopped or killed stack loses nothing it
had accepted.

moto keeps everything in memory. Here, inside the emulator's process, every request that
changes it is appended to a journal *before its answer leaves* (a write the operating
system holds even if the process is killed the next instant), and every
:data:`SNAPSHOT_EVERY_S` the whole state (moto's backends for the services the system
uses) is pickled into a snapshot that replaces the journal so far. Starting again loads
the snapshot and replays the journal through moto as the requests first came. A snapshot
alone would lose what was accepted after it; a journal alone would grow without end.

The queues' own traffic is the one thing not journaled: receives, deletes and visibility
changes name messages by receipt handles, which replayed sends could not reproduce. So
after a kill the messages consumed since the last snapshot come back, as they would in
AWS after their consumers died, and the consumers, idempotent by design, recognise them;
those messages' receive counts (and a move to a DLQ) since that snapshot are not kept. A
clean stop takes a last snapshot, which keeps them all.

A record cut off by a kill mid-write is dropped on loading, and said so; damage anywhere
else refuses to load, with the way out (``conveyor up --fresh``).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

SNAPSHOT_EVERY_S = 30.0
PERSISTED_SERVICES = ("s3", "sqs", "sns", "dynamodb", "secretsmanager")
"""The services the topology uses; moto's other backends stay empty."""
SHARED_MAPS = {"s3": ("bucket_accounts",)}
"""State a service keeps beside its per-account backends: S3's one bucket namespace."""
SNAPSHOT = "snapshot.pickle"
JOURNAL_PREFIX = "journal-"
FORMAT = 1

READ_PREFIXES = ("Get", "List", "Describe", "Scan", "Query", "BatchGet", "TransactGet", "Head")
QUEUE_TRAFFIC = frozenset(
    {
        "ReceiveMessage",
        "DeleteMessage",
        "DeleteMessageBatch",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
    }
)
"""SQS actions that are not journaled (see the module's docstring)."""


class StateError(RuntimeError):
    """The saved state cannot be loaded; the message says why and what to do."""


def changes_state(method: str, headers: dict[str, str], body: bytes) -> bool:
    """Whether a request to moto is journaled: it may change what a later request sees,
    and replaying it would change it the same way."""
    action = _action(headers, body)
    if action is None:  # a REST call (S3): reads are GET and HEAD
        return method not in ("GET", "HEAD", "OPTIONS")
    return not action.startswith(READ_PREFIXES) and action not in QUEUE_TRAFFIC


def _action(headers: dict[str, str], body: bytes) -> str | None:
    """The action of a JSON-protocol (``X-Amz-Target``) or query-protocol call."""
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        actions = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if actions:
            return actions[0]
    return None


@dataclass(frozen=True)
class Request:
    """A request as moto received it, enough to replay it."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def encode(self) -> bytes:
        meta = json.dumps(
            {"m": self.method, "p": self.path, "q": self.query, "h": self.headers}
        ).encode()
        payload = struct.pack(">II", len(meta), len(self.body)) + meta + self.body
        return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload

    @classmethod
    def decode(cls, payload: bytes) -> Request:
        meta_size, body_size = struct.unpack_from(">II", payload)
        meta = json.loads(payload[8 : 8 + meta_size])
        body = payload[8 + meta_size : 8 + meta_size + body_size]
        headers = [(str(k), str(v)) for k, v in meta["h"]]
        return cls(meta["m"], meta["p"], meta["q"], headers, body)


FRAME = struct.Struct(">II")


@dataclass
class JournalRead:
    requests: list[Request] = field(default_factory=list)
    torn_bytes: int = 0
    """Bytes at the end of the journal that were not a whole record: a write cut off."""


def read_journal(path: Path) -> JournalRead:
    data = path.read_bytes()
    found = JournalRead()
    offset = 0
    while offset < len(data):
        whole = offset + FRAME.size <= len(data)
        size, checksum = FRAME.unpack_from(data, offset) if whole else (0, 0)
        end = offset + FRAME.size + size
        payload = data[offset + FRAME.size : end]
        if not whole or end > len(data):
            found.torn_bytes = len(data) - offset
            return found
        if zlib.crc32(payload) != checksum:
            raise StateError(f"{path} is damaged at byte {offset} (a record fails its checksum)")
        found.requests.append(Request.decode(payload))
        offset = end
    return found


class StateLock:
    """Requests share the state; a snapshot takes it alone. A request waiting in a long
    poll gives its share back while it waits (:meth:`released`), or a snapshot would
    wait for the poll to end and every request behind it with it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._sharing = 0
        self._alone = False
        self._waiting_alone = 0
        self._held = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._condition:
            # A snapshot that waits goes first, or a busy emulator would never take one.
            self._condition.wait_for(lambda: not self._alone and not self._waiting_alone)
            self._sharing += 1
        self._held.count = getattr(self._held, "count", 0) + 1
        try:
            yield
        finally:
            self._held.count -= 1
            with self._condition:
                self._sharing -= 1
                self._condition.notify_all()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Give this thread's share back for a while (no-op where it holds none)."""
        held = getattr(self._held, "count", 0)
        if not held:
            yield
            return
        with self._condition:
            self._sharing -= held
            self._condition.notify_all()
        try:
            yield
        finally:
            with self._condition:
                self._condition.wait_for(lambda: not self._alone and not self._waiting_alone)
                self._sharing += held

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._condition:
            self._waiting_alone += 1
            self._condition.wait_for(lambda: not self._alone and not self._sharing)
            self._waiting_alone -= 1
            self._alone = True
        try:
            yield
        finally:
            with self._condition:
                self._alone = False
                self._condition.notify_all()


class _KeepNoLocks(pickle.Pickler):
    """Locks and conditions are not state: a loaded backend gets new ones."""

    def reducer_override(self, obj: Any) -> Any:
        for kind, make in _LOCKS:
            if isinstance(obj, kind):
                return make, ()
        return NotImplemented


_LOCKS: tuple[tuple[type, Callable[[], Any]], ...] = (
    (type(threading.Lock()), threading.Lock),
    (type(threading.RLock()), threading.RLock),
    (threading.Condition, threading.Condition),
    (threading.Event, threading.Event),
)


def _backends() -> dict[str, Any]:
    from moto.backends import get_backend

    return {name: get_backend(name) for name in PERSISTED_SERVICES}  # type: ignore[call-overload]


@dataclass
class Restored:
    """What starting again found, for the banner and the runtime's log."""

    snapshot_taken_at: float | None = None
    replayed: int = 0
    torn_bytes: int = 0

    def describe(self) -> str:
        if self.snapshot_taken_at is None and not self.replayed:
            return "empty"
        if self.snapshot_taken_at is None:
            parts = [f"{self.replayed} request(s) replayed from the journal"]
        else:
            taken = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.snapshot_taken_at))
            parts = [f"snapshot of {taken}", f"{self.replayed} request(s) replayed after it"]
        if self.torn_bytes:
            parts.append(
                f"lost: the last request, cut off mid-write ({self.torn_bytes} bytes); "
                "it was never answered"
            )
        return ", ".join(parts)


Replay = Callable[[Request], None]


class Store:
    """One emulator's state directory: the snapshot and the journals after it."""

    def __init__(self, directory: Path, lock: StateLock) -> None:
        self.directory = directory
        self.lock = lock
        self._journal_number = 0
        self._fd: int | None = None
        self._write_lock = threading.Lock()
        self.appended = 0
        """Requests journaled since the last snapshot."""

    def _journals(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.glob(f"{JOURNAL_PREFIX}*.log"):
            number = path.stem.removeprefix(JOURNAL_PREFIX)
            if number.isdigit():
                found.append((int(number), path))
        return sorted(found)

    def load(self, replay: Replay) -> Restored:
        """Bring moto's backends to the saved state; then journal from here on."""
        self.directory.mkdir(parents=True, exist_ok=True)
        restored = Restored()
        replay_from = 0
        snapshot = self.directory / SNAPSHOT
        if snapshot.exists():
            replay_from, restored.snapshot_taken_at = self._load_snapshot(snapshot)
        journals = [(n, p) for n, p in self._journals() if n >= replay_from]
        for index, (_, path) in enumerate(journals):
            read = read_journal(path)
            if read.torn_bytes and index != len(journals) - 1:
                raise StateError(f"{path} ends mid-record, and later journals follow it")
            for request in read.requests:
                replay(request)
            restored.replayed += len(read.requests)
            restored.torn_bytes += read.torn_bytes
            if read.torn_bytes:
                # Said once, and cut off: the next start must not find it mid-journal.
                os.truncate(path, path.stat().st_size - read.torn_bytes)
        last = journals[-1][0] if journals else replay_from
        self._open_journal(last + 1)
        return restored

    def _load_snapshot(self, path: Path) -> tuple[int, float]:
        try:
            saved = pickle.loads(path.read_bytes())  # noqa: S301 - our own file, mode 600
            if saved.get("format") != FORMAT:
                raise StateError(f"{path} was written by another version of conveyor")
            state = pickle.loads(saved["backends"])  # noqa: S301 - as above
            for name, backend in _backends().items():
                accounts, shared = state[name]
                backend.clear()
                backend.update(accounts)
                for attribute, value in shared.items():
                    getattr(backend, attribute).clear()
                    getattr(backend, attribute).update(value)
        except StateError:
            raise
        except Exception as exc:
            raise StateError(f"{path} cannot be loaded ({type(exc).__name__}: {exc})") from exc
        return int(saved["replay_from"]), float(saved["taken_at"])

    def _open_journal(self, number: int) -> None:
        path = self.directory / f"{JOURNAL_PREFIX}{number:06d}.log"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        fd = os.open(path, flags, 0o600)
        previous, self._fd, self._journal_number = self._fd, fd, number
        if previous is not None:
            os.fsync(previous)
            os.close(previous)

    def append(self, request: Request) -> None:
        """Journal a request that changed the state (the caller holds a share)."""
        record = request.encode()
        with self._write_lock:
            if self._fd is None:
                # Stopping: the last snapshot is taken. The change cannot be kept, so it
                # must not be answered as done (moto's server answers a 500).
                raise StateError("the emulator is stopping; its state is no longer kept")
            os.write(self._fd, record)
            self.appended += 1

    def snapshot(self) -> None:
        """Replace the journals so far with a snapshot of the state they led to."""
        with self.lock.alone():
            buffer = io.BytesIO()
            state = {
                name: (
                    dict(backend),
                    {a: dict(getattr(backend, a)) for a in SHARED_MAPS.get(name, ())},
                )
                for name, backend in _backends().items()
            }
            _KeepNoLocks(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
            covered = self._journal_number
            self._open_journal(covered + 1)
            self.appended = 0
        saved = {
            "format": FORMAT,
            "taken_at": time.time(),
            "replay_from": covered + 1,
            "backends": buffer.getvalue(),
        }
        self._write_atomically(self.directory / SNAPSHOT, saved)
        for number, path in self._journals():
            if number <= covered:
                path.unlink()

    def _write_atomically(self, path: Path, saved: dict[str, Any]) -> None:
        partial = path.with_suffix(".partial")
        with partial.open("wb") as handle:
            os.chmod(partial, 0o600)
            pickle.dump(saved, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def close(self) -> None:
        with self._write_lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None


Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Any]


class JournaledApp:
    """moto's WSGI application, with every request holding a share of the state and each
    one that changed it journaled before its answer is sent."""

    def __init__(self, app: Wsgi, store: Store) -> None:
        self.app = app
        self.store = store

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        headers = [
            (key[5:].replace("_", "-").lower(), str(value))
            for key, value in environ.items()
            if key.startswith("HTTP_")
        ]
        for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
            if environ.get(key):
                headers.append((name, str(environ[key])))
        answered: list[Any] = []

        def hold(status: str, response_headers: list[tuple[str, str]], *rest: Any) -> Any:
            answered[:] = [status, response_headers, *rest]
            return lambda _: None  # moto returns its bodies; it never calls write()

        with self.store.lock.shared():
            chunks = list(self.app(environ, hold))
            status = int(str(answered[0]).split()[0])
            if status < 400 and changes_state(environ["REQUEST_METHOD"], dict(headers), body):
                # The path as sent (percent-encoded), not PATH_INFO's decoded one.
                sent = str(environ.get("RAW_URI") or environ.get("PATH_INFO", ""))
                self.store.append(
                    Request(
                        environ["REQUEST_METHOD"],
                        sent.split("?", 1)[0],
                        environ.get("QUERY_STRING", ""),
                        headers,
                        body,
                    )
                )
        start_response(*answered)
        return chunks


def replayer(app: Wsgi) -> Replay:
    """Send a journaled request through moto again, as it first came."""
    from werkzeug.test import EnvironBuilder

    def replay(request: Request) -> None:
        builder = EnvironBuilder(
            path=request.path,
            method=request.method,
            query_string=request.query,
            headers=[(k, v) for k, v in request.headers if k != "content-length"],
            data=request.body,
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        for _ in app(environ, lambda *_: None):
            pass

    return replay
