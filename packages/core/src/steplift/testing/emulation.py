"""Cloud-agnostic building blocks shared by every steplift cloud emulator.

An emulator serves one cloud's real API on 127.0.0.1 so the unmodified SDK client talks to it.
This module holds what all of them share: fault injection (`Faults`, `FaultDecider`), the
request log, the local job process (`JobProcess`), scripted job steps, the `/_steplift/`
control API (a plain WSGI wrapper plus the `EmulatorControl` client) and `EmulatorBase`.

Standard library only: the core wheel must import no cloud SDK and no web framework.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import random
import signal
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Protocol, Self, TypeAlias, runtime_checkable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from steplift.cluster import free_port

__all__ = [
    "CONTROL_PREFIX",
    "ControlAPI",
    "Emulator",
    "EmulatorBase",
    "EmulatorControl",
    "EmulatorMode",
    "FaultDecider",
    "FaultKind",
    "Faults",
    "JobProcess",
    "LocalServer",
    "NodeGroup",
    "free_port",
    "StartResponse",
    "WSGIApp",
    "group_alive",
    "RecordedRequest",
    "RequestLog",
    "ScriptStep",
    "serve_until_interrupted",
    "wait_until",
]

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/_steplift/"
"""Path prefix under which every emulator serves its control API."""

EmulatorMode: TypeAlias = Literal["execute", "scripted"]
FaultKind: TypeAlias = Literal["throttle", "error"]
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Faults:
    """What an emulator should get wrong on purpose.

    Rates apply to control-plane calls (create/describe/list/stop jobs), never to data transfer.
    """

    throttle_rate: float = 0.0
    """Fraction (0..1) of control-plane calls refused as throttling."""
    error_rate: float = 0.0
    """Fraction (0..1) of control-plane calls answered with a 5xx."""
    latency: float = 0.0
    """Seconds added to every control-plane call."""
    refuse_create: Literal["quota", "capacity"] | None = None
    """Every job creation is refused for lack of quota, or fails at start for lack of capacity."""
    stuck_in_queue: bool = False
    """Jobs never leave the queued/starting state while this is set."""
    seed: int = 0
    """Seed of the deterministic throttle/error decisions."""

    def __post_init__(self) -> None:
        for name in ("throttle_rate", "error_rate"):
            rate = getattr(self, name)
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise ValueError(f"{name} must be a number, got {rate!r}")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate!r}")
        if self.throttle_rate + self.error_rate > 1.0:
            raise ValueError("throttle_rate + error_rate must not exceed 1")
        if isinstance(self.latency, bool) or not isinstance(self.latency, int | float):
            raise ValueError(f"latency must be a number of seconds, got {self.latency!r}")
        if not (math.isfinite(self.latency) and 0.0 <= self.latency <= 60.0):
            raise ValueError(f"latency must be between 0 and 60 seconds, got {self.latency!r}")
        if self.refuse_create not in (None, "quota", "capacity"):
            raise ValueError(
                f"refuse_create must be None, 'quota' or 'capacity', got {self.refuse_create!r}"
            )
        if not isinstance(self.stuck_in_queue, bool):
            raise ValueError(f"stuck_in_queue must be a boolean, got {self.stuck_in_queue!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """Build from JSON-like data; unknown keys are refused (ValueError naming them)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the inverse of `from_dict`."""
        return dataclasses.asdict(self)


class FaultDecider:
    """Decides, call by call, whether a control-plane call is throttled or fails.

    Each operation draws from its own seeded stream, so the n-th call of an operation gets the
    same answer whatever other operations were called in between.
    """

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def decide(self, operation: str) -> FaultKind | None:
        """Return None (serve the call), "throttle" or "error" for this call of `operation`."""
        faults = self.faults
        if faults.throttle_rate == 0.0 and faults.error_rate == 0.0:
            return None
        with self._lock:
            count = self._counts.get(operation, 0)
            self._counts[operation] = count + 1
        draw = random.Random(f"{faults.seed}:{operation}:{count}").random()
        if draw < faults.throttle_rate:
            return "throttle"
        if draw < faults.throttle_rate + faults.error_rate:
            return "error"
        return None


# --------------------------------------------------------------------------- request log


@dataclass
class RecordedRequest:
    """One API call a client made to an emulator."""

    service: str
    operation: str
    params: dict[str, Any]
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


class RequestLog:
    """Thread-safe, append-only (until cleared) list of recorded requests."""

    def __init__(self) -> None:
        self._items: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def append(self, request: RecordedRequest) -> None:
        """Record one call."""
        with self._lock:
            self._items.append(request)

    def list(self) -> builtins.list[RecordedRequest]:
        """A snapshot of every recorded call, oldest first."""
        with self._lock:
            return list(self._items)

    def filter(self, operation: str, service: str | None = None) -> builtins.list[RecordedRequest]:
        """The recorded calls of one operation (optionally of one service)."""
        return [
            item
            for item in self.list()
            if item.operation == operation and (service is None or item.service == service)
        ]

    def clear(self) -> None:
        """Forget every recorded call."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


