"""The launch loop written once in StepOperator, driven by a scripted in-memory backend."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from steplift.errors import StepCancelled, StepFailed, StepTimeout
from steplift.launch import LaunchPolicy
from steplift.models import JobHandle, JobStatus, LogChunk, StepRunInfo
from steplift.operator import LaunchObserver, StepOperator, StepOperatorConfig
from steplift.polling import PollPolicy
from steplift.states import FailureKind, JobState
from steplift.store import ArtifactStore
from steplift.testing import ConformanceClock
from steplift.testing.memory import MemoryStore


class ScriptedOperator(StepOperator):
    """Each get_status call takes the next state from a script; logs grow over time."""

    def __init__(self, script: list[JobStatus], **kwargs: Any) -> None:
        super().__init__(StepOperatorConfig(), **kwargs)
        self.script = list(script)
        self.calls: list[str] = []
        self.log: list[str] = []
        self.jobs: dict[str, JobHandle] = {}
        self.cancelled = False
        self.submit_hook: Any = None
        self.store = MemoryStore()

    @property
    def flavor(self) -> str:
        return "scripted"

    @property
    def artifact_store(self) -> ArtifactStore:
        return self.store

    @property
    def artifact_root(self) -> str:
        return "memory://"

    def submit(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> JobHandle:
        self.calls.append("submit")
        handle = JobHandle(flavor="scripted", job_id=info.job_name(), name=info.job_name())
        self.jobs[info.attempt_key] = handle
        if self.submit_hook:
            self.submit_hook()
        return handle

    def get_status(self, handle: JobHandle) -> JobStatus:
        self.calls.append("get_status")
        if self.cancelled:
            return JobStatus(state=JobState.CANCELLED, provider_state="Stopped")
        status = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        self.log.append(f"line {len(self.log) + 1}")
        return status

    def cancel(self, handle: JobHandle) -> None:
        self.calls.append("cancel")
        self.cancelled = True

    def find_job(self, info: StepRunInfo) -> JobHandle | None:
        self.calls.append("find_job")
        return self.jobs.get(info.attempt_key)

    def read_logs(self, handle: JobHandle, cursor: str | None) -> LogChunk:
        start = int(cursor or 0)
        return LogChunk(self.log[start:], str(len(self.log)))


class Recorder(LaunchObserver):
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.jobs: list[tuple[JobHandle, bool]] = []
        self.warnings: list[str] = []

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        self.jobs.append((handle, adopted))

    def on_log(self, line: str) -> None:
        self.lines.append(line)

    def on_warning(self, message: str) -> None:
        self.warnings.append(message)


INFO = StepRunInfo(pipeline="p", run="r", step="s", artifact_uri="memory://p/r/s/1")
RUNNING = JobStatus(state=JobState.RUNNING, provider_state="InProgress")
DONE = JobStatus(state=JobState.SUCCEEDED, provider_state="Completed")


def make(script: list[JobStatus], clock: ConformanceClock, **kwargs: Any) -> ScriptedOperator:
    return ScriptedOperator(script, clock=clock.now, sleep=clock.sleep, **kwargs)


@pytest.fixture
def clock() -> ConformanceClock:
    return ConformanceClock(real_pause=0)


def test_polls_fast_then_backs_off_to_the_cap(clock: ConformanceClock) -> None:
    operator = make(
        [RUNNING] * 12 + [DONE], clock, policy=LaunchPolicy(poll=PollPolicy(0.5, 2.0, 4.0))
    )
    operator.launch(INFO, ["cmd"])
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]


def test_streams_every_log_line_once_in_order(clock: ConformanceClock) -> None:
    operator = make([RUNNING] * 5 + [DONE], clock)
    recorder = Recorder()
    operator.launch(INFO, ["cmd"], observer=recorder)
    assert recorder.lines == [f"line {n}" for n in range(1, 7)]


def test_adopts_an_existing_job_instead_of_submitting(clock: ConformanceClock) -> None:
    operator = make([DONE], clock)
    operator.launch(INFO, ["cmd"])
    recorder = Recorder()
    operator.launch(INFO, ["cmd"], observer=recorder)
    assert operator.calls.count("submit") == 1
    assert recorder.jobs[0][1] is True


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        (FailureKind.QUOTA, StepFailed),
        (FailureKind.CAPACITY, StepFailed),
        (FailureKind.PREEMPTED, StepFailed),
        (FailureKind.IMAGE, StepFailed),
        (FailureKind.INFRASTRUCTURE, StepFailed),
        (FailureKind.TIMEOUT, StepTimeout),
    ],
)
def test_failure_kinds_become_typed_errors(
    clock: ConformanceClock, kind: FailureKind, error: type[Exception]
) -> None:
    failed = JobStatus(
        state=JobState.FAILED, provider_state="Failed", message="why", failure_kind=kind
    )
    operator = make([RUNNING, failed], clock)
    with pytest.raises(error) as caught:
        operator.launch(INFO, ["cmd"])
    if isinstance(caught.value, StepFailed):
        assert caught.value.failure_kind is kind
        assert caught.value.provider_state == "Failed"
    assert "why" in str(caught.value)


def test_deadline_cancels_and_raises_step_timeout(clock: ConformanceClock) -> None:
    operator = make([RUNNING], clock)
    info = INFO.model_copy(update={"max_runtime": 10.0})
    with pytest.raises(StepTimeout):
        operator.launch(info, ["cmd"])
    assert "cancel" in operator.calls
    assert clock.time - 1000.0 == pytest.approx(10.0)


def test_interrupt_during_submit_finds_the_job_and_cancels_it(clock: ConformanceClock) -> None:
    operator = make([RUNNING], clock)

    def interrupted() -> None:
        raise KeyboardInterrupt

    operator.submit_hook = interrupted
    with pytest.raises(StepCancelled) as caught:
        operator.launch(INFO, ["cmd"])
    assert operator.calls[:3] == ["find_job", "submit", "find_job"]
    assert "cancel" in operator.calls
    assert caught.value.exit_code == 130


def test_unconfirmed_cancel_gives_up_within_its_bound(clock: ConformanceClock) -> None:
    class Stubborn(ScriptedOperator):
        def cancel(self, handle: JobHandle) -> None:
            self.calls.append("cancel")  # the provider never confirms

    operator = Stubborn([RUNNING], clock=clock.now, sleep=clock.sleep)
    recorder = Recorder()
    info = INFO.model_copy(update={"max_runtime": 5.0})
    with pytest.raises(StepTimeout, match="asked to stop"):
        operator.launch(info, ["cmd"], observer=recorder)
    assert any("did not confirm" in warning for warning in recorder.warnings)
    assert clock.time - 1000.0 <= 5.0 + operator.policy.cancel_timeout + 1


def test_a_second_interrupt_detaches_with_instructions(clock: ConformanceClock) -> None:
    presses = itertools.count()

    class Impatient(ScriptedOperator):
        def get_status(self, handle: JobHandle) -> JobStatus:
            if "cancel" in self.calls or next(presses) == 2:
                raise KeyboardInterrupt
            return RUNNING

    operator = Impatient([RUNNING], clock=clock.now, sleep=clock.sleep)
    with pytest.raises(StepCancelled) as caught:
        operator.launch(INFO, ["cmd"])
    assert not caught.value.confirmed
    assert "steplift status r" in str(caught.value) and "steplift cancel r" in str(caught.value)


def test_a_failing_log_read_does_not_lose_the_job(clock: ConformanceClock) -> None:
    class NoLogs(ScriptedOperator):
        def read_logs(self, handle: JobHandle, cursor: str | None) -> LogChunk:
            raise OSError("log service down")

    operator = NoLogs([RUNNING, DONE], clock=clock.now, sleep=clock.sleep)
    recorder = Recorder()
    operator.launch(INFO, ["cmd"], observer=recorder)
    assert recorder.warnings and "log service down" in recorder.warnings[0]


def test_poll_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="initial"):
        PollPolicy(initial=0)
    with pytest.raises(ValueError, match="maximum"):
        PollPolicy(initial=2, maximum=1)


class Flaky(Exception):
    """A transient error, as a throttled or unavailable control plane gives."""


class FlakyOperator(ScriptedOperator):
    """Fails the first ``failures`` status calls (and, if asked, the create after it went in)."""

    def __init__(self, script: list[JobStatus], failures: int = 0, **kwargs: Any) -> None:
        super().__init__(script, **kwargs)
        self.failures = failures
        self.lose_create_response = False

    def is_transient_error(self, error: Exception) -> bool:
        return isinstance(error, Flaky)

    def submit(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> JobHandle:
        handle = super().submit(info, entrypoint_command, environment)
        if self.lose_create_response:
            self.lose_create_response = False
            raise Flaky("connection reset after the create went through")
        return handle

    def get_status(self, handle: JobHandle) -> JobStatus:
        if self.failures:
            self.failures -= 1
            self.calls.append("get_status!")
            raise Flaky("Rate exceeded")
        return super().get_status(handle)


def test_a_receipt_is_written_and_adopted_from(clock: ConformanceClock) -> None:
    operator = make([DONE], clock)
    operator.launch(INFO, ["cmd"])
    receipt = JobHandle.model_validate_json(operator.store.get("memory://p/r/s/1/receipt.json"))
    assert receipt == operator.jobs[INFO.attempt_key]
    operator.calls.clear()
    recorder = Recorder()
    operator.launch(INFO, ["cmd"], observer=recorder)
    assert recorder.jobs == [(receipt, True)]
    assert "find_job" not in operator.calls and "submit" not in operator.calls


def test_a_throttling_storm_slows_polling_instead_of_failing(clock: ConformanceClock) -> None:
    operator = FlakyOperator([RUNNING, DONE], failures=6, clock=clock.now, sleep=clock.sleep)
    recorder = Recorder()
    operator.launch(INFO, ["cmd"], observer=recorder)
    assert operator.calls.count("get_status!") == 6
    assert len(recorder.warnings) == 6 and "Rate exceeded" in recorder.warnings[0]


def test_the_transient_budget_is_bounded(clock: ConformanceClock) -> None:
    from steplift.errors import LostContact, StepFailed

    operator = FlakyOperator([RUNNING], failures=10**6, clock=clock.now, sleep=clock.sleep)
    with pytest.raises(LostContact) as caught:
        operator.launch(INFO, ["cmd"])
    # Named, with how to check or stop it; not a StepFailed, so no retry beside it.
    assert caught.value.handle is not None and caught.value.handle.name in str(caught.value)
    assert "steplift status r" in str(caught.value) and "steplift cancel r" in str(caught.value)
    assert isinstance(caught.value.__cause__, Flaky)
    assert not isinstance(caught.value, StepFailed)
    assert "cancel" not in operator.calls
    spent = clock.time - 1000.0
    assert (
        operator.policy.transient_budget
        <= spent
        <= operator.policy.transient_budget + operator.policy.poll.maximum
    )


def test_a_create_that_failed_transiently_is_checked_before_submitting_again(
    clock: ConformanceClock,
) -> None:
    operator = FlakyOperator([DONE], clock=clock.now, sleep=clock.sleep)
    operator.lose_create_response = True
    recorder = Recorder()
    operator.launch(INFO, ["cmd"], observer=recorder)
    assert operator.calls.count("submit") == 1
    assert operator.calls[:3] == ["find_job", "submit", "find_job"]
    assert recorder.jobs == [(operator.jobs[INFO.attempt_key], False)]


def test_a_job_stuck_in_the_queue_is_cancelled_with_the_reason(clock: ConformanceClock) -> None:
    queued = JobStatus(
        state=JobState.PENDING, provider_state="InProgress/Starting", message="Waiting for capacity"
    )
    operator = make([queued], clock)
    info = INFO.model_copy(update={"max_queue_time": 120.0})
    with pytest.raises(StepFailed) as caught:
        operator.launch(info, ["cmd"])
    assert caught.value.failure_kind is FailureKind.CAPACITY
    assert "Waiting for capacity" in str(caught.value) and "120" in str(caught.value)
    assert "cancel" in operator.calls


class TimedOperator(ScriptedOperator):
    """RUNNING until the virtual clock reaches ``finish``, then SUCCEEDED."""

    def __init__(self, finish: float, **kwargs: Any) -> None:
        super().__init__([RUNNING], **kwargs)
        self.finish = finish

    def get_status(self, handle: JobHandle) -> JobStatus:
        self.calls.append("get_status")
        return DONE if self.clock() >= self.finish else RUNNING


@pytest.mark.parametrize("signalled", [False, True])
def test_the_result_signal_cuts_the_completion_lag(
    clock: ConformanceClock, signalled: bool
) -> None:
    finish = 1000.0 + 100.0  # the step ends 100 s in, deep into the 60 s polling cap
    operator = TimedOperator(
        finish,
        clock=clock.now,
        sleep=clock.sleep,
        policy=LaunchPolicy(poll=PollPolicy(1.0, 2.0, 60.0)),
    )
    signal = (lambda: clock.now() >= finish) if signalled else None
    operator.launch(INFO, ["cmd"], done_signal=signal)
    lag = clock.now() - finish
    if signalled:
        assert lag <= operator.policy.signal_interval + operator.policy.poll.initial
    else:
        assert lag > 10  # the backoff had grown to tens of seconds
    assert operator.calls.count("get_status") <= 10  # the signal adds no status calls


def test_result_signal_checks_are_shared_by_the_launches_in_flight(
    clock: ConformanceClock,
) -> None:
    import threading

    def checks(signal_rate: float) -> tuple[int, float, set[str]]:
        start = clock.now()
        operator = TimedOperator(
            start + 100.0,
            clock=clock.now,
            sleep=clock.sleep,
            policy=LaunchPolicy(poll=PollPolicy(1, 2, 60), signal_rate=signal_rate),
        )
        made: list[str] = []

        def signal() -> bool:
            made.append(threading.current_thread().name)
            return False

        operator.launch(INFO, ["cmd"], done_signal=signal)
        return len(made), clock.now() - start, set(made)

    every_second, elapsed, threads = checks(LaunchPolicy().signal_rate)
    assert every_second >= elapsed / 2  # one launch in flight: about one check a second
    assert all(name.startswith("steplift-") for name in threads)  # on the call pool
    # A rate of one check per 4 s shared by the one launch in flight: a quarter as many.
    slow, elapsed, _ = checks(0.25)
    assert slow <= elapsed / 4 + 2


class LogCountingOperator(TimedOperator):
    def __init__(self, finish: float, **kwargs: Any) -> None:
        super().__init__(finish, **kwargs)
        self.log_reads = 0

    def get_status(self, handle: JobHandle) -> JobStatus:
        self.log.append(f"line {len(self.log) + 1}")  # the job prints between polls
        return super().get_status(handle)

    def read_logs(self, handle: JobHandle, cursor: str | None) -> LogChunk:
        self.log_reads += 1
        return super().read_logs(handle, cursor)


@pytest.mark.parametrize("log_rate", [LaunchPolicy().log_rate, 0.05])
def test_log_reads_are_shared_by_the_launches_in_flight(
    clock: ConformanceClock, log_rate: float
) -> None:
    start = clock.now()
    operator = LogCountingOperator(
        start + 300.0,
        clock=clock.now,
        sleep=clock.sleep,
        policy=LaunchPolicy(poll=PollPolicy(1, 2, 10), log_rate=log_rate),
    )
    recorder = Recorder()
    operator.launch(INFO, ["cmd"], observer=recorder)
    polls = operator.calls.count("get_status")
    if log_rate == LaunchPolicy().log_rate:
        assert operator.log_reads == polls  # one launch: its logs after every poll
    else:  # one read per 20 s for the one launch in flight, and one at the end
        assert operator.log_reads <= 300 / 20 + 2 < polls
    assert recorder.lines == operator.log and len(operator.log) == polls  # nothing lost


def test_the_call_pool_lives_while_launches_are_in_flight(clock: ConformanceClock) -> None:
    import threading

    operator = PooledOperator([RUNNING, DONE], clock=clock.now, sleep=clock.sleep)
    operator.launch(INFO, ["cmd"])
    assert operator.threads  # the launch's calls went through the pool
    pool_threads = [t for t in threading.enumerate() if t.name.startswith("steplift-")]
    for thread in pool_threads:
        thread.join(5.0)  # shut down when the launch ended: they exit once idle
    assert not any(thread.is_alive() for thread in pool_threads)
    # Outside any launch (e.g. `steplift cancel`), a call is made in place.
    assert operator._launch_engine.control.call(lambda: threading.current_thread().name) == (
        threading.current_thread().name
    )


def test_a_failing_signal_is_ignored(clock: ConformanceClock) -> None:
    def broken() -> bool:
        raise OSError("store unreachable")

    operator = TimedOperator(1000.0 + 30.0, clock=clock.now, sleep=clock.sleep)
    operator.launch(INFO, ["cmd"], done_signal=broken)
    assert operator.calls.count("get_status") < 20


def test_ctrl_c_during_warm_up_waits_for_it_to_finish(clock: ConformanceClock) -> None:
    import os
    import signal

    class SlowImport(ScriptedOperator):
        warmed = False

        def warm_up(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C lands in the middle of the "import"
            self.warmed = True

    operator = SlowImport([RUNNING], clock=clock.now, sleep=clock.sleep)
    with pytest.raises(StepCancelled) as caught:
        operator.launch(INFO, ["cmd"])
    assert operator.warmed
    assert "before a job was submitted" in str(caught.value)
    assert operator.calls == ["find_job"]  # the interrupt path still checked for a job
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_flavor_without_multi_node_refuses_it_before_any_call(clock: ConformanceClock) -> None:
    from steplift.errors import ConfigError
    from steplift.launcher import StepLauncher, StepOptions, StepSpec
    from steplift.models import Resources
    from steplift.runs import Run, RunIndex
    from steplift.testing import steps

    operator = make([DONE], clock)
    assert not operator.multi_node
    wide = StepOptions(resources=Resources(nodes=2))
    with pytest.raises(ConfigError) as caught:
        operator.launch(INFO.model_copy(update={"resources": Resources(nodes=2)}), ["cmd"])
    assert caught.value.field == "nodes" and "single-node" in str(caught.value)
    launcher = StepLauncher(operator, index=RunIndex())
    spec = StepSpec.for_function(steps.add_and_log, (1, 2), {})
    with pytest.raises(ConfigError):
        launcher.run(spec, run=Run("wide"), step="add", options=wide)
    assert operator.calls == [] and operator.store.blobs == {}


class PooledOperator(ScriptedOperator):
    """Provider calls on the operator's pool; records which thread made each."""

    launch_policy = LaunchPolicy(call_workers=2)

    def __init__(self, script: list[JobStatus], **kwargs: Any) -> None:
        super().__init__(script, **kwargs)
        self.threads: set[str] = set()

    def get_status(self, handle: JobHandle) -> JobStatus:
        import threading

        self.threads.add(threading.current_thread().name)
        return super().get_status(handle)

    def find_job(self, info: StepRunInfo) -> JobHandle | None:
        import threading

        self.threads.add(threading.current_thread().name)
        return super().find_job(info)


