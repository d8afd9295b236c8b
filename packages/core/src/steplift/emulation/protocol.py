"""The `Emulator` protocol: what every steplift cloud emulator offers its consumers.

Tests, benchmarks, examples and the `steplift emulator` command use an emulator only through
these members (in process) or the `/_steplift/` control API (over HTTP).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, Protocol, Self, TypeAlias, runtime_checkable

from steplift.emulation.faults import Faults
from steplift.emulation.request_log import RequestLog
from steplift.emulation.scripts import ScriptStep

__all__ = ["Emulator", "EmulatorMode"]

EmulatorMode: TypeAlias = Literal["execute", "scripted"]
"""execute: jobs run as local processes; scripted: jobs walk through scripted statuses."""


@runtime_checkable
class Emulator(Protocol):
    """What every steplift emulator offers in-process (and over `/_steplift/`)."""

    flavor: ClassVar[str]
    """The steplift flavor this emulator stands in for (``"sagemaker"``, ...)."""

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

    def operator_config(self, **fields: Any) -> dict[str, Any]:
        """The operator config fields, ``"flavor"`` included, that point a steplift operator at
        this running emulator (endpoint, credentials, bucket or workspace...); ``fields``
        override or extend them. `steplift.emulation.emulated_operator` builds the operator."""
        ...

    def attempt_key(self, job_id: str) -> str:
        """The step attempt (``StepRunInfo.attempt_key``) job ``job_id`` was submitted for, as
        the emulator reads it from the job (its name or labels). KeyError: no such job."""
        ...

    @classmethod
    def main(cls, argv: list[str] | None = None) -> int:
        """What ``steplift emulator <flavor> [ARGS...]`` runs, ``argv`` being the ARGS (None:
        the process's own): serve the emulator in the foreground and print how to connect
        (an emulator may also offer to run a command against itself), then return the exit
        code. `EmulatorBase` runs the ``main`` of the ``cli`` module beside the emulator's."""
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
