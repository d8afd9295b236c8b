"""Supervisor of one local job: ``python -m steplift.flavors.local_supervisor JOB_DIR``.

It plays the part a cloud plays for a remote job: it outlives the launcher (it runs in its
own session), runs the command with its output in ``output.log``, enforces the max runtime,
honours cancel requests, and records the job's state in ``state.json`` so that any process
can follow, adopt or cancel the job. It imports nothing but the standard library.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

CANCEL_GRACE = 10.0
"""Seconds a cancelled or timed-out job gets between SIGTERM and SIGKILL."""


def write_state(job_dir: Path, **state: Any) -> None:
    """Atomically replace ``state.json``."""
    state["updated"] = time.time()
    tmp = job_dir / f".state.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, job_dir / "state.json")


def _stop(process: subprocess.Popen[bytes], grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def supervise(job_dir: Path) -> int:
    """Run the job described by ``job_dir/job.json`` to its end; return 0."""
    spec = json.loads((job_dir / "job.json").read_text())
    cancel_flag = job_dir / "cancel-requested"
    cancelled = False

    def _on_term(_signum: int, _frame: FrameType | None) -> None:
        nonlocal cancelled
        cancelled = True

    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)

    environment = {**os.environ, **spec["environment"], "PYTHONUNBUFFERED": "1"}
    log_path = job_dir / "output.log"
    with open(log_path, "ab") as log:
        try:
            process = subprocess.Popen(
                spec["command"],
                cwd=spec["cwd"],
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            write_state(
                job_dir,
                state="FAILED",
                failure_kind="image",
                message=f"could not start {spec['command'][0]!r}: {error.strerror or error}",
                supervisor_pid=os.getpid(),
            )
            return 0
        started = time.monotonic()
        write_state(job_dir, state="RUNNING", pid=process.pid, supervisor_pid=os.getpid())
        max_runtime = spec.get("max_runtime")
        outcome: dict[str, Any] | None = None
        while outcome is None:
            try:
                process.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                pass
            if cancelled or cancel_flag.exists():
                write_state(
                    job_dir, state="CANCELLING", pid=process.pid, supervisor_pid=os.getpid()
                )
                _stop(process, CANCEL_GRACE)
                outcome = {"state": "CANCELLED", "message": "cancelled on request"}
            elif max_runtime is not None and time.monotonic() - started > max_runtime:
                _stop(process, CANCEL_GRACE)
                outcome = {
                    "state": "FAILED",
                    "failure_kind": "timeout",
                    "message": f"max runtime of {max_runtime:g} s exceeded",
                }
    _finish_log(log_path)
    code = process.returncode
    if outcome is None:
        if code == 0:
            outcome = {"state": "SUCCEEDED", "message": ""}
        elif code > 0:
            outcome = {
                "state": "FAILED",
                "failure_kind": "user_code",
                "message": f"command exited with code {code}",
            }
        else:
            outcome = {
                "state": "FAILED",
                "failure_kind": "infrastructure",
                "message": f"killed by signal {signal.Signals(-code).name}",
            }
    write_state(job_dir, exit_code=code, supervisor_pid=os.getpid(), **outcome)
    return 0


def _finish_log(log_path: Path) -> None:
    """End the log with a newline so that the last line is complete for readers."""
    with open(log_path, "rb+") as log:
        log.seek(0, os.SEEK_END)
        if log.tell() == 0:
            return
        log.seek(-1, os.SEEK_END)
        if log.read(1) != b"\n":
            log.write(b"\n")


def detach_and_supervise(job_dir: Path) -> int:
    """Fork: the parent returns at once to the launcher; the child supervises the job."""
    if os.fork() > 0:
        return 0
    os.setsid()
    (job_dir / "supervisor.pid").write_text(str(os.getpid()))
    try:
        code = supervise(job_dir)
    finally:
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(detach_and_supervise(Path(sys.argv[1])))
