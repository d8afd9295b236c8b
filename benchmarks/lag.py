"""Completion lag and control-plane calls per job-minute, steplift vs the peers' polling loops.

    python -m benchmarks.lag --flavor sagemaker --runs 5 --minutes 30

Runs in its own process against the flavor's emulator in *scripted* mode. Time is simulated
(:class:`benchlib.SimulatedTime`): every sleep is skipped, every HTTP call to the emulator is
real and its real duration counts. The job "runs" for ``minutes`` plus a run-dependent offset
(so the end falls at a different phase of each poll loop); when that simulated moment comes,
the harness does what the step's end does on the cloud: it writes the step's result record to
the real artifact store (S3 on moto, the GCS emulator, Azurite) and scripts the emulated job
to its succeeded status, which the provider then reports from its next status call (no
provider-side delay is modelled between the two).

steplift is measured through ``StepLauncher.run_attempt`` (so its ``done_signal`` is the real
"is the result record stored?" check); the peers' loops are reproduced below around the same
operator's ``get_status`` (one DescribeTrainingJob / customJobs.get / jobs.get, as theirs).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steplift.execution import ResultRecord, result_uri
from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.models import JobHandle, StepRunInfo
from steplift.operator import LaunchObserver, StepOperator
from steplift.runs import Run, RunIndex

from .backends import Backend, running_backend
from .benchlib import Figure, SimulatedTime, print_result, progress

StatusCall = Callable[[], bool]
"""Asks the provider once; True when the job is finished."""
PeerLoop = Callable[[StatusCall, SimulatedTime], None]


# -- the peers' loops, as their sources describe them ------------------------------------------


def sagemaker_remote(finished: StatusCall, clock: SimulatedTime) -> None:
    """SageMaker SDK ``@remote`` / ``logs_for_job(wait=True)``: a 10 s loop that describes the
    job at most every 30 s, and sleeps one more tick after it saw the job end."""
    done = finished()
    last_describe = clock.now()
    while True:
        clock.sleep(10)
        if done:
            return
        if clock.now() - last_describe >= 30:
            done = finished()
            last_describe = clock.now()


def aiplatform_custom_job(finished: StatusCall, clock: SimulatedTime) -> None:
    """google-cloud-aiplatform ``CustomJob._block_until_complete``: get, sleep 5 s, repeat."""
    while not finished():
        clock.sleep(5)


def zenml_backoff(finished: StatusCall, clock: SimulatedTime) -> None:
    """ZenML step operators' wait: doubling delays from 1 s, capped at 16 s."""
    delay = 1.0
    while not finished():
        clock.sleep(delay)
        delay = min(delay * 2, 16.0)


def airflow_check_interval(finished: StatusCall, clock: SimulatedTime) -> None:
    """Airflow's SageMaker/Vertex/Azure ML operators: sleep ``check_interval`` (30 s), check."""
    while True:
        clock.sleep(30)
        if finished():
            return


PEERS: dict[str, dict[str, PeerLoop]] = {
    "sagemaker": {
        "SageMaker SDK @remote": sagemaker_remote,
        "ZenML": zenml_backoff,
        "Airflow": airflow_check_interval,
    },
    "vertex": {
        "aiplatform CustomJob": aiplatform_custom_job,
        "ZenML": zenml_backoff,
        "Airflow": airflow_check_interval,
    },
    "azureml": {"ZenML": zenml_backoff, "Airflow": airflow_check_interval},
}


# -- counting --------------------------------------------------------------------------------


@dataclass
class CallLog:
    """Simulated times of the operator's calls, by kind."""

    clock: SimulatedTime
    calls: dict[str, list[float]] = field(default_factory=dict)

    def wrap(self, kind: str, call: Callable[..., Any]) -> Callable[..., Any]:
        """``call``, recording the simulated time of each use under ``kind``."""

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.calls.setdefault(kind, []).append(self.clock.now())
            return call(*args, **kwargs)

        return recorded

    def instrument(self, operator: StepOperator) -> None:
        """Count the operator's provider calls, log reads and store existence checks."""
        for kind, name in (
            ("control", "submit"),
            ("control", "find_job"),
            ("control", "get_status"),
            ("control", "cancel"),
            ("logs", "read_logs"),
        ):
            setattr(operator, name, self.wrap(kind, getattr(operator, name)))
        store = operator.artifact_store
        store.exists = self.wrap("store_check", store.exists)  # type: ignore[method-assign]

    def per_minute(self, kind: str, start: float, end: float) -> float:
        """Calls of ``kind`` in (start, end], per minute."""
        count = sum(1 for moment in self.calls.get(kind, []) if start < moment <= end)
        return count / ((end - start) / 60.0)

    def shortest_gap(self, kind: str, after: float, end: float) -> float:
        """The shortest wait before a call of ``kind`` made in (after, end], counted from the
        call before it (which may fall before ``after``)."""
        moments = sorted(moment for moment in self.calls.get(kind, []) if moment <= end)
        gaps = [
            later - earlier
            for earlier, later in zip(moments, moments[1:], strict=False)
            if later > after
        ]
        return min(gaps, default=end - after)

    def total_per_minute(self, kind: str, start: float, end: float) -> float:
        """Every call of ``kind`` (before ``start`` too), per minute of (start, end]."""
        return len(self.calls.get(kind, [])) / ((end - start) / 60.0)


@dataclass
class Sample:
    """One measured job."""

    lag: float
    calls_per_minute: float
    calls_per_minute_after_first: float
    shortest_gap_after_first: float
    """Seconds between the closest two status calls after the first minute, before the end."""
    store_checks_per_minute: float = 0.0
    log_reads_per_minute: float = 0.0


