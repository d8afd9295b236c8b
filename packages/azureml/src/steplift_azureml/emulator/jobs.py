"""Emulated Azure ML command jobs: :class:`EmulatedJob`, its lifecycle, and the job table.

Execute mode runs the job's command as local subprocesses (:class:`JobRunner`): one per
instance, or, with a PyTorch distribution, ``processCountPerInstance`` per instance, each
with its own ``user_logs/std_log_process_<rank>.txt``. Scripted mode steps through given
statuses, one per read of the job: a ``jobs.get``, or its entry in a page of the jobs list.
:class:`JobTable` holds every job of the workspace and what the control API does to them
(scripts, preemption, a lost node, cancel, stop).
"""

from __future__ import annotations

import datetime
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steplift.emulation.sandbox import Sandbox
from steplift.testing.emulation import Faults, JobProcess, NodeGroup, ScriptStep, free_port
from steplift_azureml.emulator.errors import ApiError, error_body
from steplift_azureml.emulator.logs import log_file, log_sink

TERMINAL = frozenset({"Completed", "Failed", "Canceled"})
STATUSES = frozenset(
    {
        "NotStarted",
        "Queued",
        "Preparing",
        "Provisioning",
        "Starting",
        "Running",
        "Finalizing",
        "CancelRequested",
        "NotResponding",
        "Paused",
        *TERMINAL,
    }
)
DEFAULT_SCRIPT = (ScriptStep("Queued"), ScriptStep("Running"), ScriptStep("Completed"))


def utc_now() -> str:
    """An ISO 8601 UTC timestamp as the service writes them."""
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def preempted_error() -> dict[str, Any]:
    """The error of a spot job whose low-priority capacity was taken back."""
    return error_body(
        "ServiceError", "The low-priority node running the job was preempted.", "JobPreempted"
    )


def node_lost_error(node: int) -> dict[str, Any]:
    """The error of a job one of whose nodes was lost (the emulator's kill-node fault)."""
    return error_body(
        "ServiceError",
        f"Node {node} of the job was lost: its processes were killed (SIGKILL). The job was "
        "stopped on every node.",
        "NodeFailure",
    )


def error_for_reason(reason: str) -> dict[str, Any]:
    """A scripted failure reason as a run-history error (the code follows the words)."""
    words = reason.lower()
    if "quota" in words:
        return error_body("UserError", reason, "QuotaExceeded")
    if "capacity" in words or "allocation" in words:
        return error_body("ServiceError", reason, "AllocationFailed")
    if "preempt" in words:
        return error_body("ServiceError", reason, "JobPreempted")
    if "image" in words:
        return error_body("UserError", reason, "ImagePullFailed")
    if "timeout" in words or "time limit" in words:
        return error_body("UserError", reason, "JobTimeLimitExceeded")
    if "exit" in words or "user" in words:
        return error_body("UserError", reason, "UserProcessFailed")
    return error_body("ServiceError", reason, "InternalServiceError")


