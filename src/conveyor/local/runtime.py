"""``conveyor up``: the whole system on one machine, built from the topology.

Start order: the gateway (serving the console, which says the stack is starting, and
503 to the API), the emulator, resources, dev credentials, one worker pool per function,
the metrics reader, one poller per SQS trigger, then the gateway opens the API. Stop
order is the reverse, and every child process ends with it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from conveyor.aws.config import API_URL, MEDIA_BASE_URL, SECRETS_MAX_AGE, sampling_environment
from conveyor.aws.xray_udp import DAEMON_ADDRESS
from conveyor.client import ConveyorClient
from conveyor.core.media import MAX_UPLOAD_BYTES
from conveyor.local import canary, chaos, emf, interpreter, logs
from conveyor.local.canary import CanaryRuns
from conveyor.local.chaos import FaultPlan
from conveyor.local.console import CONSOLE_PATH, Console
from conveyor.local.downloads import MEDIA_PATH, downloads, media_base_url
from conveyor.local.edges import EDGES, HttpResponse
from conveyor.local.emulator import (
    EMULATOR_CREDENTIALS,
    EMULATOR_REGION,
    Emulator,
    EmulatorError,
)
from conveyor.local.gateway import Gateway
from conveyor.local.iam import RECORD_ENV, Guard, Locator, role_policy
from conveyor.local.interpreter import Interpreter
from conveyor.local.poller import SqsPoller
from conveyor.local.provision import Provisioner, Resources, dev_credentials
from conveyor.local.state import (
    RUNTIME_FILE,
    Credentials,
    EmulatorClients,
    RuntimeInfo,
    logs_dir,
)
from conveyor.local.traces import TRACES_FILE, TraceReceiver
from conveyor.local.workers import FunctionPool
from conveyor.ops import openapi
from conveyor.ops.logs import LogFollower
from conveyor.topology import (
    CANARY_FUNCTION,
    CLIENT_SECRETS,
    DEFAULT_PROFILE,
    MEDIA_BUCKET,
    TOPOLOGY,
    Function,
    Profile,
    SqsTrigger,
    Topology,
)

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Started:
    """What a successful start hands back: where everything is, the dev client's
    credentials, and clients of the emulator. Nothing in it is optional."""

    info: RuntimeInfo
    credentials: Credentials
    credentials_path: Path
    clients: EmulatorClients
    state_dir: Path
    interpreter: Interpreter
    """What the functions run on: Lambda's Python, or the host's if this machine lacks it."""
    restored: str = ""
    """What the emulator started from, in words."""

    @property
    def logs_dir(self) -> Path:
        return logs_dir(self.state_dir)

    @property
    def profile(self) -> Profile:
        """Whose edge the gateway behaves as."""
        return self.info.profile

    def client(self) -> ConveyorClient:
        """A client of the local gateway that signs as the dev client."""
        return self.credentials.client()


@dataclass
class RuntimeOptions:
    state_dir: Path
    port: int = 8080
    host: str = "127.0.0.1"
    endpoint_url: str | None = field(default_factory=lambda: os.environ.get("AWS_ENDPOINT_URL"))
    """An emulator that is already running; when unset the runtime starts its own."""
    iam_record: Path | None = field(
        default_factory=lambda: Path(os.environ[RECORD_ENV]) if os.environ.get(RECORD_ENV) else None
    )
    """Where to record every IAM request the functions make (the least-privilege proof),
    in a directory per profile."""
    profile: Profile = DEFAULT_PROFILE
    """Which deployed edge the gateway behaves as: the load balancer's events and limits
    (``private``) or the HTTP API's (``lean``)."""
    media_port: int | None = None
    """Where processed images are served, an origin of their own as CloudFront is in the
    cloud; by default the port after ``port`` (a free one when ``port`` is 0)."""
    persist: bool = True
    """Keep the emulator's state in ``state_dir`` and start from what it held."""
    fresh: bool = False
    """Throw the kept state away first and start empty."""
    canary_every_s: float | None = None
    """Run the canary (``conveyor.functions.canary``) at start and then every this many
    seconds, as its schedule does in AWS; ``None``: no canary."""

    @property
    def emulator_state_dir(self) -> Path | None:
        return self.state_dir / EMULATOR_STATE if self.persist else None

    @property
    def media_listen_port(self) -> int:
        if self.media_port is not None:
            return self.media_port
        return self.port + 1 if self.port else 0