# --------------------------------------------------------------------------- scripts


@dataclass(frozen=True)
class ScriptStep:
    """One step of a scripted job: a cloud-specific status and, for failures, a reason."""

    status: str
    failure_reason: str | None = None

    @classmethod
    def parse(cls, step: ScriptStep | str | Mapping[str, Any]) -> ScriptStep:
        """Accept a ScriptStep, a bare status or a {"status", "failure_reason"} mapping."""
        if isinstance(step, ScriptStep):
            return step
        if isinstance(step, str):
            return cls(step)
        if isinstance(step, Mapping):
            unknown = set(step) - {"status", "failure_reason"}
            if unknown or not isinstance(step.get("status"), str):
                raise ValueError(f"a script step needs a 'status' string, got {dict(step)!r}")
            reason = step.get("failure_reason")
            if reason is not None and not isinstance(reason, str):
                raise ValueError(f"failure_reason must be a string, got {reason!r}")
            return cls(step["status"], reason)
        raise ValueError(f"not a script step: {step!r}")


# --------------------------------------------------------------------------- job process


def resolve_command(command: Sequence[str]) -> list[str]:
    """The command to run on the host: a leading python/python3 becomes this interpreter."""
    resolved = list(command)
    if resolved and resolved[0] in ("python", "python3"):
        resolved[0] = sys.executable
    return resolved


