"""The nodes of a multi-node job: one `JobProcess` per node, succeeding or failing together."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Self

from steplift.emulation.processes import JobProcess

__all__ = ["NodeGroup"]


class NodeGroup:
    """The nodes of one multi-node job: a :class:`JobProcess` per node, ending together.

    As on a cloud, the job succeeds only when every node exits 0, and the first node to fail
    stops the others (SIGTERM, then SIGKILL after their grace). ``make_node(rank, on_exit)``
    builds node ``rank``'s process (not started) passing ``on_exit`` through; a
    single-node job is a group of one.
    """

    def __init__(
        self,
        nodes: int,
        make_node: Callable[[int, Callable[[JobProcess], None]], JobProcess],
    ) -> None:
        if nodes < 1:
            raise ValueError(f"a job needs at least one node, not {nodes}")
        self._lock = threading.Lock()
        self._failed: int | None = None
        self._stopping = False
        self.processes = [make_node(rank, self._node_exited) for rank in range(nodes)]

    def start(self) -> Self:
        """Start every node, unless the group is already ending.

        Each start holds the group's lock, so a node that fails (or a terminate) while later
        nodes are still being started stops the ones started and none starts after it: a
        never-started node's exit code stays None.
        """
        for process in self.processes:
            with self._lock:
                if self._failed is not None or self._stopping:
                    break
                process.start()
        return self

    def _node_exited(self, process: JobProcess) -> None:
        if process.exit_code == 0:
            return
        with self._lock:
            if self._failed is not None or self._stopping:
                return  # already ending: a stopped node's exit is not a failure
            self._failed = self.processes.index(process)
        self._stop(process.grace)

    @property
    def failed_node(self) -> int | None:
        """The rank of the first node that exited non-zero (or was killed), if any."""
        return self._failed

    @property
    def exit_codes(self) -> list[int | None]:
        """Each node's exit code, None while it runs."""
        return [process.exit_code for process in self.processes]

    @property
    def timed_out(self) -> bool:
        """True when a node's max runtime ran out."""
        return any(process.timed_out for process in self.processes)

    def wait(self, timeout: float | None = None) -> list[int | None]:
        """Wait (bounded by ``timeout`` per node) until every started node ended; exit codes.

        A node never started (the group ended before its turn) has None.
        """
        return [
            process.wait(timeout) if process.pid is not None else None for process in self.processes
        ]

    def is_running(self) -> bool:
        """True while any started node's process has not ended."""
        return any(
            process.pid is not None and process.exit_code is None for process in self.processes
        )

    def kill_node(self, rank: int, signum: signal.Signals = signal.SIGKILL) -> None:
        """Kill one node (a fault: a host lost); the others then stop as after a failure."""
        pid = self.processes[rank].pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signum)

    def terminate(self, grace: float | None = None) -> list[int | None]:
        """Stop every node at once (cancel, timeout); returns their exit codes."""
        with self._lock:
            self._stopping = True
        self._stop(grace)
        return self.exit_codes

    def _stop(self, grace: float | None) -> None:
        stoppers = [
            threading.Thread(target=process.terminate, args=(grace,), daemon=True)
            for process in self.processes
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