# -- steplift --------------------------------------------------------------------------------


class _EndScheduler(LaunchObserver):
    """Schedules the step's end ``seconds`` after its job was submitted."""

    def __init__(self, clock: SimulatedTime, seconds: float, end: Callable[[JobHandle], None]):
        self.clock = clock
        self.seconds = seconds
        self.end = end
        self.started: float | None = None
        self.ends_at: float | None = None

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        self.started = self.clock.now()
        self.ends_at = self.started + self.seconds
        self.clock.at(self.ends_at, lambda: self.end(handle))


def steplift_sample(backend: Backend, seconds: float, run_name: str, index: RunIndex) -> Sample:
    """One job through ``StepLauncher.run_attempt`` with the flavor's default poll policy."""
    clock = SimulatedTime()
    operator = backend.operator(clock=clock.now, sleep=clock.sleep)
    log = CallLog(clock)
    log.instrument(operator)
    run = Run(run_name)
    info: StepRunInfo = StepLauncher(operator).step_info(
        run=run, step="train", attempt=1, options=StepOptions()
    )

    def end_step(handle: JobHandle) -> None:
        record = ResultRecord(status="succeeded", exit_code=0)
        operator.artifact_store.put(
            result_uri(info.artifact_uri), record.model_dump_json().encode()
        )
        backend.finish(handle.job_id)

    scheduler = _EndScheduler(clock, seconds, end_step)
    returned: list[float] = []
    launch = operator.launch

    def timed_launch(*args: Any, **kwargs: Any) -> None:
        launch(*args, **kwargs)
        returned.append(clock.now())

    operator.launch = timed_launch  # type: ignore[method-assign]
    launcher = StepLauncher(operator, observer=scheduler, index=index)
    spec = StepSpec.for_command(["python", "-c", "pass"])
    launcher.run_attempt(spec, run=run, step="train", attempt=1, options=StepOptions())
    assert scheduler.started is not None and scheduler.ends_at is not None and returned
    start, ends_at, end = scheduler.started, scheduler.ends_at, returned[0]
    return Sample(
        lag=end - ends_at,
        calls_per_minute=log.total_per_minute("control", start, end),
        calls_per_minute_after_first=log.per_minute("control", start + 60, ends_at),
        shortest_gap_after_first=log.shortest_gap("control", start + 60, ends_at),
        store_checks_per_minute=log.per_minute("store_check", start + 60, ends_at),
        log_reads_per_minute=log.per_minute("logs", start + 60, ends_at),
    )


# -- a peer ----------------------------------------------------------------------------------


def peer_sample(backend: Backend, loop: PeerLoop, seconds: float, run_name: str) -> Sample:
    """One job created by the operator's ``submit`` and waited for by a peer's loop."""
    clock = SimulatedTime()
    operator = backend.operator(clock=clock.now, sleep=clock.sleep)
    log = CallLog(clock)
    log.instrument(operator)
    launcher = StepLauncher(operator)
    info = launcher.step_info(run=Run(run_name), step="train", attempt=1, options=StepOptions())
    handle = operator.submit(info, ["python", "-c", "pass"], operator.job_environment(info))
    start = clock.now()
    ends_at = start + seconds
    clock.at(ends_at, lambda: backend.finish(handle.job_id))
    loop(lambda: operator.get_status(handle).state.is_terminal, clock)
    end = clock.now()
    return Sample(
        lag=end - ends_at,
        calls_per_minute=log.total_per_minute("control", start, end),  # with the create
        calls_per_minute_after_first=log.per_minute("control", start + 60, ends_at),
        shortest_gap_after_first=log.shortest_gap("control", start + 60, ends_at),
    )


# -- the benchmark ---------------------------------------------------------------------------


def summarise(samples: list[Sample]) -> dict[str, Any]:
    """Figures of a list of samples."""
    result: dict[str, Any] = {}
    for name in Sample.__dataclass_fields__:
        result[name] = Figure.of([getattr(sample, name) for sample in samples]).__dict__
    return result


def measure(flavor: str, runs: int, minutes: float, seed: int = 7) -> dict[str, Any]:
    """steplift and every peer loop of ``flavor``, ``runs`` jobs each, same job lengths."""
    offsets = [random.Random(f"{seed}:{run}").uniform(0, 30) for run in range(runs)]
    lengths = [minutes * 60 + offset for offset in offsets]
    results: dict[str, Any] = {}
    with running_backend(flavor) as backend, tempfile.TemporaryDirectory() as folder:
        index = RunIndex(Path(folder) / "runs")
        samples = [
            steplift_sample(backend, length, f"lag-steplift-{run}", index)
            for run, length in enumerate(lengths)
        ]
        results["steplift"] = summarise(samples)
        progress(f"lag {flavor}: steplift median {results['steplift']['lag']['median']:.2f} s")
        for number, (peer, loop) in enumerate(PEERS[flavor].items()):
            samples = [
                peer_sample(backend, loop, length, f"lag-peer{number}-{run}")
                for run, length in enumerate(lengths)
            ]
            results[peer] = summarise(samples)
            progress(f"lag {flavor}: {peer} median {results[peer]['lag']['median']:.2f} s")
    return {"flavor": flavor, "runs": runs, "minutes": minutes, "loops": results}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavor", required=True, choices=sorted(PEERS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args(argv)
    print_result(measure(args.flavor, args.runs, args.minutes))


if __name__ == "__main__":
    main(sys.argv[1:])
