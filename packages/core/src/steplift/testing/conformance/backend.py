"""The backend probe a flavor hands the suite: what it asks of, or does to, the cloud or
emulator behind the operator (`ConformanceBackend`), and the part every emulator shares."""

from __future__ import annotations

import json
from typing import Protocol

from steplift.emulation import Emulator, Faults
from steplift.models import JobHandle
from steplift.operator import StepOperator
from steplift.states import FailureKind

__all__ = ["ConformanceBackend", "EmulatedBackend"]


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
