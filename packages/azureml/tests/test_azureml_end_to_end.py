"""End to end: the SDK with the azureml flavor against the executing emulator and Azurite."""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azureml_helpers import make_operator, operator_fields, with_framework_images

import steplift
from steplift.errors import StepCancelled, StepFailed
from steplift.models import JobHandle, JobStatus, Resources, StepRunInfo
from steplift.operator import LaunchObserver
from steplift.polling import PollPolicy
from steplift.states import FailureKind, JobState
from steplift.testing import steps
from steplift.testing.emulation import group_alive, wait_until
from steplift_azureml.emulator import AzureMLEmulator
from steplift_azureml.operator import AzureMLStepOperator

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FAST = PollPolicy(initial=0.05, factor=1.5, maximum=0.2)
FAST_POLICY = replace(AzureMLStepOperator.launch_policy, poll=FAST)
_numbers = iter(range(1, 1_000_000))


@pytest.fixture(scope="module")
def shared(execute_emulator: AzureMLEmulator) -> AzureMLStepOperator:
    operator = make_operator(execute_emulator)
    operator.share_clients()
    return operator


def fast_operator(emulator: AzureMLEmulator, shared: AzureMLStepOperator) -> AzureMLStepOperator:
    """An operator that polls fast, on the module's clients."""
    return make_operator(emulator, shared, name="azure", policy=FAST_POLICY)


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def run_name(prefix: str) -> str:
    return f"{prefix}-{int(time.time())}-{next(_numbers)}"


@pytest.fixture
def example_train() -> Iterator[Any]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import train

        yield train.train
    finally:
        sys.path.remove(str(EXAMPLES))
        sys.modules.pop("train", None)


def test_example_step_through_the_sdk_and_config_file_returns_its_metrics(
    execute_emulator: AzureMLEmulator, example_train: Any, isolated_steplift: Path
) -> None:
    fields = operator_fields(execute_emulator)
    lines = ['default_operator = "azure"', "[operators.azure]", 'flavor = "azureml"']
    lines += [f"{key} = {value!r}".replace("'", '"') for key, value in fields.items()]
    (isolated_steplift / "steplift.toml").write_text("\n".join(lines) + "\n")
    created = execute_emulator.created_jobs
    metrics = example_train.with_options(run=run_name("example"))(3)
    assert set(metrics) == {"loss", "test_accuracy", "epochs"}
    assert metrics["epochs"] == 3.0
    assert 0.5 < metrics["test_accuracy"] <= 1.0
    assert execute_emulator.created_jobs == created + 1
    job = list(execute_emulator.jobs.values())[-1]
    assert job.status == "Completed"
    assert b"epoch   3/3" in (job.log_bytes("user_logs/std_log.txt") or b"")


