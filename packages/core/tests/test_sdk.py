"""The SDK: @step, submit handles, runs, adoption across launches, retries."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import steplift
from steplift.errors import ConfigError, StepCancelled, StepFailed
from steplift.runs import RunIndex
from steplift.states import JobState
from steplift.testing import steps


@steplift.step
def double(x: int) -> int:
    print(f"doubling {x}", flush=True)
    return 2 * x


@steplift.step(retries=1)
def dies_once() -> str:
    # The first attempt is killed the way the OOM killer would; the retry succeeds.
    if os.environ["STEPLIFT_JOB_ATTEMPT"] == "1":
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


@steplift.step
def always_fails() -> None:
    raise KeyError("missing")


def test_calling_a_step_runs_it_as_a_job(capsys: pytest.CaptureFixture[str]) -> None:
    with steplift.run("sdk-call") as run:
        assert double(21) == 42
        assert double(5) == 10
    out, err = capsys.readouterr()
    assert "doubling 21" in out and "doubling 5" in out
    assert "submitted local job" in err
    steps_seen = [(r.step, r.state) for r in RunIndex().steps(run.name)]
    assert steps_seen == [("double", "SUCCEEDED"), ("double_2", "SUCCEEDED")]


def test_a_step_keeps_the_function_metadata() -> None:
    assert double.__name__ == "double"
    assert double.__steplift_function__(4) == 8  # the plain function, not a job


def test_remote_exception_arrives_as_step_failed() -> None:
    with steplift.run("sdk-fail"), pytest.raises(StepFailed) as caught:
        always_fails()
    assert caught.value.remote_type == "builtins.KeyError"
    assert "always_fails" in (caught.value.remote_traceback or "")


def test_transient_failures_are_retried_as_new_attempts() -> None:
    with steplift.run("sdk-retry") as run:
        assert dies_once() == "survived"
    records = RunIndex().steps(run.name)
    assert [(r.attempt, r.state) for r in records] == [(1, "FAILED"), (2, "SUCCEEDED")]


def test_relaunching_a_run_returns_stored_results_without_new_jobs(isolated_steplift: Path) -> None:
    with steplift.run("again"):
        assert double(3) == 6
    jobs = list((isolated_steplift / ".steplift" / "local" / "jobs").iterdir())
    with steplift.run("again"):
        assert double(3) == 6
    assert list((isolated_steplift / ".steplift" / "local" / "jobs").iterdir()) == jobs


def test_submit_returns_a_handle() -> None:
    with steplift.run("sdk-submit"):
        handle = steplift.submit(steps.add_and_log, 1, 2)
        assert handle.wait(timeout=60) == 3
    assert handle.done()
    assert "adding 1 and 2" in handle.logs()
    assert handle.job is not None
    status = handle.status()
    assert status is not None and status.state is JobState.SUCCEEDED


def test_submit_then_cancel() -> None:
    with steplift.run("sdk-cancel"):
        handle = steplift.submit(steps.sleep_for, 60)
        handle.cancel()
        with pytest.raises(StepCancelled):
            handle.wait(timeout=60)
    status = handle.status()
    assert status is None or status.state is JobState.CANCELLED


def test_run_command_returns_zero_or_raises() -> None:
    assert steplift.run_command(["python", "-c", "print('hi')"], run="cmds") == 0
    with pytest.raises(StepFailed, match="code 7"):
        steplift.run_command(["python", "-c", "raise SystemExit(7)"], run="cmds")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_runtime": -1}, "max_runtime"),
        ({"retries": -2}, "retries"),
        ({"resources": {"gpu": "A10G:0"}}, "resources.gpu"),
        ({"resources": {"gpus": 1}}, "resources.gpus"),
    ],
)
def test_bad_step_options_are_refused_up_front(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        steplift.step(**kwargs)  # type: ignore[call-overload]
    assert caught.value.field == field


def test_bad_run_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="run names"), steplift.run("no spaces allowed"):
        pass
