"""NodeGroup: the emulators' multi-node job, real processes on this machine."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Self

from steplift.emulation import JobProcess, NodeGroup


def _group(tmp_path: Path, scripts: list[str]) -> NodeGroup:
    def make(rank: int, on_exit: Callable[[JobProcess], None]) -> JobProcess:
        return JobProcess(
            [sys.executable, "-c", scripts[rank]],
            env={},
            cwd=tmp_path,
            grace=1.0,
            on_exit=on_exit,
        )

    return NodeGroup(len(scripts), make)


def test_every_node_exiting_zero_is_success(tmp_path: Path) -> None:
    group = _group(tmp_path, ["print(0)", "print(1)"]).start()
    assert group.wait(30) == [0, 0]
    assert group.failed_node is None and not group.is_running()


def test_the_first_failing_node_stops_the_others(tmp_path: Path) -> None:
    sleeper = "import time; print('up', flush=True); time.sleep(60)"
    group = _group(tmp_path, [sleeper, "raise SystemExit(3)", sleeper]).start()
    codes = group.wait(30)
    assert group.failed_node == 1
    assert codes[1] == 3
    # Node 2 may never have started (node 1 failed first): None then, else stopped.
    assert codes[0] is not None and codes[0] < 0
    assert codes[2] is None or codes[2] < 0
    assert not group.is_running()


def test_a_node_failing_while_the_others_start_leaves_none_running(tmp_path: Path) -> None:
    # Node 0 fails at once; node 1's start is held until node 0's exit has been handled (or
    # 1 s has passed). A late start must not escape the stop: every node ends, none is
    # left sleeping.
    handled = threading.Event()

    class LateStart(JobProcess):
        def start(self) -> Self:
            handled.wait(1.0)
            return super().start()

    sleeper = "import time; time.sleep(60)"

    def make(rank: int, on_exit: Callable[[JobProcess], None]) -> JobProcess:
        if rank == 0:

            def exited(process: JobProcess) -> None:
                on_exit(process)
                handled.set()

            return JobProcess(
                [sys.executable, "-c", "raise SystemExit(3)"],
                env={},
                cwd=tmp_path,
                grace=1.0,
                on_exit=exited,
            )
        kind = LateStart if rank == 1 else JobProcess
        return kind(
            [sys.executable, "-c", sleeper], env={}, cwd=tmp_path, grace=1.0, on_exit=on_exit
        )

    group = NodeGroup(3, make)
    try:
        group.start()
        codes = group.wait(10)
        assert group.failed_node == 0 and codes[0] == 3
        assert all(code is None or code < 0 for code in codes[1:])
        assert not group.is_running()
    finally:
        group.terminate(0.5)


def test_a_killed_node_fails_the_job_and_terminate_is_not_a_failure(tmp_path: Path) -> None:
    sleeper = "import time; time.sleep(60)"
    killed = _group(tmp_path, [sleeper, sleeper]).start()
    killed.kill_node(0)
    killed.wait(30)
    assert killed.failed_node == 0 and not killed.is_running()

    stopped = _group(tmp_path, [sleeper, sleeper]).start()
    stopped.terminate(1.0)
    assert stopped.failed_node is None and not stopped.is_running()
