"""`EmulatorBase`: the state and behaviour every emulator shares (faults, request log,
context manager); a cloud's emulator subclasses it and adds its API."""

from __future__ import annotations

import copy
import importlib
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Self

from steplift.emulation.faults import FaultDecider, FaultKind, Faults
from steplift.emulation.protocol import EmulatorMode
from steplift.emulation.request_log import RecordedRequest, RequestLog

__all__ = ["EmulatorBase"]


class EmulatorBase:
    """Shared state and behaviour of emulators: faults, decider, request log, context manager.

    Subclasses set `flavor` and implement start/stop/preempt/kill_node/script/job_ids/
    is_running/endpoint_url/client_env/operator_config/attempt_key.
    """

    flavor: ClassVar[str]
    """The steplift flavor this emulator stands in for (each emulator sets it)."""

    service_name = "emulator"

    def __init__(self, mode: EmulatorMode = "execute") -> None:
        if mode not in ("execute", "scripted"):
            raise ValueError(f"mode must be 'execute' or 'scripted', got {mode!r}")
        self.mode: EmulatorMode = mode
        self._requests = RequestLog()
        self._decider = FaultDecider(Faults())
        self._faults_changed = threading.Condition()

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        return self._decider.faults

    @property
    def requests(self) -> RequestLog:
        """Every API call clients made."""
        return self._requests

    def set_faults(self, faults: Faults) -> None:
        """Put these faults in force (fresh decision streams); wakes `wait_for_faults_change`."""
        with self._faults_changed:
            self._decider = FaultDecider(faults)
            self._faults_changed.notify_all()

    def wait_for_faults_change(self, timeout: float) -> None:
        """Block until faults change or `timeout` passes (for loops waiting out a fault)."""
        with self._faults_changed:
            self._faults_changed.wait(timeout)

    def decide_fault(self, operation: str) -> FaultKind | None:
        """The fault (if any) for this call; also applies the configured latency."""
        decider = self._decider
        if decider.faults.latency:
            time.sleep(decider.faults.latency)
        return decider.decide(operation)

    def reset(self) -> None:
        """Clear faults and the request log."""
        self.set_faults(Faults())
        self._requests.clear()

    def record(self, service: str, operation: str, params: Mapping[str, Any]) -> None:
        """Add one client call to the request log."""
        self._requests.append(RecordedRequest(service, operation, copy.deepcopy(dict(params))))

    @classmethod
    def main(cls, argv: list[str] | None = None) -> int:
        """What ``steplift emulator <flavor>`` runs: the ``main(argv)`` of the ``cli`` module
        beside this emulator's (every emulator package has the same modules)."""
        package = cls.__module__.rpartition(".")[0]
        cli = importlib.import_module(f"{package}.cli")
        return int(cli.main(argv))

    def operator_config(self, **fields: Any) -> dict[str, Any]:
        """The operator config fields (with ``"flavor"``) that point an operator at this
        emulator, ``fields`` overriding or extending them."""
        raise NotImplementedError

    def attempt_key(self, job_id: str) -> str:
        """The step attempt job ``job_id`` was submitted for; KeyError: no such job."""
        raise NotImplementedError

    def start(self) -> Self:
        """Start serving; returns self."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
