"""Emulated CustomJobs: `EmulatedJob`, the job table, and each job's lifecycle.

Execute mode runs every replica of every worker pool of a job as a local subprocess (one
node of a :class:`NodeGroup` each) with Vertex AI's container environment (see
:mod:`~steplift_vertex.emulator.container`). Each replica's output becomes log
entries labelled with its task name (``workerpool1-0``), as Vertex writes them. The job
succeeds when every replica exits 0; the first replica to fail ends the others and fails the
job naming it. Scripted mode moves a job one script step per status read: a ``get`` of it,
or its place on a page of a ``list`` answer.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from steplift.emulation.images import ImageRegistry
from steplift.testing.emulation import (
    EmulatorMode,
    Faults,
    JobProcess,
    NodeGroup,
    ScriptStep,
    free_port,
)
from steplift_vertex.emulator.container import CHIEF_TASK, Containers, Replica, job_replicas
from steplift_vertex.emulator.errors import RPC_CODES, ApiError
from steplift_vertex.emulator.validation import (
    decode_token,
    encode_token,
    lookup_path,
    matches,
    now_rfc3339,
    parse_duration,
    parse_filter,
    validate_custom_job,
)
from steplift_vertex.status import STATE_NAMES

TERMINAL = frozenset(
    {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_EXPIRED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
    }
)
DEFAULT_SCRIPT = (
    ScriptStep("JOB_STATE_PENDING"),
    ScriptStep("JOB_STATE_RUNNING"),
    ScriptStep("JOB_STATE_SUCCEEDED"),
)
DEFAULT_LIST_PAGE = 100
MAX_LIST_PAGE = 1000
_JOB_TIMESTAMPS = frozenset({"create_time", "createTime", "update_time", "updateTime"})


class EmulatorHooks(Protocol):
    """What the job service needs from its emulator."""

    @property
    def faults(self) -> Faults: ...

    def wait_for_faults_change(self, timeout: float) -> None: ...

    def job_env(self) -> dict[str, str]: ...


@dataclass
class EmulatedJob:
    """One CustomJob and what the emulator keeps about it."""

    resource: dict[str, Any]
    project: str
    number: str
    script: list[ScriptStep] = field(default_factory=list)
    script_position: int = 0
    cancel_requested: bool = False
    outcome: tuple[str, int, str] | None = None
    nodes: NodeGroup | None = None
    """The processes of its replicas, once started (execute mode)."""
    runner: threading.Thread | None = None
    workdir: Path | None = None
    """The folder of its replicas' containers (``<task>/work``, ``<task>/home``)."""

    @property
    def name(self) -> str:
        """The resource name ``projects/../locations/../customJobs/<number>``."""
        return str(self.resource["name"])

    @property
    def state(self) -> str:
        """The ``JOB_STATE_*`` name."""
        return str(self.resource["state"])

    @property
    def replicas(self) -> list[Replica]:
        """Every replica of the job, in node order: worker pool 0 first, then 1, 2, 3."""
        return job_replicas(self.resource["jobSpec"].get("workerPoolSpecs", []))

    @property
    def is_spot(self) -> bool:
        """True for a job scheduled on Spot VMs."""
        strategy = self.resource["jobSpec"].get("scheduling", {}).get("strategy")
        return bool(strategy == "SPOT")


def _step_state(step: ScriptStep) -> str:
    name = step.status if step.status.startswith("JOB_STATE_") else f"JOB_STATE_{step.status}"
    if name not in STATE_NAMES.values():
        raise ValueError(f"unknown Vertex job state in script: {step.status!r}")
    return name


def _step_error(step: ScriptStep) -> tuple[int, str]:
    reason = step.failure_reason or "Internal error occurred for the current attempt."
    code_name, sep, rest = reason.partition(":")
    if sep and code_name.strip() in RPC_CODES:
        return RPC_CODES[code_name.strip()], rest.strip()
    if "non-zero status" in reason:
        return RPC_CODES["INVALID_ARGUMENT"], reason
    return RPC_CODES["INTERNAL"], reason