@dataclass
class EmulatedJob:
    """One job as the emulated service holds it."""

    name: str
    resource: dict[str, Any]
    experiment: str
    instance_count: int = 1
    processes_per_instance: int = 1
    """The PyTorch distribution's processCountPerInstance (1 without a distribution)."""
    distributed: bool = False
    """Whether the job has a PyTorch distribution (the platform sets the torch variables)."""
    spot: bool = False
    timeout: float | None = None
    status: str = "NotStarted"
    error: dict[str, Any] | None = None
    created: str = field(default_factory=utc_now)
    started: str | None = None
    ended: str | None = None
    logs: dict[str, bytearray] = field(default_factory=dict)
    group: NodeGroup | None = None
    """Every process of the job (instance by instance), once started."""
    script: list[ScriptStep] | None = None
    command: str = ""
    """The command with ${{outputs.NAME}} replaced by where each output is mounted."""
    cancel_requested: bool = False
    preempted: bool = False
    lost_nodes: set[int] = field(default_factory=set)
    """Nodes the kill-node fault took away."""
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def world_size(self) -> int:
        """Processes across all instances."""
        return self.instance_count * self.processes_per_instance

    @property
    def processes(self) -> list[JobProcess]:
        """The job's processes, by global rank (empty before they start)."""
        return list(self.group.processes) if self.group is not None else []

    def node_of(self, rank: int) -> int:
        """The instance (node) running the process of global ``rank``."""
        return rank // self.processes_per_instance

    def log_file(self, rank: int) -> str:
        """The log file of the process of global ``rank`` (one per process when the platform
        starts them for a distribution)."""
        return log_file(self.distributed, rank)

    @property
    def is_terminal(self) -> bool:
        """True once the job's status can no longer change."""
        return self.status in TERMINAL

    def set_status(self, status: str, error: dict[str, Any] | None = None) -> None:
        """Move to ``status`` (ignored once terminal) and stamp start/end times."""
        with self.lock:
            if self.is_terminal:
                return
            self.status = status
            if error is not None:
                self.error = error
            if status == "Running" and self.started is None:
                self.started = utc_now()
            if status in TERMINAL:
                self.ended = utc_now()

    def append_log(self, file: str, line: str) -> None:
        """Append one line to a log file of the run."""
        with self.lock:
            self.logs.setdefault(file, bytearray()).extend((line + "\n").encode())

    def log_bytes(self, file: str) -> bytes | None:
        """The content of a log file so far (None: no such file)."""
        with self.lock:
            data = self.logs.get(file)
            return bytes(data) if data is not None else None

    def alive(self) -> bool:
        """True while a process of the job runs."""
        return self.group is not None and self.group.is_running()

    def advance_script(self) -> None:
        """Scripted mode: take the next step (the last one stays)."""
        with self.lock:
            if not self.script or self.is_terminal:
                return
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            error = error_for_reason(step.failure_reason) if step.failure_reason else None
            if step.status == "Failed" and error is None:
                error = error_body("UserError", "the scripted job failed", "UserProcessFailed")
            self.set_status(step.status, error)
            if step.status == "Running":
                self.append_log(self.log_file(0), f"scripted job {self.name} is running")


class JobRunner:
    """Runs one emulated job in execute mode (a thread per job).

    Every process of the job (``processCountPerInstance`` on each instance) is a member of one
    :class:`NodeGroup`: the job completes only when all exit 0, and the first to fail stops
    the others and fails the job, naming its node.
    """

    def __init__(
        self,
        job: EmulatedJob,
        *,
        sandbox: Sandbox,
        image: str,
        env_for_rank: Callable[[int, int], dict[str, str]],
        refuse_capacity: Callable[[], bool],
        stuck: Callable[[], bool],
        wait_for_change: Callable[[float], None],
        stopping: threading.Event,
        grace: float,
    ) -> None:
        self.job = job
        self.sandbox = sandbox
        self.image = image
        """The image URI of the job's environment."""
        self.env_for_rank = env_for_rank
        """(global rank, rendezvous port) -> the process's environment."""
        self.refuse_capacity = refuse_capacity
        self.stuck = stuck
        self.wait_for_change = wait_for_change
        self.stopping = stopping
        self.grace = grace
        self.thread = threading.Thread(
            target=self._run, name=f"azureml-job-{job.name}", daemon=True
        )

    def start(self) -> None:
        """Start the job's lifecycle thread."""
        self.thread.start()

    def _run(self) -> None:
        job = self.job
        job.set_status("Queued")
        while self.stuck() and not job.cancel_requested and not self.stopping.is_set():
            self.wait_for_change(0.05)
        if job.cancel_requested or self.stopping.is_set():
            job.set_status("Canceled")
            return
        if self.refuse_capacity():
            job.set_status(
                "Failed",
                error_body(
                    "ServiceError",
                    "Failed to allocate compute: insufficient capacity for the requested VM "
                    "size in this region (AllocationFailed).",
                    "AllocationFailed",
                ),
            )
            return
        job.set_status("Preparing")
        command = job.command or str(job.resource["properties"]["command"])
        try:
            # One container per node: the node's processes share its working directory.
            containers = [
                self.sandbox.container(
                    f"{job.name}/node-{node}", self.image, hostname=f"node-{node}"
                )
                for node in range(job.instance_count)
            ]
        except OSError as error:
            job.set_status(
                "Failed",
                error_body(
                    "UserError",
                    f"The job's image could not be prepared: {error}",
                    "ImagePullFailed",
                ),
            )
            return
        port = free_port()

        def make_process(rank: int, on_exit: Callable[[JobProcess], None]) -> JobProcess:
            log = job.log_file(rank)
            job.logs.setdefault(log, bytearray())
            return containers[job.node_of(rank)].process(
                ["/bin/sh", "-c", command],
                self.env_for_rank(rank, port),
                on_line=log_sink(job, log),
                max_runtime=job.timeout,
                grace=self.grace,
                on_exit=on_exit,
            )

        with job.lock:
            if job.cancel_requested:
                job.set_status("Canceled")
                return
            if job.preempted:
                job.set_status("Failed", preempted_error())
                return
            group = NodeGroup(job.world_size, make_process)
            try:
                group.start()
            except OSError as error:
                group.terminate(0.0)
                job.set_status(
                    "Failed",
                    error_body("UserError", f"Could not start the job: {error}", "ProcessFailed"),
                )
                return
            # Under the job's lock: a cancel, preemption or kill-node waits for it, then finds
            # every process started.
            job.group = group
            job.set_status("Running")
        group.wait()
        self._conclude(group)

    def _conclude(self, group: NodeGroup) -> None:
        job = self.job
        with job.lock:
            failed = group.failed_node
            if job.preempted:
                job.set_status("Failed", preempted_error())
            elif job.cancel_requested:
                job.set_status("Canceled")
            elif group.timed_out:
                job.set_status(
                    "Failed",
                    error_body(
                        "UserError",
                        f"The job ran past its limits.timeout of {job.timeout:g} seconds and "
                        "was stopped.",
                        "JobTimeLimitExceeded",
                    ),
                )
            elif failed is None:
                job.set_status("Finalizing")
                job.set_status("Completed")
            elif job.node_of(failed) in job.lost_nodes:
                job.set_status("Failed", node_lost_error(job.node_of(failed)))
            else:
                job.set_status("Failed", _process_failure(job, failed, group.exit_codes[failed]))

    def stop(self, grace: float | None = None) -> None:
        """Terminate every process of the job."""
        group = self.job.group
        if group is not None:
            group.terminate(self.grace if grace is None else grace)

    def kill_node(self, node: int) -> None:
        """Kill every process of one instance at once, as when its host is lost."""
        job = self.job
        group = job.group
        if group is None:
            return
        ranks = range(node * job.processes_per_instance, (node + 1) * job.processes_per_instance)
        for rank in ranks:
            group.kill_node(rank, signal.SIGKILL)


