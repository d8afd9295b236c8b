"""End to end through the SDK against the executing emulator: the example's metrics, a remote
traceback, Ctrl-C leaving the job CANCELLED, and a relaunch adopting a crashed launcher's job."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import steplift
from steplift.config import create_operator
from steplift.errors import StepFailed
from steplift.models import JobHandle
from steplift.operator import LaunchObserver
from steplift.polling import PollPolicy
from steplift.testing import steps
from steplift.testing.emulation import wait_until
from steplift_vertex.emulator import VertexEmulator
from steplift_vertex.operator import VertexStepOperator

ROOT = Path(__file__).resolve().parents[3]
REAL_TIME_POLL = PollPolicy(initial=0.05, factor=1.5, maximum=0.2)

DRIVER = """
import sys
import steplift
from steplift.config import create_operator
from steplift.errors import StepCancelled
from dataclasses import replace
from steplift.polling import PollPolicy
from steplift.testing import steps
from steplift_vertex.operator import VertexStepOperator

fast = PollPolicy(initial=0.05, factor=1.5, maximum=0.2)
operator = create_operator("vertex", policy=replace(VertexStepOperator.launch_policy, poll=fast))
step = steplift.step(operator=operator)(steps.sleep_for).with_options(run=sys.argv[1])
try:
    print("RESULT", step(float(sys.argv[2])), flush=True)
except StepCancelled as cancelled:
    print("CANCELLED", cancelled.exit_code, cancelled.confirmed, flush=True)
    sys.exit(cancelled.exit_code)
"""


class Recorder(LaunchObserver):
    def __init__(self) -> None:
        self.jobs: list[tuple[JobHandle, bool]] = []
        self.lines: list[str] = []

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        self.jobs.append((handle, adopted))

    def on_log(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture
def configured(emulator: VertexEmulator, isolated_steplift: Path) -> VertexStepOperator:
    """steplift.toml in the working directory names the emulator; the operator it makes."""
    lines = ['default_operator = "vertex"', "[operators.vertex]"]
    lines += [f'{key} = "{value}"' for key, value in emulator.operator_config().items()]
    (isolated_steplift / "steplift.toml").write_text("\n".join(lines) + "\n")
    operator = create_operator(
        "vertex", policy=replace(VertexStepOperator.launch_policy, poll=REAL_TIME_POLL)
    )
    assert isinstance(operator, VertexStepOperator)
    return operator


def running_job(emulator: VertexEmulator) -> Any:
    jobs = [job for job in emulator.jobs.all_jobs() if job.state == "JOB_STATE_RUNNING"]
    return jobs[0] if jobs else None


def start_driver(run: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, run, str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_the_example_step_returns_its_metrics(
    configured: VertexStepOperator, emulator: VertexEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    example = importlib.import_module("train")
    try:
        recorder = Recorder()
        train = example.train.with_options(
            operator=configured, run="e2e-example", observer=recorder
        )
        metrics = train(5)
    finally:
        sys.modules.pop("train", None)
    assert set(metrics) == {"loss", "test_accuracy", "epochs"}
    assert metrics["epochs"] == 5.0 and 0.5 < metrics["test_accuracy"] <= 1.0
    assert any(line.startswith("epoch   5/5") for line in recorder.lines)
    assert emulator.submissions() == 1
    [job] = emulator.jobs.all_jobs()
    assert job.state == "JOB_STATE_SUCCEEDED"
    assert job.resource["labels"]["steplift-run"] == "e2e-example"


def test_a_failing_step_raises_step_failed_with_the_remote_traceback(
    configured: VertexStepOperator,
) -> None:
    failing = steplift.step(operator=configured)(steps.fail_with).with_options(run="e2e-fail")
    with pytest.raises(StepFailed) as caught:
        failing("vertex said no")
    failure = caught.value
    assert failure.remote_type == "builtins.RuntimeError"
    assert failure.remote_message == "vertex said no"
    assert failure.remote_traceback and "in fail_with" in failure.remote_traceback
    assert failure.provider_state == "FAILED"


def test_ctrl_c_leaves_the_emulated_job_cancelled(
    configured: VertexStepOperator, emulator: VertexEmulator
) -> None:
    driver = start_driver("e2e-ctrl-c", 60)
    try:
        assert wait_until(lambda: running_job(emulator) is not None, timeout=30)
        job = running_job(emulator)
        driver.send_signal(signal.SIGINT)
        output, _ = driver.communicate(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 130, output
    assert "CANCELLED 130 True" in output
    assert job.state == "JOB_STATE_CANCELLED"
    assert wait_until(lambda: not emulator.is_running(job.number), timeout=10)


def test_a_relaunch_after_a_crash_adopts_the_labelled_job(
    configured: VertexStepOperator, emulator: VertexEmulator
) -> None:
    driver = start_driver("e2e-crash", 1.5)
    try:
        assert wait_until(lambda: running_job(emulator) is not None, timeout=30)
    finally:
        driver.kill()  # the launcher dies; its job runs on
        driver.communicate()
    recorder = Recorder()
    relaunch = steplift.step(operator=configured)(steps.sleep_for).with_options(
        run="e2e-crash", observer=recorder
    )
    assert relaunch(1.5) == "woke up"
    [(handle, adopted)] = recorder.jobs
    assert adopted and emulator.submissions() == 1
    assert handle.job_id == emulator.jobs.all_jobs()[0].name


def test_the_demo_runs_the_example_on_the_emulator(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "steplift_vertex.emulator", "--port", "0", "--"),
            str(ROOT / "examples/train.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "metrics: {" in done.stdout and "'test_accuracy'" in done.stdout
    assert "1 Vertex AI job(s) ran" in done.stdout
