"""NodeGroup: the emulators' multi-node job, real processes on this machine."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from steplift.testing.emulation import JobProcess, NodeGroup


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
    assert codes[0] is not None and codes[0] < 0 and codes[2] is not None and codes[2] < 0
    assert not group.is_running()


def test_a_killed_node_fails_the_job_and_terminate_is_not_a_failure(tmp_path: Path) -> None:
    sleeper = "import time; time.sleep(60)"
    killed = _group(tmp_path, [sleeper, sleeper]).start()
    killed.kill_node(0)
    killed.wait(30)
    assert killed.failed_node == 0 and not killed.is_running()

    stopped = _group(tmp_path, [sleeper, sleeper]).start()
    stopped.terminate(1.0)
    assert stopped.failed_node is None and not stopped.is_running()
