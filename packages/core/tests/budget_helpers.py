"""An in-memory operator for the cost, budget and plan tests: scripted statuses, a virtual
clock, and every submitted StepRunInfo kept."""

from __future__ import annotations

from typing import Any

from steplift.cost import PriceKey
from steplift.launch import LaunchPolicy
from steplift.models import JobHandle, JobStatus, LogChunk, StepRunInfo
from steplift.operator import StepOperator, StepOperatorConfig
from steplift.polling import PollPolicy
from steplift.states import JobState
from steplift.store import ArtifactStore
from steplift.testing import ConformanceClock
from steplift.testing.memory import MemoryStore

FAST = LaunchPolicy(
    poll=PollPolicy(initial=1.0, factor=1.0, maximum=1.0),
    call_workers=None,
    cancel_timeout=5.0,
    shortest_run=1.0,
)


class MemoryOperator(StepOperator):
    """Jobs that stay RUNNING (or follow ``script``) until cancelled; nothing runs."""

    multi_node = True

    def __init__(
        self,
        config: StepOperatorConfig | None = None,
        *,
        script: list[JobStatus] | None = None,
        key: PriceKey | None = None,
        policy: LaunchPolicy = FAST,
    ) -> None:
        self.clock_source = ConformanceClock(real_pause=0.0)
        super().__init__(
            config or StepOperatorConfig(),
            name="memory",
            clock=self.clock_source.now,
            sleep=self.clock_source.sleep,
            policy=policy,
        )
        self.script = script or [JobStatus(state=JobState.RUNNING, provider_state="Running")]
        self.key = key
        self.store = MemoryStore()
        self.submitted: list[StepRunInfo] = []
        self.calls: list[str] = []
        self.cancelled: set[str] = set()

    @property
    def flavor(self) -> str:
        return "memory"

    @property
    def artifact_store(self) -> ArtifactStore:
        return self.store

    @property
    def artifact_root(self) -> str:
        return "memory://root"

    def price_key(self, info: StepRunInfo) -> PriceKey | None:
        return self.key

    def describe_request(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> dict[str, Any]:
        return {"name": info.job_name(), "max_runtime": info.max_runtime}

    def submit(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> JobHandle:
        self.calls.append("submit")
        self.submitted.append(info)
        return JobHandle(flavor="memory", job_id=info.job_name(), name=info.job_name())

    def get_status(self, handle: JobHandle) -> JobStatus:
        self.calls.append("get_status")
        if handle.job_id in self.cancelled:
            return JobStatus(state=JobState.CANCELLED, provider_state="Stopped")
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def cancel(self, handle: JobHandle) -> None:
        self.calls.append("cancel")
        self.cancelled.add(handle.job_id)

    def find_job(self, info: StepRunInfo) -> JobHandle | None:
        self.calls.append("find_job")
        return None

    def read_logs(self, handle: JobHandle, cursor: str | None) -> LogChunk:
        return LogChunk([], cursor)
