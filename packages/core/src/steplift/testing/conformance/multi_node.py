"""Multi-node tests, run on every flavor whose operator declares ``multi_node = True`` (and
skipped, saying so, on the others): a real PyTorch gloo rendezvous across two nodes, ranks and
processes per node, one failing node, a lost node, and an interrupt that must stop every node.
Each node's log lines reach the observer prefixed ``[node R] ``."""

from __future__ import annotations

import pytest

from steplift.errors import StepCancelled, StepFailed
from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.models import JobHandle, Resources
from steplift.operator import StepOperator
from steplift.runs import Run, RunIndex
from steplift.states import FailureKind, JobState
from steplift.testing import steps
from steplift.testing.conformance.backend import ConformanceBackend
from steplift.testing.conformance.base import ConformanceBase
from steplift.testing.conformance.recording import Recorder, eventually

__all__ = ["MultiNodeTests"]


class MultiNodeTests(ConformanceBase):
    """Steps spanning several nodes."""

    def _needs_multi_node(self, operator: StepOperator) -> None:
        if not operator.multi_node:
            pytest.skip(f"the {self.flavor} flavor declares no multi-node support")

    @staticmethod
    def _node_lines(recorder: Recorder, node: int, text: str) -> list[str]:
        return [
            line for line in recorder.lines if line.startswith(f"[node {node}] ") and text in line
        ]

    def test_multi_node_step_rendezvous_with_torch_and_returns_rank_0_value(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        self._needs_multi_node(operator)
        pytest.importorskip("torch", reason="PyTorch comes with the dev extra")
        recorder = Recorder()
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
        recorder = Recorder()
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
        recorder = Recorder()
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
        assert eventually(lambda: not backend.is_running(operator, recorder.handle))

    def test_multi_node_interrupt_stops_every_node(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        self._needs_multi_node(operator)
        started: list[JobHandle] = []

        def press(handle: JobHandle) -> None:
            started.append(handle)
            raise KeyboardInterrupt

        # Interrupt once the second node is provably running.
        recorder = Recorder(on_line=("rank 1 waiting", press))
        _, _, info, command, _ = self._prepare(
            operator, index, run, steps.fail_on_rank, 7, "never", resources=Resources(nodes=2)
        )
        with pytest.raises(StepCancelled) as caught:
            operator.launch(info, command, observer=recorder)
        assert started, "node 1 never logged that it was running"
        assert caught.value.confirmed
        assert operator.get_status(recorder.handle).state is JobState.CANCELLED
        assert eventually(lambda: not backend.is_running(operator, recorder.handle))

    def test_multi_node_a_lost_node_fails_the_step_and_stops_the_others(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        self._needs_multi_node(operator)
        lost: list[FailureKind] = []

        def lose(handle: JobHandle) -> None:
            lost.append(backend.lose_node(operator, handle, 1))

        recorder = Recorder(on_line=("rank 1 waiting", lose))
        launcher = StepLauncher(operator, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.fail_on_rank, (7, "never"), {})
        options = StepOptions(resources=Resources(nodes=2))
        with pytest.raises(StepFailed) as caught:
            launcher.run(spec, run=run, step="lost-node", options=options)
        assert lost, "node 1 never logged that it was running"
        assert caught.value.failure_kind is lost[0], str(caught.value)
        assert caught.value.failure_kind is not FailureKind.USER_CODE
        assert eventually(lambda: not backend.is_running(operator, recorder.handle))