def _process_failure(job: EmulatedJob, rank: int, code: int | None) -> dict[str, Any]:
    """The run-history error of a job whose process ``rank`` exited with ``code``."""
    log = job.log_file(rank)
    where = ""
    if job.world_size > 1:
        where = f" on node {job.node_of(rank)} (rank {rank})"
    return error_body(
        "UserError",
        f"Execution failed. User process '/bin/sh' exited with status code {code}{where}. "
        f"Please check log file '{log}' for error details.",
        "UserProcessFailed",
    )


class JobTable:
    """Every job of the emulated workspace, oldest first, and what can happen to them.

    ``faults`` answers the emulator's current faults (a stuck queue, a capacity refusal);
    ``wait_for_faults_change`` waits until they change.
    """

    def __init__(
        self,
        mode: str,
        *,
        faults: Callable[[], Faults],
        wait_for_faults_change: Callable[[float], None],
        stop_grace: float,
    ) -> None:
        self.mode = mode
        self.jobs: dict[str, EmulatedJob] = {}
        self.created = 0
        """Jobs created since the emulator started (a refused create is not one)."""
        self.stop_grace = stop_grace
        self._faults = faults
        self._wait_for_faults_change = wait_for_faults_change
        self._runners: dict[str, JobRunner] = {}
        self._scripts: dict[str, list[ScriptStep]] = {}
        self._default_script: list[ScriptStep] = list(DEFAULT_SCRIPT)
        self.stopping = threading.Event()
        """Set when the emulator stops: queued jobs then end Canceled."""
        self.lock = threading.RLock()

    def get(self, name: str) -> EmulatedJob:
        """The job named ``name``; a 404 ``ApiError`` when there is none."""
        job = self.jobs.get(name)
        if job is None:
            raise ApiError(404, "UserError", f"Could not find job '{name}'.", "NotFound")
        return job

    def newest_first(self) -> list[EmulatedJob]:
        """Every job, newest first (the jobs list's order)."""
        with self.lock:
            return list(reversed(self.jobs.values()))

    def read(self, job: EmulatedJob) -> None:
        """A read of the job: in scripted mode every read, a get or a list entry, takes the
        job's next scripted step (unless the queue is stuck and the job is queued)."""
        if self.mode == "scripted" and not (
            self._faults().stuck_in_queue and job.status in ("NotStarted", "Queued")
        ):
            job.advance_script()

    def add(
        self,
        job: EmulatedJob,
        *,
        sandbox: Sandbox,
        image: str,
        env_for_rank: Callable[[int, int], dict[str, str]],
    ) -> None:
        """Take a new job (the caller holds :attr:`lock` and checked its name is free) and
        start it: its script in scripted mode, its processes in execute mode."""
        self.jobs[job.name] = job
        self.created += 1
        if self.mode == "scripted":
            job.script = list(self._scripts.get(job.name, self._default_script))
            job.set_status("NotStarted")
            return
        runner = JobRunner(
            job,
            sandbox=sandbox,
            image=image,
            env_for_rank=env_for_rank,
            refuse_capacity=lambda: self._faults().refuse_create == "capacity",
            stuck=lambda: self._faults().stuck_in_queue,
            wait_for_change=self._wait_for_faults_change,
            stopping=self.stopping,
            grace=self.stop_grace,
        )
        self._runners[job.name] = runner
        runner.start()

    def cancel(self, job: EmulatedJob) -> None:
        """Ask the job to stop: CancelRequested, then Canceled once its processes ended."""
        with job.lock:
            if not job.is_terminal:
                job.cancel_requested = True
                job.set_status("CancelRequested")
        runner = self._runners.get(job.name)
        if runner is not None:
            # Stopping takes up to the grace period: do it off the request thread.
            threading.Thread(target=runner.stop, name=f"cancel-{job.name}", daemon=True).start()
        elif not job.is_terminal:
            job.set_status("Canceled")

    def reset(self) -> None:
        """Forget the scripts (jobs stay)."""
        with self.lock:
            self._scripts.clear()
            self._default_script = list(DEFAULT_SCRIPT)

    def script(
        self, job_id: str | None, steps: Sequence[ScriptStep | str | Mapping[str, Any]]
    ) -> None:
        """Script a job's statuses (``None``: every job created from now on)."""
        parsed = [ScriptStep.parse(step) for step in steps]
        if not parsed:
            raise ValueError("a script needs at least one step")
        for step in parsed:
            if step.status not in STATUSES:
                raise ValueError(
                    f"{step.status!r} is not an Azure ML job status; one of {sorted(STATUSES)}"
                )
        with self.lock:
            if job_id is None:
                self._default_script = parsed
            else:
                self._scripts[job_id] = parsed
                job = self.jobs.get(job_id)
                if job is not None:
                    job.script = list(parsed)

    def preempt(self, job_id: str) -> None:
        """Take a spot job's capacity back: it fails as preempted."""
        with self.lock:
            job = self.jobs[job_id]
            runner = self._runners.get(job_id)
        if not job.spot:
            raise ValueError(f"job {job_id} is not a spot job; only spot jobs are preempted")
        if job.is_terminal:
            raise ValueError(f"job {job_id} already ended ({job.status})")
        with job.lock:
            job.preempted = True
        if runner is not None:
            runner.stop(grace=0.5)
        else:
            job.set_status("Failed", preempted_error())

    def kill_node(self, job_id: str, node: int) -> None:
        """Kill every process of one instance of a running job, as when its host is lost.

        The other instances are stopped and the job fails naming the lost node. A scripted
        job fails the same way at once. KeyError: no such job; ValueError: it cannot be done.
        """
        with self.lock:
            job = self.jobs[job_id]
            runner = self._runners.get(job_id)
        if isinstance(node, bool) or not isinstance(node, int):
            raise ValueError(f"a node is an instance index, not {node!r}")
        if not 0 <= node < job.instance_count:
            raise ValueError(
                f"job {job_id} has {job.instance_count} instance(s); there is no node {node}"
            )
        with job.lock:
            if job.is_terminal:
                raise ValueError(f"job {job_id} already ended ({job.status})")
            if runner is not None and job.group is None:
                raise ValueError(f"job {job_id} is not running yet ({job.status})")
            job.lost_nodes.add(node)
        if runner is not None:
            runner.kill_node(node)
        else:
            job.set_status("Failed", node_lost_error(node))

    def is_running(self, job_id: str) -> bool:
        """True while any process of the job runs, on any instance."""
        job = self.jobs.get(job_id)
        return bool(job and job.alive())

    def stop(self, grace: float) -> None:
        """Stop every job's processes and wait for their threads."""
        self.stopping.set()
        with self.lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.job.cancel_requested = True
            runner.stop(grace=min(grace, 1.0))
        for runner in runners:
            runner.thread.join(10)