def test_failing_step_raises_step_failed_with_the_remote_traceback(
    execute_emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = fast_operator(execute_emulator, shared)
    failing = steplift.step(operator=operator)(steps.fail_with).with_options(run=run_name("fail"))
    with pytest.raises(StepFailed) as caught:
        failing("bad luck in the cloud")
    failure = caught.value
    assert failure.failure_kind is FailureKind.USER_CODE
    assert failure.remote_type == "builtins.RuntimeError"
    assert failure.remote_message == "bad luck in the cloud"
    assert failure.remote_traceback and "raise RuntimeError(message)" in failure.remote_traceback
    assert failure.handle is not None
    job = execute_emulator.jobs[failure.handle.job_id]
    assert job.status == "Failed"
    assert job.error and job.error["error"]["code"] == "UserError"


class _InterruptWhenRunning(LaunchObserver):
    def __init__(self) -> None:
        self.handle: JobHandle | None = None

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        self.handle = handle

    def on_status(self, status: JobStatus) -> None:
        if status.state is JobState.RUNNING:
            raise KeyboardInterrupt


def _info(
    operator: AzureMLStepOperator, function: Any, *args: Any
) -> tuple[StepRunInfo, list[str]]:
    from steplift.launcher import StepLauncher, StepOptions, StepSpec
    from steplift.runs import Run, RunIndex

    launcher = StepLauncher(operator, index=RunIndex(Path.cwd() / "runs"))
    spec = StepSpec.for_function(function, args, {})
    info = launcher.step_info(
        run=Run(run_name("e2e")), step=function.__name__, attempt=1, options=StepOptions()
    )
    return info, launcher.entrypoint_command(*launcher.prepare(spec, info))


def test_ctrl_c_leaves_the_emulated_job_canceled(
    execute_emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = fast_operator(execute_emulator, shared)
    info, command = _info(operator, steps.sleep_for, 60)
    observer = _InterruptWhenRunning()
    with pytest.raises(StepCancelled) as caught:
        operator.launch(info, command, observer=observer)
    assert caught.value.exit_code == 130
    assert observer.handle is not None
    job = execute_emulator.jobs[observer.handle.job_id]
    assert wait_for(lambda: job.status == "Canceled")
    assert wait_for(lambda: not execute_emulator.is_running(job.name))
    assert execute_emulator.requests.filter("CancelJob")


def test_relaunch_adopts_the_named_job(
    execute_emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = fast_operator(execute_emulator, shared)
    info, command = _info(operator, steps.add_and_log, 20, 22)
    first = operator.submit(info, command, operator.job_environment(info))
    created = execute_emulator.created_jobs
    # A new process (new operator, new clients) launching the same attempt adopts the job.
    fresh = AzureMLStepOperator(operator.config, policy=FAST_POLICY)
    adopted: list[bool] = []

    class Watch(LaunchObserver):
        def on_job(self, handle: JobHandle, was_adopted: bool) -> None:
            adopted.append(was_adopted)
            assert handle == first

    fresh.launch(info, command, observer=Watch())
    assert adopted == [True]
    assert execute_emulator.created_jobs == created
    assert execute_emulator.jobs[first.job_id].status == "Completed"


def test_logs_are_read_incrementally_without_gaps_or_duplicates(
    execute_emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = fast_operator(execute_emulator, shared)
    info = StepRunInfo(
        pipeline="logs",
        run=run_name("logs"),
        step="count",
        artifact_uri="azureblob://devstoreaccount1/steplift-tests/l",
    )
    code = (
        "import time\nfor i in range(300):\n"
        "    print(f'line {i}', flush=True)\n    time.sleep(0.002)\n"
    )
    handle = operator.submit(info, ["python", "-c", code], {})
    lines: list[str] = []
    cursor: str | None = None
    give_up = time.monotonic() + 20
    while time.monotonic() < give_up:
        status = operator.get_status(handle)
        chunk = operator.read_logs(handle, cursor)
        lines += chunk.lines
        cursor = chunk.cursor
        if status.state.is_terminal:
            break
        time.sleep(0.05)
    lines += operator.read_logs(handle, cursor).lines
    assert lines == [f"line {i}" for i in range(300)]


def test_every_process_of_every_instance_runs_with_the_pytorch_distribution_environment(
    execute_emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = fast_operator(execute_emulator, shared)
    info = StepRunInfo(
        pipeline="nodes",
        run=run_name("nodes"),
        step="ranks",
        resources=Resources(nodes=2, processes_per_node=2),
        artifact_uri="azureblob://devstoreaccount1/steplift-tests/n",
    )
    names = ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR")
    code = f"import os; print(*(os.environ[name] for name in {names!r}))"
    handle = operator.submit(info, ["python", "-c", code], {})
    assert wait_for(lambda: operator.get_status(handle).state.is_terminal)
    assert operator.get_status(handle).state is JobState.SUCCEEDED
    job = execute_emulator.jobs[handle.job_id]
    # Azure ML's names: one log per process (global rank), no std_log.txt.
    assert sorted(job.logs) == [f"user_logs/std_log_process_{rank}.txt" for rank in range(4)]
    for rank in range(4):
        expected = f"{rank} {rank % 2} {rank // 2} 4 2 127.0.0.1\n".encode()
        assert job.log_bytes(f"user_logs/std_log_process_{rank}.txt") == expected
    chunk = operator.read_logs(handle, None)
    assert sorted(chunk.lines) == sorted(
        f"[node {rank // 2}] {rank} {rank % 2} {rank // 2} 4 2 127.0.0.1" for rank in range(4)
    )
    assert operator.read_logs(handle, chunk.cursor).lines == []


def _kill_node_over_the_control_api(emulator: AzureMLEmulator, job_id: str, node: Any) -> int:
    assert emulator.control_url is not None
    request = urllib.request.Request(
        f"{emulator.control_url}/_steplift/jobs/{job_id}/kill-node",
        data=json.dumps({"node": node}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)


def test_a_killed_node_fails_the_step_naming_it_and_stops_every_process(
    execute_emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    from steplift.launcher import StepLauncher, StepOptions, StepSpec
    from steplift.runs import Run, RunIndex

    operator = fast_operator(execute_emulator, shared)
    refusals: list[int] = []
    pids: list[int | None] = []
    lines: list[str] = []

    class KillNodeOne(LaunchObserver):
        handle: JobHandle | None = None

        def on_job(self, handle: JobHandle, adopted: bool) -> None:
            self.handle = handle

        def on_log(self, line: str) -> None:
            lines.append(line)
            if "rank 3 waiting" in line and self.handle is not None and not pids:
                job = execute_emulator.jobs[self.handle.job_id]
                pids.extend(process.pid for process in job.processes)
                refusals.append(_kill_node_over_the_control_api(execute_emulator, job.name, 2))
                assert _kill_node_over_the_control_api(execute_emulator, job.name, 1) == 200

    observer = KillNodeOne()
    launcher = StepLauncher(operator, observer=observer, index=RunIndex(Path.cwd() / "runs"))
    spec = StepSpec.for_function(steps.fail_on_rank, (7, "never"), {})
    options = StepOptions(resources=Resources(nodes=2, processes_per_node=2))
    with pytest.raises(StepFailed) as caught:
        launcher.run(spec, run=Run(run_name("kill")), step="lost-node", options=options)
    assert len(pids) == 4, lines
    assert refusals == [409]  # the job has instances 0 and 1 only
    failure = caught.value
    assert failure.failure_kind is FailureKind.INFRASTRUCTURE, str(failure)
    assert "Node 1 of the job was lost" in str(failure)
    assert failure.handle is not None
    job = execute_emulator.jobs[failure.handle.job_id]
    assert job.error and job.error["error"]["innerError"]["code"] == "NodeFailure"
    assert wait_for(lambda: not execute_emulator.is_running(job.name))
    assert not [pid for pid in pids if pid is not None and group_alive(pid)]
    assert _kill_node_over_the_control_api(execute_emulator, job.name, 0) == 409  # ended


def test_the_emulator_refuses_a_distribution_it_cannot_run(
    execute_emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    from azure.ai.ml import MpiDistribution

    operator = fast_operator(execute_emulator, shared)
    info = StepRunInfo(
        pipeline="mpi",
        run=run_name("mpi"),
        step="ranks",
        resources=Resources(nodes=2),
        artifact_uri="azureblob://devstoreaccount1/steplift-tests/m",
    )
    job = operator.build_job(info, ["python", "-c", "pass"], {})
    job.distribution = MpiDistribution(process_count_per_instance=2)
    created = execute_emulator.created_jobs
    with pytest.raises(HttpResponseError) as caught:
        operator.create_client.jobs.create_or_update(job)
    assert "PyTorch distributions, not 'Mpi'" in str(caught.value)
    assert execute_emulator.created_jobs == created


def test_the_emulator_enforces_limits_timeout(
    execute_emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = fast_operator(execute_emulator, shared)
    info = StepRunInfo(
        pipeline="limits",
        run=run_name("limits"),
        step="slow",
        max_runtime=1,
        artifact_uri="azureblob://devstoreaccount1/steplift-tests/t",
    )
    handle = operator.submit(info, ["python", "-c", "import time; time.sleep(60)"], {})
    assert wait_for(lambda: operator.get_status(handle).state.is_terminal)
    status = operator.get_status(handle)
    assert (status.state, status.failure_kind) == (JobState.FAILED, FailureKind.TIMEOUT)
    assert not execute_emulator.is_running(handle.job_id)


def test_capacity_refusal_fails_the_job_with_capacity(
    execute_emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    from steplift.testing.emulation import Faults

    operator = fast_operator(execute_emulator, shared)
    info = StepRunInfo(
        pipeline="cap",
        run=run_name("cap"),
        step="big",
        artifact_uri="azureblob://devstoreaccount1/steplift-tests/c",
    )
    execute_emulator.set_faults(Faults(refuse_create="capacity"))
    try:
        handle = operator.submit(info, ["python", "-c", "pass"], {})
        assert wait_for(lambda: operator.get_status(handle).state.is_terminal)
    finally:
        execute_emulator.set_faults(Faults())
    status = operator.get_status(handle)
    assert (status.state, status.failure_kind) == (JobState.FAILED, FailureKind.CAPACITY)


def test_stopping_the_emulator_leaves_nothing_running() -> None:
    before = {thread.name for thread in threading.enumerate()}
    emulator = with_framework_images(AzureMLEmulator("execute", stop_grace=0.5))
    with emulator:
        patch = pytest.MonkeyPatch()
        for key, value in emulator.client_env().items():
            patch.setenv(key, value)
        try:
            operator = make_operator(emulator, policy=FAST_POLICY)
            info = StepRunInfo(
                pipeline="stop",
                run=run_name("stop"),
                step="forever",
                artifact_uri="azureblob://devstoreaccount1/steplift-tests/s",
            )
            handle = operator.submit(info, ["python", "-c", "import time; time.sleep(600)"], {})
            assert wait_for(lambda: emulator.is_running(handle.job_id))
            pid = emulator.jobs[handle.job_id].processes[0].pid
        finally:
            patch.undo()
    assert not emulator.is_running(handle.job_id)
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

    def leftovers() -> set[str]:
        names = {thread.name for thread in threading.enumerate()} - before
        return {name for name in names if name.startswith(("azureml-", "job-", "cancel-"))}

    assert wait_for(lambda: not leftovers(), timeout=5), leftovers()


def test_a_client_gone_mid_request_is_a_debug_line_not_a_traceback(
    scripted_emulator: AzureMLEmulator,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    port = int(scripted_emulator.endpoint_url.rsplit(":", 1)[1].split("/")[0])
    tls = ssl.create_default_context(cafile=str(scripted_emulator.cert_path))
    request = "PUT /subscriptions/s/resourceGroups/r HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    halves = [
        (request + "Content-Le").encode(),  # gone within the headers
        (request + 'Content-Length: 100\r\n\r\n{"prop').encode(),  # gone within the body
    ]
    for half, reset in itertools.product(halves, (False, True)):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        with tls.wrap_socket(raw, server_hostname="127.0.0.1") as client:
            client.sendall(half)
            if reset:  # closed with a reset instead of a TLS close or a FIN
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # The server's request threads may not have read the halves yet: wait for the debug line,
    # then for every request to be handled, before reading stderr.
    assert wait_until(
        lambda: any("went away" in record.getMessage() for record in caplog.records), timeout=5
    )
    assert wait_until(lambda: not request_threads(), timeout=5)  # every request handled
    assert "Traceback" not in capsys.readouterr().err


def request_threads() -> list[threading.Thread]:
    """The emulators' request threads still running (socketserver names them so)."""
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]
