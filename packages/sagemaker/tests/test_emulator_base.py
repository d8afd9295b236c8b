"""The cloud-agnostic emulator base: faults, decider, request log, job process, control API."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import pytest

from steplift.testing.emulation import (
    ControlAPI,
    Emulator,
    EmulatorBase,
    EmulatorControl,
    FaultDecider,
    Faults,
    JobProcess,
    RecordedRequest,
    RequestLog,
    ScriptStep,
    group_alive,
    wait_until,
)

# --------------------------------------------------------------------------- Faults


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"throttle_rate": -0.1}, "throttle_rate"),
        ({"throttle_rate": 1.5}, "throttle_rate"),
        ({"error_rate": 2}, "error_rate"),
        ({"error_rate": "0.5"}, "error_rate"),
        ({"throttle_rate": 0.6, "error_rate": 0.6}, "throttle_rate + error_rate"),
        ({"latency": -1}, "latency"),
        ({"latency": float("inf")}, "latency"),
        ({"refuse_create": "money"}, "refuse_create"),
        ({"stuck_in_queue": "yes"}, "stuck_in_queue"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_faults_validation_names_the_field(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("+", r"\+")):
        Faults(**fields)


def test_faults_round_trip_and_unknown_fields() -> None:
    faults = Faults(
        throttle_rate=0.2,
        error_rate=0.1,
        latency=0.5,
        refuse_create="capacity",
        stuck_in_queue=True,
        seed=9,
    )
    assert Faults.from_dict(faults.to_dict()) == faults
    with pytest.raises(ValueError, match="unknown fault field.*bogus"):
        Faults.from_dict({"bogus": 1})


def test_decider_is_deterministic_per_seed_and_operation() -> None:
    faults = Faults(throttle_rate=0.3, error_rate=0.3, seed=42)
    first = FaultDecider(faults)
    second = FaultDecider(faults)
    a = [first.decide("Describe") for _ in range(50)]
    # Interleaving another operation does not shift the stream of this one.
    b = []
    for _ in range(50):
        second.decide("Create")
        b.append(second.decide("Describe"))
    assert a == b
    assert {"throttle", "error", None} == set(a)
    other_seed = FaultDecider(Faults(throttle_rate=0.3, error_rate=0.3, seed=43))
    assert [other_seed.decide("Describe") for _ in range(50)] != a


def test_decider_extremes() -> None:
    assert {FaultDecider(Faults()).decide("X") for _ in range(20)} == {None}
    assert {FaultDecider(Faults(throttle_rate=1.0)).decide("X") for _ in range(20)} == {"throttle"}
    assert {FaultDecider(Faults(error_rate=1.0)).decide("X") for _ in range(20)} == {"error"}


# --------------------------------------------------------------------------- RequestLog


def test_request_log_is_thread_safe_and_filters() -> None:
    log = RequestLog()

    def add(operation: str) -> None:
        for index in range(200):
            log.append(RecordedRequest("svc", operation, {"i": index}))

    threads = [threading.Thread(target=add, args=(op,)) for op in ("A", "B", "A")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(log) == 600
    assert len(log.filter("A")) == 400
    assert log.filter("B", service="other") == []
    log.clear()
    assert log.list() == []


def test_script_step_parsing() -> None:
    assert ScriptStep.parse("Training") == ScriptStep("Training")
    assert ScriptStep.parse({"status": "Failed", "failure_reason": "x"}) == ScriptStep(
        "Failed", "x"
    )
    with pytest.raises(ValueError):
        ScriptStep.parse({"state": "Failed"})
    with pytest.raises(ValueError):
        ScriptStep.parse(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- JobProcess


def _job(
    code: str,
    tmp_path: Path,
    *,
    max_runtime: float | None = None,
    grace: float = 1.0,
    lines: list[str] | None = None,
) -> JobProcess:
    sink = lines if lines is not None else []
    env = {"PATH": "/usr/bin:/bin", "X": "42", "PYTHONUNBUFFERED": "1"}
    return JobProcess(
        ["python", "-c", code],
        env=env,
        cwd=tmp_path,
        on_line=sink.append,
        max_runtime=max_runtime,
        grace=grace,
    )


def test_job_process_streams_lines_and_exit_code(tmp_path: Path) -> None:
    lines: list[str] = []
    code = (
        "import os, sys; print('out', os.environ['X']); "
        "print('err', file=sys.stderr); print(os.getcwd()); sys.exit(4)"
    )
    process = _job(code, tmp_path, lines=lines).start()
    assert process.command[0] == sys.executable
    assert process.wait(10) == 4
    assert lines == ["out 42", "err", str(tmp_path)]
    assert not process.timed_out and not process.terminated


def test_job_process_terminate_kills_the_group(tmp_path: Path) -> None:
    lines: list[str] = []
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
        "print('ready', flush=True); time.sleep(30)"
    )
    process = _job(code, tmp_path, lines=lines).start()
    assert wait_until(lambda: lines == ["ready"], timeout=10)
    started = time.monotonic()
    code_after = process.terminate(grace=1.0)
    assert time.monotonic() - started < 5
    assert code_after == -15
    assert process.terminated and not process.timed_out
    assert process.pid is not None
    assert wait_until(lambda: not group_alive(process.pid or 0), timeout=5)


def test_job_process_sigkills_after_grace(tmp_path: Path) -> None:
    lines: list[str] = []
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ignoring', flush=True); time.sleep(30)"
    )
    process = _job(code, tmp_path, lines=lines).start()
    assert wait_until(lambda: lines == ["ignoring"], timeout=10)
    started = time.monotonic()
    assert process.terminate(grace=0.3) == -9
    assert 0.25 < time.monotonic() - started < 5


def test_job_process_max_runtime(tmp_path: Path) -> None:
    started = time.monotonic()
    process = _job("import time; time.sleep(30)", tmp_path, max_runtime=0.5).start()
    assert process.wait(10) == -15
    assert process.timed_out
    assert time.monotonic() - started < 5


def test_job_process_children_do_not_outlive_it(tmp_path: Path) -> None:
    # The main process exits at once; its child still holds the output pipe.
    code = (
        "import subprocess, sys; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
        "print('bye')"
    )
    process = _job(code, tmp_path).start()
    assert process.wait(10) == 0
    assert wait_until(lambda: not group_alive(process.pid or 0), timeout=5)


def test_job_process_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        JobProcess([], env={}, cwd=tmp_path)
    with pytest.raises(ValueError):
        JobProcess(["true"], env={}, cwd=tmp_path, max_runtime=0)


# --------------------------------------------------------------------------- control API


class FakeEmulator(EmulatorBase):
    """An in-memory emulator: records what the control API asked of it."""

    flavor = "fake"

    def __init__(self) -> None:
        super().__init__("scripted")
        self.preempted: list[str] = []
        self.lost: list[tuple[str, int]] = []
        self.scripts: dict[str | None, list[ScriptStep]] = {}

    @property
    def endpoint_url(self) -> str:
        return "http://127.0.0.1:1"

    def client_env(self) -> dict[str, str]:
        return {}

    def start(self) -> Self:
        return self

    def stop(self) -> None:
        pass

    def preempt(self, job_id: str) -> None:
        if job_id == "missing":
            raise KeyError(job_id)
        if job_id == "done":
            raise ValueError("done is Completed, not running")
        self.preempted.append(job_id)

    def kill_node(self, job_id: str, node: int) -> None:
        if job_id == "missing":
            raise KeyError(job_id)
        if node > 1:
            raise ValueError(f"{job_id} has 2 nodes; there is no node {node}")
        self.lost.append((job_id, node))

    def script(
        self, job_id: str | None, steps: Sequence[ScriptStep | str | Mapping[str, Any]]
    ) -> None:
        self.scripts[job_id] = [ScriptStep.parse(step) for step in steps]

    def job_ids(self) -> list[str]:
        return list(self.preempted)

    def is_running(self, job_id: str) -> bool:
        return False


def _call(app: ControlAPI, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    raw = b"" if body is None else json.dumps(body).encode()
    path, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]]) -> None:
        status.append(line)

    chunks: Iterable[bytes] = app(environ, start_response)
    return int(status[0].split()[0]), json.loads(b"".join(chunks))


def test_control_api_routes() -> None:
    emulator = FakeEmulator()
    assert isinstance(emulator, Emulator)
    passed: list[str] = []

    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        passed.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"{}"]

    app = ControlAPI(emulator, inner)
    assert _call(app, "GET", "/_steplift/health") == (200, {"status": "ok", "mode": "scripted"})
    assert _call(app, "POST", "/_steplift/faults", {"throttle_rate": 0.5}) == (
        200,
        Faults(throttle_rate=0.5).to_dict(),
    )
    assert emulator.faults == Faults(throttle_rate=0.5)
    status, body = _call(app, "POST", "/_steplift/faults", {"throttle_rate": 5})
    assert status == 400 and "throttle_rate" in body["error"]
    assert _call(app, "POST", "/_steplift/faults", {"nope": 1})[0] == 400

    emulator.record("svc", "Create", {"a": 1})
    emulator.record("svc", "Describe", {})
    status, body = _call(app, "GET", "/_steplift/requests?operation=Create")
    assert status == 200 and [r["operation"] for r in body["requests"]] == ["Create"]
    assert len(_call(app, "GET", "/_steplift/requests")[1]["requests"]) == 2

    assert _call(app, "POST", "/_steplift/jobs/job-1/preempt")[0] == 200
    assert emulator.preempted == ["job-1"]
    assert _call(app, "POST", "/_steplift/jobs/missing/preempt")[0] == 404
    assert _call(app, "POST", "/_steplift/jobs/done/preempt")[0] == 409

    assert _call(app, "POST", "/_steplift/jobs/job-1/kill-node", {"node": 1})[0] == 200
    assert emulator.lost == [("job-1", 1)]
    assert _call(app, "POST", "/_steplift/jobs/missing/kill-node", {"node": 0})[0] == 404
    assert _call(app, "POST", "/_steplift/jobs/job-1/kill-node", {"node": 5})[0] == 409
    assert _call(app, "POST", "/_steplift/jobs/job-1/kill-node", {"node": True})[0] == 400
    assert _call(app, "POST", "/_steplift/jobs/job-1/kill-node", {})[0] == 400

    assert (
        _call(app, "POST", "/_steplift/jobs/j/script", {"steps": ["A", {"status": "B"}]})[0] == 200
    )
    assert _call(app, "POST", "/_steplift/script", {"steps": ["C"]})[0] == 200
    assert emulator.scripts == {"j": [ScriptStep("A"), ScriptStep("B")], None: [ScriptStep("C")]}
    assert _call(app, "POST", "/_steplift/script", {"steps": "C"})[0] == 400

    assert _call(app, "POST", "/_steplift/reset")[0] == 200
    assert emulator.faults == Faults() and len(emulator.requests) == 0
    assert _call(app, "DELETE", "/_steplift/faults")[0] == 404

    assert _call(app, "GET", "/other/path") == (200, {})
    assert passed == ["/other/path"]


def test_emulator_latency_applies_to_decisions() -> None:
    emulator = FakeEmulator()
    emulator.set_faults(Faults(latency=0.1))
    started = time.monotonic()
    assert emulator.decide_fault("Op") is None
    assert time.monotonic() - started >= 0.1


def test_control_client_refuses_remote_hosts() -> None:
    for url in ("http://10.0.0.1:80", "https://127.0.0.1:1", "http://example.com"):
        with pytest.raises(ValueError, match="127.0.0.1"):
            EmulatorControl(url)
    assert EmulatorControl("http://localhost:5000/").base_url == "http://localhost:5000"


def test_wait_until_is_bounded() -> None:
    started = time.monotonic()
    assert wait_until(lambda: False, timeout=0.2, interval=0.05) is False
    assert time.monotonic() - started < 1.0
    assert wait_until(lambda: True, timeout=0.2) is True


def test_wait_for_faults_change_wakes_on_set_faults() -> None:
    emulator = FakeEmulator()
    timer = threading.Timer(0.05, emulator.set_faults, args=(Faults(stuck_in_queue=True),))
    started = time.monotonic()
    timer.start()
    emulator.wait_for_faults_change(timeout=5.0)
    timer.join(5)
    assert time.monotonic() - started < 2.0
    assert emulator.faults.stuck_in_queue
