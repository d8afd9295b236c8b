"""Supervisor of one local job: ``python -m steplift.flavors.local_supervisor JOB_DIR``.

It plays the part a cloud plays for a remote job: it outlives the launcher (it runs in its
own session), runs the command with its output in ``output.log`` (once per node for a
multi-node job, each with the node's ``NODE_RANK`` and the shared rendezvous address, every
line prefixed ``[node R]``; the first node to fail ends the job), enforces the max runtime,
honours cancel requests, and records the job's state in ``state.json`` so that any process
can follow, adopt or cancel the job. It imports nothing but the standard library (and
``steplift.cluster``, which imports nothing else).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import IO, Any

from steplift.cluster import free_port, without_cluster  # standard library only, like this module

CANCEL_GRACE = 10.0
"""Seconds a cancelled or timed-out job gets between SIGTERM and SIGKILL."""


def write_state(job_dir: Path, **state: Any) -> None:
    """Atomically replace ``state.json``."""
    state["updated"] = time.time()
    tmp = job_dir / f".state.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, job_dir / "state.json")


def _stop(processes: list[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM every process group, SIGKILL what is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        alive = [process for process in processes if process.poll() is None]
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + wait
        for process in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))


def _prefix_lines(stream: IO[bytes], log: IO[bytes], prefix: bytes, lock: threading.Lock) -> None:
    for line in iter(stream.readline, b""):
        with lock:
            log.write(prefix + line if line.endswith(b"\n") else prefix + line + b"\n")
            log.flush()
    stream.close()


def _start_nodes(
    spec: dict[str, Any], environment: dict[str, str], log: IO[bytes]
) -> tuple[list[subprocess.Popen[bytes]], list[threading.Thread]]:
    """One process per node: a single node writes to the log itself, several through a
    reader each that puts ``[node R]`` before every line."""
    nodes = int(spec.get("nodes", 1))
    common = {"args": spec["command"], "cwd": spec["cwd"], "stdin": subprocess.DEVNULL}
    if nodes == 1:
        process = subprocess.Popen(
            **common, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return [process], []
    cluster = {"STEPLIFT_NODES": str(nodes), "MASTER_ADDR": "127.0.0.1"}
    cluster["MASTER_PORT"] = str(free_port())
    processes: list[subprocess.Popen[bytes]] = []
    readers: list[threading.Thread] = []
    lock = threading.Lock()
    try:
        for rank in range(nodes):
            process = subprocess.Popen(
                **common,
                env={**environment, **cluster, "NODE_RANK": str(rank)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            processes.append(process)
            assert process.stdout is not None
            reader = threading.Thread(
                target=_prefix_lines,
                args=(process.stdout, log, f"[node {rank}] ".encode(), lock),
                daemon=True,
            )
            reader.start()
            readers.append(reader)
    except OSError:
        _stop(processes, 0.0)
        raise
    return processes, readers


def _node_outcome(processes: list[subprocess.Popen[bytes]]) -> dict[str, Any] | None:
    """The job's outcome once a node failed or all succeeded; None while it runs."""
    codes = [process.poll() for process in processes]
    for rank, code in enumerate(codes):
        if code is None or code == 0:
            continue
        where = f"the command on node {rank}" if len(processes) > 1 else "command"
        if code > 0:
            kind, message = "user_code", f"{where} exited with code {code}"
        else:
            kind, message = (
                "infrastructure",
                f"{where} killed by signal {signal.Signals(-code).name}",
            )
        return {"state": "FAILED", "failure_kind": kind, "message": message, "exit_code": code}
    if all(code == 0 for code in codes):
        return {"state": "SUCCEEDED", "message": "", "exit_code": 0}
    return None


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

    # A launcher that itself runs inside a cluster (a torchrun worker, a cloud job) must not
    # hand its own cluster description to the job: the job's nodes get theirs below.
    environment = {**without_cluster(os.environ), **spec["environment"], "PYTHONUNBUFFERED": "1"}
    log_path = job_dir / "output.log"
    with open(log_path, "ab") as log:
        try:
            processes, readers = _start_nodes(spec, environment, log)
        except OSError as error:
            write_state(
                job_dir,
                state="FAILED",
                failure_kind="image",
                message=f"could not start {spec['command'][0]!r}: {error.strerror or error}",
                supervisor_pid=os.getpid(),
            )
            return 0
        pids = [process.pid for process in processes]
        started = time.monotonic()
        running = {"pid": pids[0], "pids": pids, "supervisor_pid": os.getpid()}
        write_state(job_dir, state="RUNNING", **running)
        max_runtime = spec.get("max_runtime")
        outcome: dict[str, Any] | None = None
        while outcome is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                processes[0].wait(timeout=0.05)
            outcome = _node_outcome(processes)
            if outcome is not None:
                if outcome["state"] == "FAILED":
                    _stop(processes, CANCEL_GRACE)  # a failed node ends the job
            elif cancelled or cancel_flag.exists():
                write_state(job_dir, state="CANCELLING", **running)
                _stop(processes, CANCEL_GRACE)
                outcome = {"state": "CANCELLED", "message": "cancelled on request"}
            elif max_runtime is not None and time.monotonic() - started > max_runtime:
                _stop(processes, CANCEL_GRACE)
                outcome = {
                    "state": "FAILED",
                    "failure_kind": "timeout",
                    "message": f"max runtime of {max_runtime:g} s exceeded",
                }
        for reader in readers:
            reader.join(5.0)
    _finish_log(log_path)
    outcome.setdefault("exit_code", processes[0].returncode)
    write_state(job_dir, supervisor_pid=os.getpid(), **outcome)
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