def test_provider_calls_can_run_on_the_operators_small_pool(clock: ConformanceClock) -> None:
    import threading

    operator = PooledOperator([RUNNING, DONE], clock=clock.now, sleep=clock.sleep)
    recorder = Recorder()
    operator.launch(INFO, ["cmd"], observer=recorder)
    assert operator.calls[:2] == ["find_job", "submit"] and "get_status" in operator.calls
    assert operator.threads and all(name.startswith("steplift-") for name in operator.threads)
    assert threading.current_thread().name not in operator.threads
    assert recorder.lines  # logs were read through the pool too

    interrupted = PooledOperator([RUNNING], clock=clock.now, sleep=clock.sleep)

    def press() -> None:
        raise KeyboardInterrupt  # lands in the pool's thread, reaches the launch

    interrupted.submit_hook = press
    with pytest.raises(StepCancelled) as caught:
        interrupted.launch(INFO, ["cmd"])
    assert interrupted.calls[:3] == ["find_job", "submit", "find_job"]
    assert "cancel" in interrupted.calls and caught.value.exit_code == 130


def test_lookup_waits_out_transient_errors(clock: ConformanceClock) -> None:
    class Throttled(Exception):
        pass

    class Flaky(ScriptedOperator):
        failures = 2

        def is_transient_error(self, error: Exception) -> bool:
            return isinstance(error, Throttled)

        def find_job(self, info: StepRunInfo) -> JobHandle | None:
            if self.failures:
                self.failures -= 1
                raise Throttled("rate limit exceeded")
            return super().find_job(info)

    operator = Flaky([DONE], clock=clock.now, sleep=clock.sleep)
    assert operator.lookup(INFO) is None  # two throttled tries, then "no such job"
    operator.launch(INFO, ["cmd"])
    operator.failures = 1
    recorder = Recorder()
    found = operator.lookup(INFO, recorder)
    assert found is not None and found[1].state is JobState.SUCCEEDED
    assert len(recorder.warnings) == 1 and "rate limit" in recorder.warnings[0]


def test_a_flavors_own_attributes_cannot_replace_the_engines_state(
    clock: ConformanceClock,
) -> None:
    """The engine's pool, batcher and locks live in one name-mangled object: a flavor that
    names its attributes as the engine's once were (Vertex's ``self._lock``) changes nothing."""
    import threading

    class Crowded(PooledOperator):
        launch_policy = LaunchPolicy(call_workers=2, batched_status=True)

        def __init__(self, script: list[JobStatus], **kwargs: Any) -> None:
            super().__init__(script, **kwargs)
            self._lock = "the flavor's own"  # not even a lock: the engine must not use it
            self._pool = self._batcher = self._engine = None
            self._in_flight = -1

    operator = Crowded([RUNNING, DONE], clock=clock.now, sleep=clock.sleep)
    operator.launch(INFO, ["cmd"])
    assert operator.threads and all(name.startswith("steplift-") for name in operator.threads)
    assert threading.current_thread().name not in operator.threads
    assert operator._launch_engine.control.status_rounds >= 1  # status went through the batch
    with pytest.raises(AttributeError):
        operator._launch_engine = None  # type: ignore[misc]
