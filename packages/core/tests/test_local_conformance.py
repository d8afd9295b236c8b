"""The local flavor against the whole conformance suite."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from steplift.flavors.local import FLAVOR, LocalStepOperator
from steplift.models import JobHandle, StepRunInfo
from steplift.operator import StepOperator
from steplift.states import FailureKind
from steplift.testing import BadInputCase, ConformanceClock, StepOperatorConformance


class LocalBackend:
    """Looks at the local flavor's job folders and processes."""

    def __init__(self, operator: LocalStepOperator) -> None:
        self.operator = operator

    def submissions(self) -> int:
        jobs = self.operator.jobs_dir
        return (
            sum(1 for path in jobs.iterdir() if not path.name.startswith("."))
            if jobs.is_dir()
            else 0
        )

    def api_calls(self) -> int:
        # The local "control plane" is the jobs folder: every call that creates or changes a
        # job leaves a file there.
        jobs = self.operator.jobs_dir
        return sum(1 for _ in jobs.rglob("*")) if jobs.is_dir() else 0

    def fail_infrastructure(self, operator: StepOperator, handle: JobHandle) -> FailureKind:
        # What the OOM killer does: SIGKILL the job's process.
        state = json.loads((Path(handle.extra["dir"]) / "state.json").read_text())
        os.kill(int(state["pid"]), signal.SIGKILL)
        return FailureKind.INFRASTRUCTURE

    def is_running(self, operator: StepOperator, handle: JobHandle) -> bool:
        assert isinstance(operator, LocalStepOperator)
        return bool(operator.running_processes(handle))

    def lose_node(self, operator: StepOperator, handle: JobHandle, node: int) -> FailureKind:
        # The machine of that node dies: SIGKILL its process group.
        state = json.loads((Path(handle.extra["dir"]) / "state.json").read_text())
        os.killpg(int(state["pids"][node]), signal.SIGKILL)
        return FailureKind.INFRASTRUCTURE

    def storm(self, throttle_rate: float, error_rate: float) -> bool:
        return False  # no control plane: job folders and processes on this machine

    def operator_with_secret(
        self, operator: StepOperator, name: str, value: str
    ) -> StepOperator | None:
        return None  # no secret store

    def recorded_text(self) -> str:
        jobs = self.operator.jobs_dir
        return "".join(
            path.read_text(errors="replace") for path in jobs.rglob("*") if path.is_file()
        )


class TestLocalConformance(StepOperatorConformance):
    flavor = "local"

    @pytest.fixture
    def operator(self, clock: ConformanceClock, tmp_path: Path) -> LocalStepOperator:
        flavor = FLAVOR
        config = flavor.validate_config({"root": str(tmp_path / "local")})
        operator = flavor.create(config, name="local", clock=clock.now, sleep=clock.sleep)
        assert isinstance(operator, LocalStepOperator)
        return operator

    @pytest.fixture
    def backend(self, operator: LocalStepOperator) -> LocalBackend:
        return LocalBackend(operator)

    @pytest.fixture
    def invalid_configs(self) -> list[dict[str, Any]]:
        return [
            {"root": ""},
            {"rooot": "/tmp/x"},
            {"max_runtime": -5},
            {"environment": {"A": 1}},
            {"working_dir": 3},
        ]

    @pytest.fixture
    def bad_input(self, tmp_path: Path) -> BadInputCase:
        root = tmp_path / "bad-input"

        def build(operator: StepOperator, info: StepRunInfo) -> object:
            # No provider request here: what a job gets besides its command is its
            # environment and checkpoint folder (submit would start the job).
            return operator.job_environment(info), operator.checkpoint_dir(info)

        return BadInputCase(
            good={"root": str(root)},
            fields=["working_dir", "environment", "max_runtime", "max_queue_time", "secrets"],
            gpus=["T4:1", "A100:8", None],
            example_gpus=["A100:8"],
            artifact_uri=str(root / "artifacts" / "p" / "r" / "s" / "1"),
            build=build,
            # The local "control plane" is the jobs folder (see LocalBackend.api_calls).
            requests=lambda: sum(1 for _ in (root / "jobs").rglob("*")),
        )
