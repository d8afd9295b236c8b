"""The conformance suite: the behaviour every flavor must show, as a pytest mixin.

A flavor opts in with one subclass and three fixtures::

    class TestLocal(StepOperatorConformance):
        flavor = "local"

        @pytest.fixture
        def operator(self, clock, tmp_path): ...       # built with clock.now / clock.sleep
        @pytest.fixture
        def backend(self, operator): ...               # a ConformanceBackend
        @pytest.fixture
        def invalid_configs(self): ...                 # raw configs the flavor must refuse

Standard tests may not be dropped or overridden; one that a flavor cannot pass is overridden
with ``@pytest.mark.xfail(strict=True, reason=...)`` and the guard test checks exactly that.

The multi-node scenarios run on every flavor whose operator declares ``multi_node = True``
(and are skipped, saying so, on the others): a real PyTorch gloo rendezvous across two nodes,
ranks and processes per node, one failing node, and an interrupt that must stop every node.
Each node's log lines reach the observer prefixed ``[node R] ``.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Protocol

import pytest

from steplift.errors import ConfigError, StepCancelled, StepFailed, StepTimeout
from steplift.interrupts import Terminated
from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.models import JobHandle, JobStatus, Resources, StepRunInfo
from steplift.operator import RECEIPT, LaunchObserver, StepOperator
from steplift.registry import get_flavor
from steplift.runs import Run, RunIndex
from steplift.states import FailureKind, JobState
from steplift.store import join_uri
from steplift.testing import steps
from steplift.testing.emulation import Emulator, Faults

_run_numbers = itertools.count(1)


class ConformanceClock:
    """A virtual clock: ``sleep`` advances it at once, with an optional short real pause.

    Executing backends (real subprocesses) need a little real time to make progress between
    polls; ``real_pause`` caps that per sleep, so no test ever sleeps for real seconds.
    """

    def __init__(self, real_pause: float = 0.02) -> None:
        self.time = 1_000.0
        self.real_pause = real_pause
        self.sleeps: list[float] = []

    def now(self) -> float:
        """The virtual time."""
        return self.time

    def sleep(self, seconds: float) -> None:
        """Advance the virtual time by ``seconds``."""
        self.sleeps.append(seconds)
        self.time += seconds
        if self.real_pause:
            time.sleep(min(seconds, self.real_pause))


class LockstepClock:
    """Virtual time shared by concurrent launches, as a discrete-event simulation: it moves
    on only while every launch sleeps, straight to the earliest wake-up, so launches on the
    same poll schedule wake at the same moment, as real ones started together do.

    Each launching thread calls :meth:`leave` when its launch ended.
    """

    def __init__(self, launches: int, stall_timeout: float = 30.0) -> None:
        self.time = 0.0
        self.sleeps = 0
        self.moments = 1
        """Distinct virtual times at which launches woke (the start included)."""
        self._active = launches
        self._wakes: list[float] = []
        self._changed = threading.Condition()
        self._stall_timeout = stall_timeout

    def now(self) -> float:
        with self._changed:
            return self.time

    def sleep(self, seconds: float) -> None:
        with self._changed:
            self.sleeps += 1
            wake = self.time + seconds
            self._wakes.append(wake)
            self._advance()
            woke = self._changed.wait_for(lambda: self.time >= wake, self._stall_timeout)
            self._wakes.remove(wake)
        assert woke, "the virtual clock stalled"

    def leave(self) -> None:
        """A launch ended: the others need not wait for it any more."""
        with self._changed:
            self._active -= 1
            self._advance()

    def _advance(self) -> None:
        pending = [wake for wake in self._wakes if wake > self.time]
        if pending and len(pending) == self._active:
            self.time = min(pending)
            self.moments += 1
            self._changed.notify_all()


class AllSubmitted(LaunchObserver):
    """Holds each launch after its submit until every launch (the barrier's parties) has
    submitted, so that they all start polling together."""

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        self.barrier.wait()


def launch_together(
    operator: StepOperator,
    infos: list[StepRunInfo],
    command: list[str],
    *,
    hold_until_submitted: bool = True,
    timeout: float = 60.0,
) -> tuple[LockstepClock, list[BaseException]]:
    """Launch every step attempt at once on ``operator``, one thread each, in virtual time.

    The launches share a :class:`LockstepClock` (installed as the operator's clock and sleep),
    so those on the same poll schedule wake together as real ones do; with
    ``hold_until_submitted`` none polls before all have submitted. Returns the clock (its
    ``moments`` and ``sleeps``) and every error a launch raised; fails if a launch is still
    waiting after ``timeout`` seconds.
    """
    clock = LockstepClock(len(infos))
    operator.clock, operator.sleep = clock.now, clock.sleep
    observer = (
        AllSubmitted(threading.Barrier(len(infos), timeout=timeout))
        if hold_until_submitted
        else None
    )
    errors: list[BaseException] = []

    def launch(info: StepRunInfo) -> None:
        try:
            operator.launch(info, command, observer=observer)
        except BaseException as error:  # handed back to the test, never lost
            errors.append(error)
        finally:
            clock.leave()

    threads = [threading.Thread(target=launch, args=(info,), daemon=True) for info in infos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "launches still waiting"
    return clock, errors


class ConformanceBackend(Protocol):
    """What the suite needs to ask of, or do to, a flavor's backend (cloud or emulator)."""

    def submissions(self) -> int:
        """Jobs created on the backend so far."""

    def api_calls(self) -> int:
        """Control-plane calls the backend has received so far."""

    def fail_infrastructure(self, operator: StepOperator, handle: JobHandle) -> FailureKind:
        """Make the running job fail as the provider's infrastructure would; return the kind."""

    def is_running(self, operator: StepOperator, handle: JobHandle) -> bool:
        """True while anything of the job still runs (processes, instances)."""

    def lose_node(self, operator: StepOperator, handle: JobHandle, node: int) -> FailureKind:
        """Lose one node (0-based) of a running multi-node job as a failed host would; return
        the failure kind the step must then report."""

    def storm(self, throttle_rate: float, error_rate: float) -> bool:
        """From now on refuse that share of control-plane calls as throttled, and answer that
        share with a 5xx (0, 0: calm again). False: the flavor has no control plane."""

    def operator_with_secret(
        self, operator: StepOperator, name: str, value: str
    ) -> StepOperator | None:
        """Store ``value`` in the provider's secret store and return a copy of ``operator``
        whose ``secrets`` maps ``name`` to its reference (None: the flavor has no store)."""

    def recorded_text(self) -> str:
        """Everything the backend has received so far, as text (to prove what never went)."""


class EmulatedBackend:
    """What every cloud emulator's conformance backend does alike (through the shared
    emulator API): storms, losing a node, and the request log as text."""

    emulator: Emulator

    def lose_node(self, operator: StepOperator, handle: JobHandle, node: int) -> FailureKind:
        self.emulator.kill_node(handle.job_id, node)
        return FailureKind.INFRASTRUCTURE

    def storm(self, throttle_rate: float, error_rate: float) -> bool:
        self.emulator.set_faults(Faults(throttle_rate=throttle_rate, error_rate=error_rate))
        return True

    def recorded_text(self) -> str:
        return json.dumps([request.to_dict() for request in self.emulator.requests.list()])


class _Recorder(LaunchObserver):
    def __init__(
        self,
        on_running: Callable[[JobHandle], None] | None = None,
        on_line: tuple[str, Callable[[JobHandle], None]] | None = None,
    ) -> None:
        self.handles: list[tuple[JobHandle, bool]] = []
        self.states: list[JobState] = []
        self.lines: list[str] = []
        self.on_running = on_running
        self.on_line = on_line

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        self.handles.append((handle, adopted))

    def on_status(self, status: JobStatus) -> None:
        self.states.append(status.state)
        if status.state is JobState.RUNNING and self.on_running and self.handles:
            hook, self.on_running = self.on_running, None
            hook(self.handles[-1][0])

    def on_log(self, line: str) -> None:
        self.lines.append(line)
        if self.on_line and self.on_line[0] in line and self.handles:
            hook, self.on_line = self.on_line[1], None
            hook(self.handles[-1][0])

    @property
    def handle(self) -> JobHandle:
        assert self.handles, "no job was submitted or adopted"
        return self.handles[-1][0]


def _wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Bounded real wait for a backend to catch up (used only after the launch returned)."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class StepOperatorConformance:
    """Mixin of the standard tests; see the module docstring for the opt-in."""

    flavor: ClassVar[str]

    # -- fixtures -----------------------------------------------------------------------------

    @pytest.fixture
    def clock(self) -> ConformanceClock:
        """The clock the operator must be built with (override for a scripted backend)."""
        return ConformanceClock()

    @pytest.fixture
    def operator(self) -> StepOperator:
        """The operator under test (flavors override this fixture)."""
        raise NotImplementedError("the flavor's conformance class must provide `operator`")

    @pytest.fixture
    def backend(self) -> ConformanceBackend:
        """The backend probe (flavors override this fixture)."""
        raise NotImplementedError("the flavor's conformance class must provide `backend`")

    @pytest.fixture
    def invalid_configs(self) -> list[dict[str, Any]]:
        """Raw configs the flavor must refuse (flavors override this fixture)."""
        raise NotImplementedError("the flavor's conformance class must provide `invalid_configs`")

    @pytest.fixture
    def index(self, tmp_path_factory: pytest.TempPathFactory) -> RunIndex:
        """A private run index, so tests never touch the user's."""
        return RunIndex(tmp_path_factory.mktemp("runs"))

    @pytest.fixture
    def run(self) -> Iterator[Run]:
        """A fresh run per test."""
        yield Run(f"conformance-{self.flavor}-{int(time.time())}-{next(_run_numbers)}")

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _prepare(
        operator: StepOperator,
        index: RunIndex,
        run: Run,
        function: Any,
        *args: Any,
        max_runtime: float | None = None,
        resources: Resources | None = None,
    ) -> tuple[StepLauncher, StepSpec, StepRunInfo, list[str], StepOptions]:
        """Write inputs and execution info for one attempt; return what launching needs."""
        launcher = StepLauncher(operator, index=index)
        spec = StepSpec.for_function(function, args, {})
        options = StepOptions(max_runtime=max_runtime, resources=resources or Resources())
        step = run.step_name(function.__name__)
        info = launcher.step_info(run=run, step=step, attempt=1, options=options)
        command = launcher.entrypoint_command(*launcher.prepare(spec, info))
        return launcher, spec, info, command, options

    # -- the standard tests -------------------------------------------------------------------

    def test_success_returns_value_and_streams_logs(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        recorder = _Recorder()
        launcher = StepLauncher(operator, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.add_and_log, (2, 3), {})
        before = backend.submissions()
        value = launcher.run(spec, run=run, step="add", options=StepOptions())
        assert value == 5
        assert "adding 2 and 3" in recorder.lines
        assert recorder.states[-1] is JobState.SUCCEEDED
        assert backend.submissions() == before + 1

    def test_user_failure_raises_step_failed_with_remote_traceback(
        self, operator: StepOperator, index: RunIndex, run: Run
    ) -> None:
        launcher = StepLauncher(operator, index=index)
        spec = StepSpec.for_function(steps.fail_with, ("the remote said no",), {})
        with pytest.raises(StepFailed) as caught:
            launcher.run(spec, run=run, step="fail", options=StepOptions())
        failure = caught.value
        assert failure.failure_kind is FailureKind.USER_CODE
        assert failure.remote_type == "builtins.RuntimeError"
        assert failure.remote_message == "the remote said no"
        assert failure.remote_traceback and "in fail_with" in failure.remote_traceback
        assert failure.handle is not None

    def test_infrastructure_failure_has_its_failure_kind(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        expected: list[FailureKind] = []

        def break_it(handle: JobHandle) -> None:
            expected.append(backend.fail_infrastructure(operator, handle))

        recorder = _Recorder(on_running=break_it)
        launcher = StepLauncher(operator, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.sleep_for, (60,), {})
        with pytest.raises(StepFailed) as caught:
            launcher.run(spec, run=run, step="doomed", options=StepOptions())
        assert expected, "the job never reported RUNNING"
        assert caught.value.failure_kind is expected[0], str(caught.value)
        assert caught.value.failure_kind is not FailureKind.USER_CODE
        assert _wait_until(lambda: not backend.is_running(operator, recorder.handle))

    def test_a_transient_failure_is_retried_and_resumes_from_its_checkpoint(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        broken: list[FailureKind] = []

        def break_it(handle: JobHandle) -> None:
            broken.append(backend.fail_infrastructure(operator, handle))

        recorder = _Recorder(on_line=("checkpointed attempt 1", break_it))
        launcher = StepLauncher(operator, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.resume_from_checkpoint, (), {})
        value = launcher.run(spec, run=run, step="resume", options=StepOptions(retries=1))
        assert broken, "the first attempt never checkpointed"
        assert value == ["1", "2"]
        assert [adopted for _, adopted in recorder.handles] == [False, False]
        assert [record.state for record in index.steps(run.name)] == ["FAILED", "SUCCEEDED"]

    @pytest.mark.parametrize(
        ("interrupt", "exit_code"),
        [(KeyboardInterrupt, 130), (Terminated(signal.SIGTERM), 143)],
        ids=["ctrl-c", "sigterm"],
    )
    def test_interrupt_cancels_the_remote_job(
        self,
        operator: StepOperator,
        backend: ConformanceBackend,
        index: RunIndex,
        run: Run,
        interrupt: BaseException | type[BaseException],
        exit_code: int,
    ) -> None:
        def press(_handle: JobHandle) -> None:
            raise interrupt

        recorder = _Recorder(on_running=press)
        _, _, info, command, _ = self._prepare(operator, index, run, steps.sleep_for, 60)
        with pytest.raises(StepCancelled) as caught:
            operator.launch(info, command, observer=recorder)
        assert caught.value.exit_code == exit_code
        assert caught.value.confirmed
        assert operator.get_status(recorder.handle).state is JobState.CANCELLED
        assert _wait_until(lambda: not backend.is_running(operator, recorder.handle))

    def test_max_runtime_stops_the_job_with_step_timeout(
        self,
        operator: StepOperator,
        backend: ConformanceBackend,
        index: RunIndex,
        run: Run,
        clock: ConformanceClock,
    ) -> None:
        recorder = _Recorder()
        _, _, info, command, _ = self._prepare(
            operator, index, run, steps.sleep_for, 600, max_runtime=30
        )
        started = clock.now()
        with pytest.raises(StepTimeout) as caught:
            operator.launch(info, command, observer=recorder)
        assert caught.value.max_runtime == 30
        assert clock.now() - started >= 30
        final = operator.get_status(recorder.handle)
        assert final.state in (JobState.CANCELLED, JobState.FAILED)
        assert _wait_until(lambda: not backend.is_running(operator, recorder.handle))

    def test_second_launch_adopts_the_first_job(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        launcher, _, info, command, _ = self._prepare(operator, index, run, steps.add_and_log, 4, 5)
        before = backend.submissions()
        # Another launcher submitted the job and vanished before waiting for it.
        first = operator.submit(info, command, operator.job_environment(info))
        assert operator.find_job(info) == first
        recorder = _Recorder()
        operator.launch(info, command, observer=recorder)
        assert recorder.handles == [(first, True)]
        assert backend.submissions() == before + 1
        # A relaunch after the step finished returns the stored result, submitting nothing.
        spec = StepSpec.for_function(steps.add_and_log, (4, 5), {})
        value = launcher.run(spec, run=run, step=info.step, options=StepOptions())
        assert value == 9
        assert backend.submissions() == before + 1

    def test_a_crashed_launcher_is_adopted_through_its_receipt(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        launcher, spec, info, command, _ = self._prepare(
            operator, index, run, steps.add_and_log, 6, 7
        )
        before = backend.submissions()

        class Crash(BaseException):
            """The launcher process dying right after the job was created."""

        class CrashOnJob(LaunchObserver):
            def on_job(self, handle: JobHandle, adopted: bool) -> None:
                raise Crash

        with pytest.raises(Crash):
            operator.launch(info, command, observer=CrashOnJob())
        assert backend.submissions() == before + 1
        receipt = JobHandle.model_validate_json(
            operator.artifact_store.get(join_uri(info.artifact_uri, RECEIPT))
        )
        recorder = _Recorder()
        operator.launch(info, command, observer=recorder)
        assert recorder.handles == [(receipt, True)]
        assert recorder.states[-1] is JobState.SUCCEEDED
        assert launcher.run(spec, run=run, step=info.step, options=StepOptions()) == 13
        assert backend.submissions() == before + 1

    def test_invalid_config_is_refused_with_zero_api_calls(
        self, backend: ConformanceBackend, invalid_configs: list[dict[str, Any]]
    ) -> None:
        assert invalid_configs, "a flavor must name at least one config it refuses"
        flavor = get_flavor(self.flavor)
        before = backend.api_calls()
        for fields in invalid_configs:
            with pytest.raises(ConfigError) as caught:
                flavor.validate_config(fields, file="steplift.toml", operator="under-test")
            error = caught.value
            assert error.file == "steplift.toml" and error.operator == "under-test"
            assert error.field, f"the error for {fields} names no field: {error}"
            assert str(error).count("\n") == 0
        assert backend.api_calls() == before

    # -- multi-node ---------------------------------------------------------------------------

    def _needs_multi_node(self, operator: StepOperator) -> None:
        if not operator.multi_node:
            pytest.skip(f"the {self.flavor} flavor declares no multi-node support")

    @staticmethod
    def _node_lines(recorder: _Recorder, node: int, text: str) -> list[str]:
        return [
            line for line in recorder.lines if line.startswith(f"[node {node}] ") and text in line
        ]

    def test_multi_node_step_rendezvous_with_torch_and_returns_rank_0_value(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        self._needs_multi_node(operator)
        pytest.importorskip("torch", reason="PyTorch comes with the dev extra")
        recorder = _Recorder()
        launcher = StepLauncher(operator, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.all_reduce_ranks, (), {})
        options = StepOptions(resources=Resources(nodes=2))
        before = backend.submissions()
        value = launcher.run(spec, run=run, step="all-reduce", options=options)
        assert value == {"sum": 3.0, "world_size": 2}
        for node in (0, 1):
            assert self._node_lines(recorder, node, f"rank {node}: all_reduce gave 3"), (
                recorder.lines
            )
        assert backend.submissions() == before + 1

    def test_multi_node_places_every_process_of_every_node(
        self, operator: StepOperator, index: RunIndex, run: Run
    ) -> None:
        self._needs_multi_node(operator)
        recorder = _Recorder()
        launcher = StepLauncher(operator, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.where_am_i, (), {})
        options = StepOptions(resources=Resources(nodes=2, processes_per_node=2))
        value = launcher.run(spec, run=run, step="where", options=options)
        assert value["world_size"] == 4 and value["nodes"] == 2
        assert value["rank"] == 0 and value["node_rank"] == 0 and value["local_rank"] == 0
        for rank in range(4):
            assert self._node_lines(recorder, rank // 2, f"rank {rank} of 4 on node {rank // 2}")

    def test_multi_node_one_failing_node_fails_the_step_with_its_traceback(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        self._needs_multi_node(operator)
        recorder = _Recorder()
        launcher = StepLauncher(operator, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.fail_on_rank, (1, "node one broke"), {})
        options = StepOptions(resources=Resources(nodes=2))
        with pytest.raises(StepFailed) as caught:
            launcher.run(spec, run=run, step="one-node-fails", options=options)
        failure = caught.value
        assert failure.failure_kind is FailureKind.USER_CODE, str(failure)
        assert "node 1 (rank 1)" in str(failure)
        assert failure.remote_message == "node one broke (rank 1)"
        assert failure.remote_traceback and "in fail_on_rank" in failure.remote_traceback
        assert _wait_until(lambda: not backend.is_running(operator, recorder.handle))

    def test_multi_node_interrupt_stops_every_node(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        self._needs_multi_node(operator)
        started: list[JobHandle] = []

        def press(handle: JobHandle) -> None:
            started.append(handle)
            raise KeyboardInterrupt

        # Interrupt once the second node is provably running.
        recorder = _Recorder(on_line=("rank 1 waiting", press))
        _, _, info, command, _ = self._prepare(
            operator, index, run, steps.fail_on_rank, 7, "never", resources=Resources(nodes=2)
        )
        with pytest.raises(StepCancelled) as caught:
            operator.launch(info, command, observer=recorder)
        assert started, "node 1 never logged that it was running"
        assert caught.value.confirmed
        assert operator.get_status(recorder.handle).state is JobState.CANCELLED
        assert _wait_until(lambda: not backend.is_running(operator, recorder.handle))

    def test_multi_node_a_lost_node_fails_the_step_and_stops_the_others(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        self._needs_multi_node(operator)
        lost: list[FailureKind] = []

        def lose(handle: JobHandle) -> None:
            lost.append(backend.lose_node(operator, handle, 1))

        recorder = _Recorder(on_line=("rank 1 waiting", lose))
        launcher = StepLauncher(operator, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.fail_on_rank, (7, "never"), {})
        options = StepOptions(resources=Resources(nodes=2))
        with pytest.raises(StepFailed) as caught:
            launcher.run(spec, run=run, step="lost-node", options=options)
        assert lost, "node 1 never logged that it was running"
        assert caught.value.failure_kind is lost[0], str(caught.value)
        assert caught.value.failure_kind is not FailureKind.USER_CODE
        assert _wait_until(lambda: not backend.is_running(operator, recorder.handle))

    # -- storms and secrets -------------------------------------------------------------------

    def test_a_control_plane_storm_slows_steps_down_but_fails_or_duplicates_nothing(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        before = backend.submissions()
        if not backend.storm(0.3, 0.05):
            pytest.skip(f"the {self.flavor} flavor has no control plane to throttle")
        try:
            launcher = StepLauncher(operator, index=index)
            for number in range(3):
                spec = StepSpec.for_function(steps.add_and_log, (number, number), {})
                value = launcher.run(spec, run=run, step=f"storm-{number}", options=StepOptions())
                assert value == 2 * number
        finally:
            backend.storm(0.0, 0.0)
        assert backend.submissions() == before + 3, "a create was repeated or lost"

    def test_a_secret_reaches_the_step_and_nothing_else(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        value = f"conformance-secret-{uuid.uuid4().hex}"
        with_secret = backend.operator_with_secret(operator, "API_TOKEN", value)
        if with_secret is None:
            pytest.skip(f"the {self.flavor} flavor has no secret store")
        recorder = _Recorder()
        launcher = StepLauncher(with_secret, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.secret_digest, ("API_TOKEN",), {})
        digest = launcher.run(spec, run=run, step="secret", options=StepOptions())
        assert digest == hashlib.sha256(value.encode()).hexdigest()
        assert "API_TOKEN is set: True" in recorder.lines
        handle = recorder.handle
        travelled = [
            "\n".join(recorder.lines),
            backend.recorded_text(),
            repr(with_secret.get_status(handle)),
            handle.model_dump_json(),
            *(path.read_text() for path in index.root.rglob("*.json")),
        ]
        assert all(value not in text for text in travelled), "the secret's value travelled"

    # -- the guard ----------------------------------------------------------------------------

    def test_standard_tests_are_not_dropped_or_overridden(self) -> None:
        for name, standard in inspect.getmembers(StepOperatorConformance, inspect.isfunction):
            if not name.startswith("test_"):
                continue
            actual = getattr(type(self), name, None)
            if actual is standard:
                continue
            marks = getattr(actual, "pytestmark", [])
            strict_xfails = [
                mark
                for mark in marks
                if mark.name == "xfail"
                and mark.kwargs.get("strict") is True
                and mark.kwargs.get("reason")
            ]
            assert strict_xfails, (
                f"{type(self).__name__}.{name} replaces a standard conformance test; keep it, or "
                "override it with @pytest.mark.xfail(strict=True, reason=...)"
            )


__all__ = ["ConformanceBackend", "ConformanceClock", "StepOperatorConformance"]
