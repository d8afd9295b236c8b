"""The ``local`` flavor: each job is a supervised subprocess on this machine.

A job lives in ``<root>/jobs/<job name>/``; the supervisor (``local_supervisor``) keeps its
state there, so a job outlives the process that launched it and can be followed, adopted or
cancelled from any other process, just like a cloud job.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from steplift.launch.policy import LaunchPolicy
from steplift.models import JobHandle, JobStatus, LogChunk, StepRunInfo
from steplift.operator import Flavor, StepOperator, StepOperatorConfig
from steplift.packaging.cache import CACHE_ENV
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, PollPolicy, Sleep
from steplift.states import FailureKind, JobState
from steplift.store import ArtifactStore, LocalArtifactStore

NEVER_STARTED_AFTER = 60.0
"""Seconds after which a job whose supervisor never reported is declared failed."""


class LocalStepOperatorConfig(StepOperatorConfig):
    """Config of the ``local`` flavor."""

    root: str = Field(
        default=".steplift/local",
        min_length=1,
        description="Folder for jobs and artifacts (relative paths: to the working directory).",
    )
    working_dir: str | None = Field(
        default=None,
        description="Folder a job starts in (default: the launcher's working directory); a "
        "job that gets a code package then runs from its unpacked package.",
    )


class LocalStepOperator(StepOperator[LocalStepOperatorConfig]):
    """Runs each step attempt as a supervised subprocess."""

    launch_policy = LaunchPolicy(poll=PollPolicy(initial=0.05, factor=1.5, maximum=1.0))
    multi_node = True  # one process per node on this machine, all on 127.0.0.1

    def __init__(
        self,
        config: LocalStepOperatorConfig,
        *,
        name: str = "default",
        clock: Clock = DEFAULT_CLOCK,
        sleep: Sleep = DEFAULT_SLEEP,
        policy: LaunchPolicy | None = None,
    ) -> None:
        super().__init__(config, name=name, clock=clock, sleep=sleep, policy=policy)
        self.root = Path(config.root).expanduser().resolve()
        self.jobs_dir = self.root / "jobs"
        self._store = LocalArtifactStore()

    @property
    def flavor(self) -> str:
        return "local"

    def portable_config(self) -> dict[str, Any]:
        return {**super().portable_config(), "root": str(self.root)}

    def checkpoint_dir(self, info: StepRunInfo) -> str | None:
        return str(self.root / "checkpoints" / info.pipeline / info.run / info.step)

    @property
    def artifact_store(self) -> ArtifactStore:
        return self._store

    @property
    def artifact_root(self) -> str:
        return str(self.root / "artifacts")

    def _job_dir(self, handle: JobHandle) -> Path:
        return self.jobs_dir / handle.job_id

    def _handle(self, name: str) -> JobHandle:
        return JobHandle(
            flavor="local", job_id=name, name=name, extra={"dir": str(self.jobs_dir / name)}
        )

    def describe_request(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> dict[str, Any]:
        """The job's ``job.json`` as ``submit`` writes it (without its creation time)."""
        command = list(entrypoint_command)
        if command and command[0] in ("python", "python3"):
            # The job runs with this interpreter, so it sees the same installed packages.
            command[0] = sys.executable
        if CACHE_ENV not in os.environ and CACHE_ENV not in environment:
            # Unpacked code and installed requirements stay with this operator's jobs.
            environment = {**environment, CACHE_ENV: str(self.root / "cache")}
        return {
            "command": command,
            "environment": environment,
            "cwd": self.config.working_dir or os.getcwd(),
            "max_runtime": info.max_runtime or self.config.max_runtime,
            "nodes": info.resources.nodes,
            "attempt_key": info.attempt_key,
        }

    def submit(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> JobHandle:
        name = info.job_name()
        spec = {
            **self.describe_request(info, entrypoint_command, environment),
            "created": time.time(),
        }
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.jobs_dir, prefix=f".{name}."))
        (staging / "job.json").write_text(json.dumps(spec, indent=2))
        try:
            # rename is atomic: of two launchers racing for one step attempt, one creates it.
            os.rename(staging, self.jobs_dir / name)
        except OSError:
            (staging / "job.json").unlink()
            staging.rmdir()
            return self._handle(name)
        job_dir = self.jobs_dir / name
        # The supervisor detaches itself (double fork) and writes supervisor.pid; we only wait
        # for the short-lived intermediate, so no child of ours is left to reap.
        with open(job_dir / "supervisor.log", "wb") as log:
            subprocess.run(
                [sys.executable, "-m", "steplift.flavors.local_supervisor", str(job_dir)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
                check=True,
                timeout=60,
            )
        return self._handle(name)

    def find_job(self, info: StepRunInfo) -> JobHandle | None:
        name = info.job_name()
        return self._handle(name) if (self.jobs_dir / name / "job.json").exists() else None

    @staticmethod
    def _supervisor_alive(job_dir: Path) -> bool | None:
        try:
            pid = int((job_dir / "supervisor.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return _alive(pid)

    def get_status(self, handle: JobHandle) -> JobStatus:
        job_dir = self._job_dir(handle)
        if not (job_dir / "job.json").exists():
            return JobStatus(
                state=JobState.FAILED,
                provider_state="MISSING",
                message=f"no local job {handle.job_id} under {self.jobs_dir}",
                failure_kind=FailureKind.INFRASTRUCTURE,
            )
        try:
            state = json.loads((job_dir / "state.json").read_text())
        except FileNotFoundError:
            state = {}
        provider_state = str(state.get("state", "STARTING"))
        if provider_state not in ("SUCCEEDED", "FAILED", "CANCELLED"):
            alive = self._supervisor_alive(job_dir)
            created = json.loads((job_dir / "job.json").read_text()).get("created", 0.0)
            if alive is False or (alive is None and time.time() - created > NEVER_STARTED_AFTER):
                return JobStatus(
                    state=JobState.FAILED,
                    provider_state="LOST",
                    message="the job's supervisor process ended without recording an outcome",
                    failure_kind=FailureKind.INFRASTRUCTURE,
                )
        kind = state.get("failure_kind")
        return JobStatus(
            state=JobState.PENDING if provider_state == "STARTING" else JobState(provider_state),
            provider_state=provider_state,
            message=str(state.get("message", "")),
            failure_kind=FailureKind(kind) if kind else None,
            exit_code=state.get("exit_code"),
        )

    def cancel(self, handle: JobHandle) -> None:
        job_dir = self._job_dir(handle)
        if not job_dir.is_dir():
            return
        (job_dir / "cancel-requested").touch()
        # The flag file is enough once the supervisor runs; the signal makes it prompt.
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int((job_dir / "supervisor.pid").read_text()), signal.SIGTERM)

    def read_logs(self, handle: JobHandle, cursor: str | None) -> LogChunk:
        offset = int(cursor or 0)
        try:
            with open(self._job_dir(handle) / "output.log", "rb") as log:
                log.seek(offset)
                data = log.read()
        except FileNotFoundError:
            return LogChunk([], cursor)
        complete = data.rfind(b"\n") + 1  # only whole lines; the rest comes next time
        lines = data[:complete].decode("utf-8", errors="replace").splitlines()
        return LogChunk(lines, str(offset + complete))

    def running_processes(self, handle: JobHandle) -> list[int]:
        """Pids of the job's supervisor and command that are still alive (for tests and tools)."""
        job_dir = self._job_dir(handle)
        pids: list[int] = []
        with contextlib.suppress(FileNotFoundError, ValueError):
            pids.append(int((job_dir / "supervisor.pid").read_text()))
        try:
            state = json.loads((job_dir / "state.json").read_text())
            pids += [int(pid) for pid in state.get("pids") or [state.get("pid")] if pid]
        except FileNotFoundError:
            pass
        return [pid for pid in pids if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


FLAVOR = Flavor(
    name="local",
    config="steplift.flavors.local:LocalStepOperatorConfig",
    operator="steplift.flavors.local:LocalStepOperator",
)
"""The ``local`` flavor: the default when no config exists."""