class JobTable:
    """The customJobs collection of one emulator: every job, its state and its processes."""

    def __init__(
        self,
        mode: EmulatorMode,
        hooks: EmulatorHooks,
        on_line: Callable[[str, str, str, str], None],
        *,
        images: ImageRegistry,
        grace: float = 2.0,
    ) -> None:
        self.mode = mode
        self.hooks = hooks
        self.on_line = on_line
        self.grace = grace
        self._jobs: dict[str, EmulatedJob] = {}
        self._lock = threading.RLock()
        self._default_script: list[ScriptStep] = list(DEFAULT_SCRIPT)
        self._next_number = int(time.time() * 1000) * 1000
        self._stopping = threading.Event()
        self.containers = Containers(images)

    # -- lookup --------------------------------------------------------------------------------

    def _find(self, name_or_number: str) -> EmulatedJob:
        with self._lock:
            job = self._jobs.get(name_or_number)
            if job is None:
                for candidate in self._jobs.values():
                    if candidate.number == name_or_number:
                        return candidate
                raise KeyError(name_or_number)
            return job

    def get_job(self, name_or_number: str) -> EmulatedJob:
        """The job by resource name or number (KeyError if unknown)."""
        return self._find(name_or_number)

    def all_jobs(self) -> list[EmulatedJob]:
        """Every job, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def _require(self, name: str) -> EmulatedJob:
        try:
            return self._find(name)
        except KeyError:
            raise ApiError("NOT_FOUND", f'The CustomJob "{name}" does not exist.') from None

    # -- state changes -------------------------------------------------------------------------

    def _set_state(self, job: EmulatedJob, state: str, code: int = 0, message: str = "") -> None:
        with self._lock:
            stamp = now_rfc3339()
            job.resource["state"] = state
            job.resource["updateTime"] = stamp
            if state == "JOB_STATE_RUNNING" and "startTime" not in job.resource:
                job.resource["startTime"] = stamp
            if state in TERMINAL:
                job.resource["endTime"] = stamp
            if code:
                job.resource["error"] = {"code": code, "message": message}

    # -- API -----------------------------------------------------------------------------------

    def create(self, project: str, location: str, resource: dict[str, Any]) -> EmulatedJob:
        """``customJobs.create`` of a job read from its request: validate, store, start."""
        validate_custom_job(resource)
        with self._lock:
            self._next_number += 1
            number = str(self._next_number)
            stamp = now_rfc3339()
            resource.update(
                name=f"projects/{project}/locations/{location}/customJobs/{number}",
                state="JOB_STATE_QUEUED",
                createTime=stamp,
                updateTime=stamp,
            )
            job = EmulatedJob(resource, project, number, script=list(self._default_script))
            self._jobs[job.name] = job
        if self.mode == "execute":
            job.runner = threading.Thread(
                target=self._run, args=(job,), name=f"vertex-job-{number}", daemon=True
            )
            job.runner.start()
        return job

    def get(self, name: str) -> EmulatedJob:
        """``customJobs.get`` (moves a scripted job one step)."""
        job = self._require(name)
        if self.mode == "scripted":
            self._advance_script(job)
        return job

    def list(
        self, parent: str, filter_text: str, page_size: int, page_token: str
    ) -> tuple[list[EmulatedJob], str | None]:
        """``customJobs.list``: newest first, filtered, paged.

        In scripted mode the page is a status read of each job on it, as a ``get`` is: each
        moves one script step (after the filter chose them; the answer shows the new states),
        so a client that watches its jobs through the list sees them move as through ``get``.
        """
        clauses = parse_filter(filter_text)
        if page_size < 0:
            raise ApiError("INVALID_ARGUMENT", "page_size must not be negative")
        size = min(page_size or DEFAULT_LIST_PAGE, MAX_LIST_PAGE)
        offset = decode_token(page_token)
        with self._lock:
            selected = [
                job
                for job in reversed(self._jobs.values())
                if job.name.startswith(parent + "/customJobs/")
                and matches(clauses, functools.partial(_job_field, job), _JOB_TIMESTAMPS)
            ]
        page = selected[offset : offset + size]
        if self.mode == "scripted":
            for job in page:
                self._advance_script(job)
        token = encode_token(offset + size) if offset + size < len(selected) else None
        return page, token

    def cancel(self, name: str) -> None:
        """``customJobs.cancel``: CANCELLING now, CANCELLED once the replica stopped."""
        job = self._require(name)
        with self._lock:
            if job.state in TERMINAL:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f"Cannot cancel CustomJob {job.name} in state {job.state}.",
                )
            if job.state == "JOB_STATE_CANCELLING":
                return
            job.cancel_requested = True
            self._set_state(job, "JOB_STATE_CANCELLING")

    def delete(self, name: str) -> None:
        """``customJobs.delete``: only jobs that have ended."""
        job = self._require(name)
        with self._lock:
            if job.state not in TERMINAL:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f"CustomJob {job.name} is in state {job.state}; cancel it and wait for it "
                    "to end before deleting it.",
                )
            del self._jobs[job.name]

    # -- controls ------------------------------------------------------------------------------

    def preempt(self, job_id: str) -> None:
        """Reclaim a running Spot job's VM (KeyError: unknown job, ValueError: not possible)."""
        job = self._find(job_id)
        with self._lock:
            if not job.is_spot:
                raise ValueError(
                    f"job {job.number} does not run on Spot VMs; it cannot be preempted"
                )
            if job.state != "JOB_STATE_RUNNING":
                raise ValueError(f"job {job.number} is {job.state}, not running")
            job.outcome = (
                "JOB_STATE_FAILED",
                RPC_CODES["UNAVAILABLE"],
                f"The Spot VM of replica {CHIEF_TASK} was preempted. "
                "Spot VMs can be reclaimed by Compute Engine at any time.",
            )
            if self.mode == "scripted":
                self._set_state(job, *job.outcome)

    def kill_node(self, job_id: str, rank: int) -> None:
        """Kill one replica's process, as a lost host (KeyError: unknown job, ValueError: not
        running or no such replica); the job then fails naming that replica."""
        job = self._find(job_id)
        with self._lock:
            group = job.nodes
            if job.state != "JOB_STATE_RUNNING" or group is None:
                raise ValueError(f"job {job.number} is {job.state}, not running")
            replicas = job.replicas
            if not 0 <= rank < len(replicas):
                raise ValueError(
                    f"job {job.number} has {len(replicas)} replicas; there is no node {rank}"
                )
        group.kill_node(rank)

    def set_script(
        self, job_id: str | None, steps: Sequence[ScriptStep | str | Mapping[str, Any]]
    ) -> None:
        """Scripted mode: the steps of one job, or of every new job (job_id None)."""
        parsed = [ScriptStep.parse(step) for step in steps]
        for step in parsed:
            _step_state(step)
        if not parsed:
            raise ValueError("a script needs at least one step")
        if job_id is None:
            self._default_script = parsed
            return
        if self.mode != "scripted":
            raise ValueError("per-job scripts apply in scripted mode only")
        try:
            job = self._find(job_id)
        except KeyError:
            raise ValueError(f"no such job: {job_id}") from None
        with self._lock:
            job.script, job.script_position = parsed, 0

    def reset_scripts(self) -> None:
        """Back to the default script for new jobs."""
        self._default_script = list(DEFAULT_SCRIPT)

    def _advance_script(self, job: EmulatedJob) -> None:
        with self._lock:
            if job.state in TERMINAL:
                return
            if job.cancel_requested:
                self._set_state(job, "JOB_STATE_CANCELLED")
                return
            if self.hooks.faults.stuck_in_queue:
                return
            if job.script_position >= len(job.script):
                return
            step = job.script[job.script_position]
            job.script_position += 1
            state = _step_state(step)
            if state == "JOB_STATE_RUNNING" and self.hooks.faults.refuse_create == "capacity":
                self._set_state(job, "JOB_STATE_FAILED", *_capacity_error())
                return
            code, message = _step_error(step) if state == "JOB_STATE_FAILED" else (0, "")
            self._set_state(job, state, code, message)

    # -- execute mode --------------------------------------------------------------------------

    def is_running(self, job_id: str) -> bool:
        """True while the job's runner thread or any replica's process is alive."""
        job = self._find(job_id)
        runner_alive = job.runner is not None and job.runner.is_alive()
        nodes_alive = job.nodes is not None and job.nodes.is_running()
        return runner_alive or nodes_alive

    def _run(self, job: EmulatedJob) -> None:
        try:
            self._run_job(job)
        except Exception as error:  # the emulator must never leave a job hanging
            if job.nodes is not None:
                job.nodes.terminate(0.0)
            self._set_state(job, "JOB_STATE_FAILED", RPC_CODES["INTERNAL"], f"emulator: {error}")

    def _run_job(self, job: EmulatedJob) -> None:
        while self.hooks.faults.stuck_in_queue and not (
            job.cancel_requested or self._stopping.is_set()
        ):
            self.hooks.wait_for_faults_change(0.1)
        if job.cancel_requested:
            self._set_state(job, "JOB_STATE_CANCELLED")
            return
        self._set_state(job, "JOB_STATE_PENDING")
        if self.hooks.faults.refuse_create == "capacity":
            self._set_state(job, "JOB_STATE_FAILED", *_capacity_error())
            return
        replicas = job.replicas
        commands = [self.containers.command(job.resource, replica) for replica in replicas]
        if not all(commands):
            self._set_state(
                job,
                "JOB_STATE_FAILED",
                RPC_CODES["INVALID_ARGUMENT"],
                "The emulator runs container commands only: containerSpec.command is empty "
                "(the image's own entrypoint cannot be run locally).",
            )
            return
        timeout = job.resource["jobSpec"].get("scheduling", {}).get("timeout")
        max_runtime = parse_duration(timeout, "timeout") if timeout else None
        job.workdir = self.containers.job_folder(job.number)
        try:
            containers = [
                self.containers.container(job.resource, job.number, replica) for replica in replicas
            ]
        except OSError as error:
            self._set_state(
                job,
                "JOB_STATE_FAILED",
                RPC_CODES["INVALID_ARGUMENT"],
                f"The job's container image could not be prepared: {error}",
            )
            return
        # Every replica listens on its own port of 127.0.0.1; the chief's is the rendezvous.
        addresses = {replica: f"127.0.0.1:{free_port()}" for replica in replicas}

        def make_node(rank: int, on_exit: Callable[[JobProcess], None]) -> JobProcess:
            replica = replicas[rank]
            return containers[rank].process(
                commands[rank],
                self.containers.environment(
                    job.resource,
                    job.project,
                    job.number,
                    replica,
                    addresses,
                    self.hooks.job_env(),
                ),
                on_line=lambda line: self.on_line(job.project, job.number, replica.task, line),
                max_runtime=max_runtime,
                grace=self.grace,
                on_exit=on_exit,
            )

        group = NodeGroup(len(replicas), make_node)
        with self._lock:
            if job.cancel_requested:
                self._set_state(job, "JOB_STATE_CANCELLED")
                return
            job.nodes = group
            try:
                group.start()
            except OSError as error:
                group.terminate(0.0)
                self._set_state(
                    job,
                    "JOB_STATE_FAILED",
                    RPC_CODES["INVALID_ARGUMENT"],
                    f"A replica of the job could not start its command: {error}",
                )
                return
            self._set_state(job, "JOB_STATE_RUNNING")
        while group.is_running():
            if job.cancel_requested or job.outcome or self._stopping.is_set():
                group.terminate()
                break
            self._stopping.wait(0.05)
        group.wait(10.0)
        self._finish(job, group, replicas)

    def _finish(self, job: EmulatedJob, group: NodeGroup, replicas: Sequence[Replica]) -> None:
        codes = group.exit_codes
        failed = group.failed_node
        if failed is None:
            # Nodes that ended together may not have reported yet: the first non-zero one.
            failed = next((rank for rank, code in enumerate(codes) if code), None)
        if job.outcome is not None:
            self._set_state(job, *job.outcome)
        elif job.cancel_requested:
            self._set_state(job, "JOB_STATE_CANCELLED")
        elif self._stopping.is_set():
            self._set_state(
                job, "JOB_STATE_FAILED", RPC_CODES["UNAVAILABLE"], "The emulator was stopped."
            )
        elif group.timed_out:
            self._set_state(
                job,
                "JOB_STATE_FAILED",
                RPC_CODES["DEADLINE_EXCEEDED"],
                f"The job ran past its timeout of {group.processes[0].max_runtime:g}s "
                "(job_spec.scheduling.timeout) and was stopped.",
            )
        elif failed is None:
            self._set_state(job, "JOB_STATE_SUCCEEDED")
        else:
            code = codes[failed]
            status = code if code is not None and code >= 0 else 128 - (code or 0)
            self._set_state(
                job,
                "JOB_STATE_FAILED",
                RPC_CODES["INVALID_ARGUMENT"],
                f"The replica {replicas[failed].task} exited with a non-zero status of "
                f"{status}. Termination reason: Error. To find out more about why your job "
                "exited please check the logs.",
            )

    def shutdown(self) -> None:
        """Stop every job's replicas and runner thread; remove job folders."""
        self._stopping.set()
        for job in self.all_jobs():
            if job.nodes is not None:
                job.nodes.terminate(grace=min(self.grace, 1.0))
        for job in self.all_jobs():
            if job.runner is not None:
                job.runner.join(10.0)
        self.containers.remove()


def _capacity_error() -> tuple[int, str]:
    return (
        RPC_CODES["RESOURCE_EXHAUSTED"],
        "Resources are insufficient in region: the requested machines are temporarily "
        "unavailable. Please try a different region or try again later.",
    )


def _job_field(job: EmulatedJob, path: str) -> Any:
    resource = job.resource
    if path.startswith("labels."):
        return resource.get("labels", {}).get(path[len("labels.") :].strip('"'))
    aliases = {
        "display_name": "displayName",
        "create_time": "createTime",
        "update_time": "updateTime",
        "start_time": "startTime",
        "end_time": "endTime",
    }
    if path in aliases:
        return resource.get(aliases[path])
    if path == "state":
        return resource.get("state")
    return lookup_path(resource, path)