class JobProcess:
    """A job's command run as a local subprocess in its own process group.

    stdout and stderr are merged; each line goes to `on_line` as soon as it is produced.
    `max_runtime` (seconds) terminates the job and marks it `timed_out`. Termination sends
    SIGTERM to the whole group and SIGKILL after `grace` seconds, as a container stop does.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | os.PathLike[str],
        on_line: Callable[[str], None] | None = None,
        max_runtime: float | None = None,
        grace: float = 5.0,
        on_exit: Callable[[JobProcess], None] | None = None,
    ) -> None:
        if not command:
            raise ValueError("command must not be empty")
        if max_runtime is not None and max_runtime <= 0:
            raise ValueError(f"max_runtime must be positive, got {max_runtime!r}")
        self.command = resolve_command(command)
        self.env = dict(env)
        self.cwd = Path(cwd)
        self.grace = grace
        self.max_runtime = max_runtime
        self._on_line = on_line
        self._on_exit = on_exit
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._done = threading.Event()
        self._kill_lock = threading.Lock()
        self._timed_out = False
        self._terminated = False

    # -- lifecycle

    def start(self) -> Self:
        """Start the process and its reader/watcher threads."""
        if self._proc is not None:
            raise RuntimeError("the process was already started")
        self._proc = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        self._reader = threading.Thread(
            target=self._read_lines, name=f"job-reader-{self._proc.pid}", daemon=True
        )
        self._watcher = threading.Thread(
            target=self._watch, name=f"job-watcher-{self._proc.pid}", daemon=True
        )
        self._reader.start()
        self._watcher.start()
        return self

    @property
    def pid(self) -> int | None:
        """Process id (also the process group id), None before start."""
        return self._proc.pid if self._proc else None

    @property
    def exit_code(self) -> int | None:
        """Exit code once finished (negative: killed by that signal), else None."""
        return self._proc.returncode if self._proc and self._done.is_set() else None

    @property
    def timed_out(self) -> bool:
        """True when `max_runtime` ran out and the job was terminated for it."""
        return self._timed_out

    @property
    def terminated(self) -> bool:
        """True when the job was terminated (by `terminate` or by its timeout)."""
        return self._terminated

    def poll(self) -> int | None:
        """Exit code if the job has finished and its output was delivered, else None."""
        return self.exit_code

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait until the job finished and all its output was delivered; None on timeout."""
        if self._proc is None:
            raise RuntimeError("the process was not started")
        self._done.wait(timeout)
        return self.exit_code

    def terminate(self, grace: float | None = None) -> int | None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds; returns the exit code."""
        if self._proc is None:
            return None
        if not self._done.is_set():
            self._stop_group(self.grace if grace is None else grace)
        # Bounded: the watcher only needs to drain the pipe once the group is dead.
        self._done.wait(10.0)
        return self.exit_code

    # -- internals

    def _stop_group(self, grace: float) -> None:
        assert self._proc is not None
        with self._kill_lock:
            if self._proc.poll() is not None:
                return
            self._terminated = True
            self._signal_group(signal.SIGTERM)
            try:
                self._proc.wait(max(grace, 0.0))
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._proc.wait(10.0)

    def _signal_group(self, signum: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signum)

    def _read_lines(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stream: IO[bytes] = self._proc.stdout
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if self._on_line is None:
                continue
            try:
                self._on_line(line)
            except Exception:  # a broken sink must not stop the job or lose later lines
                logger.exception("job output callback failed")
        stream.close()

    def _watch(self) -> None:
        assert self._proc is not None and self._reader is not None
        try:
            self._proc.wait(self.max_runtime)
        except subprocess.TimeoutExpired:
            self._timed_out = True
            self._stop_group(self.grace)
        self._proc.wait()
        # Children that outlive the main process keep the pipe open; a container would die
        # with its main process, so the rest of the group goes too.
        self._reader.join(0.5)
        if self._reader.is_alive():
            self._signal_group(signal.SIGKILL)
            self._reader.join(5.0)
        self._done.set()
        if self._on_exit is not None:
            try:
                self._on_exit(self)
            except Exception:
                logger.exception("job exit callback failed")


class NodeGroup:
    """The nodes of one multi-node job: a :class:`JobProcess` per node, ending together.

    As on a cloud, the job succeeds only when every node exits 0, and the first node to fail
    stops the others (SIGTERM, then SIGKILL after their grace). ``make_node(rank, on_exit)``
    builds node ``rank``'s process (not started) passing ``on_exit`` through; a
    single-node job is a group of one.
    """

    def __init__(
        self,
        nodes: int,
        make_node: Callable[[int, Callable[[JobProcess], None]], JobProcess],
    ) -> None:
        if nodes < 1:
            raise ValueError(f"a job needs at least one node, not {nodes}")
        self._lock = threading.Lock()
        self._failed: int | None = None
        self._stopping = False
        self.processes = [make_node(rank, self._node_exited) for rank in range(nodes)]

    def start(self) -> Self:
        """Start every node, unless the group is already ending.

        Each start holds the group's lock, so a node that fails (or a terminate) while later
        nodes are still being started stops the ones started and none starts after it: a
        never-started node's exit code stays None.
        """
        for process in self.processes:
            with self._lock:
                if self._failed is not None or self._stopping:
                    break
                process.start()
        return self

    def _node_exited(self, process: JobProcess) -> None:
        if process.exit_code == 0:
            return
        with self._lock:
            if self._failed is not None or self._stopping:
                return  # already ending: a stopped node's exit is not a failure
            self._failed = self.processes.index(process)
        self._stop(process.grace)

    @property
    def failed_node(self) -> int | None:
        """The rank of the first node that exited non-zero (or was killed), if any."""
        return self._failed

    @property
    def exit_codes(self) -> list[int | None]:
        """Each node's exit code, None while it runs."""
        return [process.exit_code for process in self.processes]

    @property
    def timed_out(self) -> bool:
        """True when a node's max runtime ran out."""
        return any(process.timed_out for process in self.processes)

    def wait(self, timeout: float | None = None) -> list[int | None]:
        """Wait (bounded by ``timeout`` per node) until every started node ended; exit codes.

        A node never started (the group ended before its turn) has None.
        """
        return [
            process.wait(timeout) if process.pid is not None else None for process in self.processes
        ]

    def is_running(self) -> bool:
        """True while any started node's process has not ended."""
        return any(
            process.pid is not None and process.exit_code is None for process in self.processes
        )

    def kill_node(self, rank: int, signum: signal.Signals = signal.SIGKILL) -> None:
        """Kill one node (a fault: a host lost); the others then stop as after a failure."""
        pid = self.processes[rank].pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signum)

    def terminate(self, grace: float | None = None) -> list[int | None]:
        """Stop every node at once (cancel, timeout); returns their exit codes."""
        with self._lock:
            self._stopping = True
        self._stop(grace)
        return self.exit_codes

    def _stop(self, grace: float | None) -> None:
        stoppers = [
            threading.Thread(target=process.terminate, args=(grace,), daemon=True)
            for process in self.processes
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()


def group_alive(pgid: int) -> bool:
    """True while a process of group `pgid` still runs (zombies awaiting reaping do not count).

    Reads /proc where there is one; elsewhere any group member, zombie or not, counts.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


# --------------------------------------------------------------------------- protocol / base


@runtime_checkable
class Emulator(Protocol):
    """What every steplift emulator offers in-process (and over `/_steplift/`)."""

    mode: EmulatorMode

    @property
    def endpoint_url(self) -> str:
        """Base URL of the served API (http://127.0.0.1:PORT)."""
        ...

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        ...

    @property
    def requests(self) -> RequestLog:
        """Every API call clients made."""
        ...

    def set_faults(self, faults: Faults) -> None:
        """Put these faults in force (replacing the previous ones)."""
        ...

    def reset(self) -> None:
        """Clear faults, scripts and the request log (jobs stay)."""
        ...

    def preempt(self, job_id: str) -> None:
        """Preempt a running spot job the way the cloud reports it."""
        ...

    def kill_node(self, job_id: str, node: int) -> None:
        """Lose node ``node`` (0-based) of a running job, as a failed host: its processes are
        killed, the job's other nodes stop and the job fails naming it. KeyError: no such
        job; ValueError: the job is not running or has no such node."""
        ...

    def job_ids(self) -> list[str]:
        """Every job created so far, by the id `preempt` and `is_running` take, oldest first."""
        ...

    def is_running(self, job_id: str) -> bool:
        """True while anything of the job (its runner or its processes) is alive."""
        ...

    def script(
        self, job_id: str | None, steps: Sequence[ScriptStep | str | Mapping[str, Any]]
    ) -> None:
        """Set the scripted steps of one job (or the default for all jobs when job_id is None)."""
        ...

    def client_env(self) -> dict[str, str]:
        """Environment variables an SDK client needs to reach this emulator."""
        ...

    def start(self) -> Self:
        """Start serving; returns self."""
        ...

    def stop(self) -> None:
        """Stop serving, end every job process and thread."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class EmulatorBase:
    """Shared state and behaviour of emulators: faults, decider, request log, context manager.

    Subclasses implement start/stop/preempt/script/endpoint_url/client_env.
    """

    service_name = "emulator"

    def __init__(self, mode: EmulatorMode = "execute") -> None:
        if mode not in ("execute", "scripted"):
            raise ValueError(f"mode must be 'execute' or 'scripted', got {mode!r}")
        self.mode: EmulatorMode = mode
        self._requests = RequestLog()
        self._decider = FaultDecider(Faults())
        self._faults_changed = threading.Condition()

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        return self._decider.faults

    @property
    def requests(self) -> RequestLog:
        """Every API call clients made."""
        return self._requests

    def set_faults(self, faults: Faults) -> None:
        """Put these faults in force (fresh decision streams); wakes `wait_for_faults_change`."""
        with self._faults_changed:
            self._decider = FaultDecider(faults)
            self._faults_changed.notify_all()

    def wait_for_faults_change(self, timeout: float) -> None:
        """Block until faults change or `timeout` passes (for loops waiting out a fault)."""
        with self._faults_changed:
            self._faults_changed.wait(timeout)

    def decide_fault(self, operation: str) -> FaultKind | None:
        """The fault (if any) for this call; also applies the configured latency."""
        decider = self._decider
        if decider.faults.latency:
            time.sleep(decider.faults.latency)
        return decider.decide(operation)

    def reset(self) -> None:
        """Clear faults and the request log."""
        self.set_faults(Faults())
        self._requests.clear()

    def record(self, service: str, operation: str, params: Mapping[str, Any]) -> None:
        """Add one client call to the request log."""
        self._requests.append(RecordedRequest(service, operation, copy.deepcopy(dict(params))))

    def start(self) -> Self:
        """Start serving; returns self."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- control API

StartResponse: TypeAlias = Callable[..., Any]
WSGIApp: TypeAlias = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the request threads: nothing lingers
    # socketserver's default backlog of 5 drops connections when many launches poll at once
    # (the client then waits a second before trying again): a cloud endpoint does not.
    request_queue_size = 256


class _QuietHandler(WSGIRequestHandler):
    # Without this every small response waits ~40 ms for a delayed ACK (measured).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("emulator: " + format, *args)


class LocalServer:
    """Serves a WSGI app on 127.0.0.1:``port`` (0: any free port) from a background thread,
    over TLS when given a certificate and key."""

    def __init__(
        self,
        app: WSGIApp,
        port: int = 0,
        cert: tuple[Path, Path] | None = None,
        name: str = "emulator",
    ) -> None:
        self._server = make_server(
            "127.0.0.1", port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        if cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if cert else "http"
        self._thread = threading.Thread(
            # A short poll keeps stop() quick: shutdown() waits for the loop to notice.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{name}-{self.port}",
            daemon=True,
        )

    @property
    def port(self) -> int:
        """The port served."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. https://127.0.0.1:PORT."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start serving in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the threads."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(10.0)
        self._server.server_close()


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
}


class ControlAPI:
    """WSGI wrapper serving `/_steplift/...` from an emulator and passing the rest to `app`.

    Routes: GET health; GET/POST faults; GET requests[?operation=X]; POST reset;
    POST jobs/<id>/preempt; POST jobs/<id>/kill-node ({"node": R}); POST jobs/<id>/script and
    POST script ({"steps": [...]}).
    """

    def __init__(self, emulator: Emulator, app: WSGIApp) -> None:
        self.emulator = emulator
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(CONTROL_PREFIX):
            return self.app(environ, start_response)
        try:
            status, body = self._route(environ, path[len(CONTROL_PREFIX) :].strip("/"))
        except _ControlError as error:
            status, body = error.status, {"error": str(error)}
        payload = json.dumps(body).encode()
        start_response(
            f"{status} {_STATUS_TEXT.get(status, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    def _route(self, environ: dict[str, Any], route: str) -> tuple[int, Any]:
        method = environ.get("REQUEST_METHOD", "GET")
        parts = route.split("/")
        emulator = self.emulator
        if route == "health" and method == "GET":
            return 200, {"status": "ok", "mode": emulator.mode}
        if route == "faults" and method == "GET":
            return 200, emulator.faults.to_dict()
        if route == "faults" and method == "POST":
            try:
                emulator.set_faults(Faults.from_dict(_json_object(environ)))
            except (TypeError, ValueError) as error:
                raise _ControlError(400, str(error)) from error
            return 200, emulator.faults.to_dict()
        if route == "requests" and method == "GET":
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            operation = query.get("operation", [None])[0]
            items = emulator.requests.filter(operation) if operation else emulator.requests.list()
            return 200, {"requests": [item.to_dict() for item in items]}
        if route == "reset" and method == "POST":
            emulator.reset()
            return 200, {"status": "ok"}
        if route == "script" and method == "POST":
            return self._script(None, environ)
        if len(parts) == 3 and parts[0] == "jobs" and method == "POST":
            if parts[2] == "preempt":
                try:
                    emulator.preempt(parts[1])
                except KeyError as error:
                    raise _ControlError(404, f"no such job: {parts[1]}") from error
                except ValueError as error:
                    raise _ControlError(409, str(error)) from error
                return 200, {"status": "ok"}
            if parts[2] == "kill-node":
                node = _json_object(environ).get("node")
                if not isinstance(node, int) or isinstance(node, bool):
                    raise _ControlError(400, 'body must be {"node": <0-based node rank>}')
                try:
                    emulator.kill_node(parts[1], node)
                except KeyError as error:
                    raise _ControlError(404, f"no such job: {parts[1]}") from error
                except ValueError as error:
                    raise _ControlError(409, str(error)) from error
                return 200, {"status": "ok"}
            if parts[2] == "script":
                return self._script(parts[1], environ)
        raise _ControlError(404, f"no control route {method} {CONTROL_PREFIX}{route}")

    def _script(self, job_id: str | None, environ: dict[str, Any]) -> tuple[int, Any]:
        steps = _json_object(environ).get("steps")
        if not isinstance(steps, list):
            raise _ControlError(400, 'body must be {"steps": [...]}')
        try:
            self.emulator.script(job_id, steps)
        except ValueError as error:
            raise _ControlError(400, str(error)) from error
        return 200, {"status": "ok"}


def _json_object(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        data = json.loads(raw or b"{}")
    except json.JSONDecodeError as error:
        raise _ControlError(400, f"body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise _ControlError(400, "body must be a JSON object")
    return data


class EmulatorControl:
    """Client of the `/_steplift/` control API of an emulator running on 127.0.0.1."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme != "http" or parsed.hostname not in _LOCAL_HOSTS:
            raise ValueError(f"emulators are only reached on http://127.0.0.1, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # Never route a local control call through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def health(self) -> dict[str, Any]:
        """The emulator's health answer ({"status": "ok", "mode": ...})."""
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def faults(self) -> Faults:
        """The faults in force."""
        return Faults.from_dict(self._call("GET", "faults"))

    def set_faults(self, faults: Faults) -> Faults:
        """Put these faults in force; returns them as the emulator holds them."""
        return Faults.from_dict(self._call("POST", "faults", faults.to_dict()))

    def requests(self, operation: str | None = None) -> list[RecordedRequest]:
        """The request log (optionally only one operation)."""
        route = "requests" + (f"?operation={urllib.parse.quote(operation)}" if operation else "")
        return [RecordedRequest(**item) for item in self._call("GET", route)["requests"]]

    def reset(self) -> None:
        """Clear faults, scripts and the request log."""
        self._call("POST", "reset", {})

    def preempt(self, job_id: str) -> None:
        """Preempt a running spot job."""
        self._call("POST", f"jobs/{urllib.parse.quote(job_id, safe='')}/preempt", {})

    def kill_node(self, job_id: str, node: int) -> None:
        """Lose one node (0-based) of a running job."""
        self._call("POST", f"jobs/{urllib.parse.quote(job_id, safe='')}/kill-node", {"node": node})

    def script(
        self, job_id: str | None, steps: Sequence[ScriptStep | str | Mapping[str, Any]]
    ) -> None:
        """Set the scripted steps of one job, or the default ones when job_id is None."""
        body = {"steps": [dataclasses.asdict(ScriptStep.parse(step)) for step in steps]}
        route = "script" if job_id is None else f"jobs/{urllib.parse.quote(job_id, safe='')}/script"
        self._call("POST", route, body)

    def wait_until_healthy(self, timeout: float = 10.0) -> dict[str, Any]:
        """Poll health until it answers (bounded by `timeout`); raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.health()
            except (OSError, RuntimeError):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"emulator at {self.base_url} not healthy") from None
                time.sleep(0.05)

    def _call(self, method: str, route: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}{CONTROL_PREFIX}{route}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            error.close()
            raise RuntimeError(
                f"control call {method} {route} failed: {error.code} {detail}"
            ) from None


# --------------------------------------------------------------------------- helpers


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05
) -> bool:
    """Poll `predicate` every `interval` seconds for at most `timeout`; its last answer."""
    deadline = time.monotonic() + timeout
    for _ in range(max(1, math.ceil(timeout / interval)) + 1):
        if predicate():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    return predicate()


def export_lines(env: Mapping[str, str]) -> Iterator[str]:
    """Shell `export` lines for an environment."""
    for key, value in env.items():
        yield f"export {key}={value}"


def serve_until_interrupted(emulator: Emulator, title: str, out: IO[str]) -> int:
    """Run an emulator in the foreground: print endpoint and client env, serve until Ctrl-C.

    SIGTERM is treated like Ctrl-C so a supervisor can stop it cleanly. Returns an exit code.
    """
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    try:
        with emulator:
            print(f"{title} ({emulator.mode} mode) listening on {emulator.endpoint_url}", file=out)
            for line in export_lines(emulator.client_env()):
                print(line, file=out)
            print(
                f"control API: {emulator.endpoint_url}{CONTROL_PREFIX}  (Ctrl-C to stop)", file=out
            )
            out.flush()
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(0.5):
                    pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