EMULATOR_STATE = "emulator"
"""Where in the state directory the emulator keeps its snapshot and journal."""

LOCAL_SECRETS_MAX_AGE_S = 5
"""Locally, a client added or rotated with ``conveyor clients`` can call within seconds."""


def function_environment(
    topology: Topology,
    function: Function,
    resources: Resources,
    endpoint: str,
    media_url: str,
    api_url: str = "",
    trace_daemon: str = "",
) -> dict[str, str]:
    """Exactly what the function's Lambda environment holds: its grants' identifiers,
    the endpoint, Powertools settings and, as active tracing gives it, where the X-Ray
    daemon listens; nothing inherited from the runtime. Locally every trace is kept."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "POWERTOOLS_SERVICE_NAME": function.name,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        **EMULATOR_CREDENTIALS,
    }
    env.update(topology.settings(function))
    for grant in function.grants:
        if grant.env:
            env[grant.env] = resources.identifier(grant.kind, grant.resource)
    if function.media_url:
        env[MEDIA_BASE_URL] = media_base_url(media_url)
    if function.api_url:
        env[API_URL] = api_url
    env[SECRETS_MAX_AGE] = str(LOCAL_SECRETS_MAX_AGE_S)
    if trace_daemon:
        env[DAEMON_ADDRESS] = trace_daemon
    env.update(sampling_environment(1.0))
    return env


OPENAPI_PATH = "/openapi.json"


def openapi_handler(
    method: str, target: str, headers: Mapping[str, str], body: bytes
) -> HttpResponse:
    """The API description, for people and for schemathesis."""
    payload = json.dumps(openapi.document(), indent=2).encode()
    return HttpResponse(200, payload, {"Content-Type": "application/json"})


def gateway_routes(topology: Topology) -> dict[str, str]:
    """Path -> function name: what the local gateway routes, as the deployed edge does."""
    return {route.path: function.name for function, route in topology.routes()}


def pollers(topology: Topology) -> list[tuple[Function, SqsTrigger]]:
    """The event source mappings the local runtime runs, one poller set per trigger."""
    return list(topology.sqs_triggered())


class LocalRuntime:
    def __init__(
        self,
        options: RuntimeOptions,
        topology: Topology = TOPOLOGY,
        faults: FaultPlan | None = None,
    ) -> None:
        self.options = options
        self.topology = topology if options.canary_every_s is None else topology.with_canary()
        self.canary: CanaryRuns | None = None
        self.faults = faults
        self._log_handler: logging.Handler | None = None
        self.emulator: Emulator | None = None
        self.pools: dict[str, FunctionPool] = {}
        self.pollers: list[SqsPoller] = []
        self.gateway: Gateway | None = None
        self.media: Gateway | None = None
        """The media origin: ``/media/processed/...`` only, on a port of its own, so
        nothing stored under ``processed/`` shares the console's origin."""
        self.traces = TraceReceiver()
        """The functions' spans, taken until the last worker has gone."""
        self.started: Started | None = None
        """Set once the stack runs; the console reads it while the stack starts."""
        self.metrics = emf.MetricTotals()
        self.phase = "stopped"
        self.phase_detail = ""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def logs_dir(self) -> Path:
        return logs_dir(self.options.state_dir)

    def start(self, progress: Progress = lambda _: None) -> Started:
        try:
            self.traces.start(self.options.state_dir / TRACES_FILE, fresh=self.options.fresh)
            return self._start(progress)
        except BaseException:
            self.stop()
            raise

    def _start(self, report: Progress) -> Started:
        def progress(message: str) -> None:
            self.phase_detail = message
            report(message)

        self.phase = "starting"
        self.options.state_dir.mkdir(parents=True, exist_ok=True)
        self._log_handler = logs.attach(self.logs_dir / "runtime.log")
        host = self.options.host
        port, media_port = self.options.port, self.options.media_listen_port
        try:
            self.media = Gateway(None, {}, host=host, port=media_port)
            self.gateway = Gateway(
                None,
                {CONSOLE_PATH: Console(self, self.media.url), OPENAPI_PATH: openapi_handler},
                host=host,
                port=port,
                served_max_body=MAX_UPLOAD_BYTES + 64 * 1024,
                edge=EDGES[self.options.profile],
            )
        except OSError as exc:
            raise RuntimeError(
                f"cannot listen on {host}:{port} and {host}:{media_port} ({exc.strerror}); "
                "pass another --port"
            ) from exc
        self.media.start()
        self.gateway.start()
        endpoint = self.options.endpoint_url
        if endpoint:
            progress(f"using the emulator at {endpoint}")
        else:
            endpoint = self._start_emulator(progress)
        clients = EmulatorClients(endpoint)

        progress("provisioning topics, queues, table, bucket and secrets")
        resources = Provisioner(self.topology, clients).run()
        client_id, secret = dev_credentials(clients, resources, CLIENT_SECRETS)

        progress(f"starting {len(self.topology.functions)} functions")
        guards = self._guards(resources)
        python = interpreter.choose()
        if not python.deployed:
            log.warning("the functions run on %s", python.describe())
        for function in self.topology.functions:
            env = function_environment(
                self.topology,
                function,
                resources,
                endpoint,
                self.media.url,
                self.gateway.url,
                self.traces.address,
            )
            if self.faults and self.faults.applies_to(function.name):
                function, chaos_env = chaos.wrap(function, self.faults)  # noqa: PLW2901
                env.update(chaos_env)
            self.pools[function.name] = FunctionPool(
                function, env, self.logs_dir, guards[function.name], python.path
            )
        with ThreadPoolExecutor(max_workers=len(self.pools)) as starter:
            list(starter.map(lambda pool: pool.start(), self.pools.values()))
        self._run(
            "metrics",
            emf.collect,
            LogFollower(pool.spec.log_path for pool in self.pools.values()),
            self.metrics,
            self._stop,
        )

        for function, trigger in pollers(self.topology):
            for index in range(function.concurrency):
                poller = SqsPoller(
                    function=function.name,
                    trigger=trigger,
                    queue_url=resources.queues[trigger.queue],
                    queue_arn=resources.queue_arns[trigger.queue],
                    region=EMULATOR_REGION,
                    invoke=self.pools[function.name].invoke,
                    # A client of its own, polling with the function's role as in AWS.
                    sqs=guards[function.name].attach(EmulatorClients(endpoint)("sqs")),
                    resend=clients("sqs"),
                    duplicate_rate=self.faults.duplicate_rate if self.faults else 0.0,
                    throttle_rate=self.faults.throttle_rate if self.faults else 0.0,
                )
                self.pollers.append(poller)
                self._run(f"poller-{function.name}-{index}", poller.run, self._stop)

        credentials = Credentials(client_id, secret, self.gateway.url)
        info = RuntimeInfo(
            gateway_url=self.gateway.url,
            media_url=self.media.url,
            emulator_url=endpoint,
            resources=resources,
            profile=self.options.profile,
        )
        started = Started(
            info=info,
            credentials=credentials,
            credentials_path=credentials.save(self.options.state_dir),
            clients=clients,
            state_dir=self.options.state_dir,
            interpreter=python,
            restored=self._state_said(),
        )
        self.media.open({}, {MEDIA_PATH: downloads(clients("s3"), resources.buckets[MEDIA_BUCKET])})
        self._open_gateway(self.gateway)
        self.started = started
        self.phase, self.phase_detail = "running", ""
        if self.options.canary_every_s is not None:
            self._start_canary(clients, resources, self.options.canary_every_s)
        # Last: the file says that a stack runs here, and answers.
        info.save(self.options.state_dir)
        return started

    def _start_canary(self, clients: EmulatorClients, resources: Resources, every_s: float) -> None:
        """Enroll the canary's clients, as an operator does after a deploy, and run it."""
        added = canary.enroll(clients("secretsmanager"), resources.secrets[CLIENT_SECRETS])
        if added:
            log.info("the canary's clients %s were added", ", ".join(added))
        self.canary = CanaryRuns(
            self.pools[CANARY_FUNCTION].invoke, every_s, self.options.state_dir
        )
        self._run("canary", self.canary.run, self._stop)

    def _state_said(self) -> str:
        kept = self.options.emulator_state_dir
        if self.emulator is None:
            return f"the emulator's own, at {self.options.endpoint_url}"
        if kept is None:
            return "in memory only: lost when the stack stops"
        return f"{self.emulator.restored}; kept in {kept}/ (--fresh starts empty)"

    def _start_emulator(self, progress: Progress) -> str:
        """Start the embedded emulator from the state it kept (or empty); its endpoint."""
        kept = self.options.emulator_state_dir
        if kept is not None and self.options.fresh and kept.exists():
            shutil.rmtree(kept)
        progress("starting the AWS emulator" + (f" from {kept}" if kept else ""))
        self.emulator = Emulator(self.logs_dir / "emulator.log", kept)
        try:
            endpoint = self.emulator.start()
        except EmulatorError as exc:
            raise RuntimeError(
                f"the state kept in {kept} cannot be loaded: {exc}. Start with "
                "`conveyor up --fresh` to throw it away and start empty"
            ) from exc
        log.info("emulator state: %s", self.emulator.restored or "not kept")
        return endpoint

    def _open_gateway(self, gateway: Gateway) -> None:
        """Route to the functions as the profile's edge does, the catch-all included."""
        catch_all = self.topology.catch_all
        gateway.open(
            {path: self.pools[name].invoke for path, name in gateway_routes(self.topology).items()},
            {},
            self.pools[catch_all].invoke if catch_all else None,
        )

    def _guards(self, resources: Resources) -> dict[str, Guard]:
        """Each function's role, applied to its calls, its event source mapping's and
        its spans'."""
        # Per profile: the proof holds each profile's calls against its own template.
        record = self.options.iam_record / self.options.profile if self.options.iam_record else None
        if record:
            record.mkdir(parents=True, exist_ok=True)
        where = Locator.of(resources.by_kind())
        guards = {
            function.name: Guard(function.name, role_policy(self.topology, function), where, record)
            for function in self.topology.functions
        }
        self.traces.roles = guards
        return guards

    def _run(self, name: str, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def emulator_problem(self) -> str | None:
        """Why the emulator this runtime started cannot answer, if it cannot."""
        if self.emulator is not None and not self.emulator.running:
            return "the AWS emulator process has exited; restart `conveyor up`"
        return None

    def stop(self) -> None:
        self.phase = "stopping"
        self._stop.set()
        if self.gateway:
            self.gateway.stop()
            self.gateway = None
        if self.media:
            self.media.stop()
            self.media = None
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
        self.traces.stop()  # after the workers: their last spans are kept too
        if self.emulator:
            self.emulator.stop()
            self.emulator = None
        if self.started:
            (self.options.state_dir / RUNTIME_FILE).unlink(missing_ok=True)
            self.started = None
        if self._log_handler:
            logs.detach(self._log_handler)
            self._log_handler = None
        self.phase = "stopped"

    def __enter__(self) -> Started:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
