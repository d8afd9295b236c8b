"""Multi-node jobs on the Vertex emulator: a process per replica with its own CLUSTER_SPEC,
log entries per replica, the job's end decided by all of them, and the operator's view."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from vertex_support import PARENT, OperatorFactory, job_body, job_client

from steplift.errors import StepFailed
from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.models import JobHandle, Resources
from steplift.operator import LaunchObserver
from steplift.runs import Run, RunIndex
from steplift.states import FailureKind, JobState
from steplift.testing import ConformanceClock, steps
from steplift.testing.emulation import group_alive, wait_until
from steplift_vertex.emulator import VertexEmulator
from steplift_vertex.logs import read_job_logs

PY = sys.executable
SLEEPER = "import time; print('up', flush=True); time.sleep(60)"


def pools_body(chief: str, workers: str, replicas: int = 2, **spec: Any) -> dict[str, Any]:
    """A CustomJob of a chief pool running ``chief`` and ``replicas`` workers running
    ``workers`` (Python source)."""
    body = job_body([PY, "-c", chief], **spec)
    pool = copy.deepcopy(body["job_spec"]["worker_pool_specs"][0])
    pool["replica_count"] = replicas
    pool["container_spec"]["command"] = [PY, "-c", workers]
    body["job_spec"]["worker_pool_specs"].append(pool)
    return body


def entries(emulator: VertexEmulator, number: str) -> list[dict[str, Any]]:
    """The job's log entries, through the emulated Cloud Logging API."""
    answer = emulator.logbook.list(
        {
            "resourceNames": [f"projects/{emulator.project}"],
            "filter": f'resource.type="ml_job" AND resource.labels.job_id="{number}"',
            "pageSize": 1000,
        }
    )
    found: list[dict[str, Any]] = answer.get("entries", [])
    return found


def state_of(emulator: VertexEmulator, number: str) -> str:
    return emulator.jobs.get_job(number).state


def test_every_replica_runs_with_its_own_cluster_spec_and_log_entries(
    make_operator: OperatorFactory,
    emulator: VertexEmulator,
) -> None:
    code = (
        "import json, os\n"
        "from steplift.cluster import read_cluster\n"
        "spec = json.loads(os.environ['CLUSTER_SPEC'])\n"
        "node = read_cluster()\n"
        "print(json.dumps({'spec': spec, 'node': node.node_rank, 'nodes': node.nodes,"
        " 'master': f'{node.master_addr}:{node.master_port}', 'cwd': os.getcwd()}))\n"
    )
    job = job_client(emulator).create_custom_job(parent=PARENT, custom_job=pools_body(code, code))
    number = job.name.rsplit("/", 1)[-1]
    assert wait_until(lambda: state_of(emulator, number) == "JOB_STATE_SUCCEEDED", timeout=20)

    printed = {
        entry["resource"]["labels"]["task_name"]: json.loads(entry["textPayload"])
        for entry in entries(emulator, number)
    }
    assert sorted(printed) == ["workerpool0-0", "workerpool1-0", "workerpool1-1"]
    cluster = printed["workerpool0-0"]["spec"]["cluster"]
    addresses = [*cluster["workerpool0"], *cluster["workerpool1"]]
    assert len(cluster["workerpool0"]) == 1 and len(cluster["workerpool1"]) == 2
    assert all(address.startswith("127.0.0.1:") for address in addresses)
    assert len(set(addresses)) == 3  # a port of its own for every replica
    for rank, task in enumerate(["workerpool0-0", "workerpool1-0", "workerpool1-1"]):
        seen = printed[task]
        pool, index = task.split("-")
        assert seen["spec"]["task"] == {"type": pool, "index": int(index)}
        assert seen["spec"]["cluster"] == cluster and seen["spec"]["environment"] == "cloud"
        assert json.loads(seen["spec"]["job"])["worker_pool_specs"][1]["replicaCount"] == 2
        # steplift's reading of it: node order is the chief, then the workers.
        assert (seen["node"], seen["nodes"], seen["master"]) == (rank, 3, addresses[0])
    assert len({seen["cwd"] for seen in printed.values()}) == 3  # a machine each

    # The operator names each node in the logs (and a one-node job stays unprefixed).
    operator = make_operator(emulator)
    lines = operator.read_logs(operator._handle(job), None).lines
    assert sorted(line.split("] ")[0] for line in lines) == ["[node 0", "[node 1", "[node 2"]
    assert json.loads(lines[0].split("] ", 1)[1])["node"] == int(lines[0][len("[node ")])


def test_the_job_succeeds_only_once_every_replica_exited_zero(
    emulator: VertexEmulator, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    waiter = (
        "import os, time\n"
        f"while not os.path.exists({str(release)!r}):\n"
        "    time.sleep(0.01)\n"
        "print('worker released', flush=True)\n"
    )
    body = pools_body("print('chief done', flush=True)", waiter, replicas=1)
    job = job_client(emulator).create_custom_job(parent=PARENT, custom_job=body)
    number = job.name.rsplit("/", 1)[-1]
    emulated = emulator.jobs.get_job(number)
    assert wait_until(
        lambda: emulated.nodes is not None and emulated.nodes.exit_codes[0] == 0, timeout=20
    )
    assert emulated.state == "JOB_STATE_RUNNING" and emulator.is_running(number)
    release.touch()
    assert wait_until(lambda: emulated.state == "JOB_STATE_SUCCEEDED", timeout=20)
    assert not emulator.is_running(number)


def test_the_first_failing_replica_fails_the_job_naming_it_and_stops_the_others(
    make_operator: OperatorFactory,
    emulator: VertexEmulator,
) -> None:
    worker = (
        "import json, os, sys, time\n"
        "index = json.loads(os.environ['CLUSTER_SPEC'])['task']['index']\n"
        "if index == 1:\n"
        "    sys.exit(3)\n"
        "time.sleep(60)\n"
    )
    job = job_client(emulator).create_custom_job(
        parent=PARENT, custom_job=pools_body(SLEEPER, worker)
    )
    number = job.name.rsplit("/", 1)[-1]
    operator = make_operator(emulator)
    handle = operator._handle(job)
    assert wait_until(lambda: operator.get_status(handle).state is JobState.FAILED, timeout=20)
    status = operator.get_status(handle)
    assert status.message.startswith("The replica workerpool1-1 exited with a non-zero status")
    assert status.failure_kind is FailureKind.USER_CODE and status.exit_code == 3
    assert wait_until(lambda: not emulator.is_running(number), timeout=10)


@pytest.mark.parametrize("end", ["cancel", "timeout", "preempt"])
def test_cancel_timeout_and_preemption_stop_every_replica(
    emulator: VertexEmulator, end: str
) -> None:
    spec: dict[str, Any] = {"scheduling": {"strategy": "SPOT"}}
    if end == "timeout":
        spec["scheduling"]["timeout"] = {"seconds": 1}
    client = job_client(emulator)
    job = client.create_custom_job(parent=PARENT, custom_job=pools_body(SLEEPER, SLEEPER, **spec))
    number = job.name.rsplit("/", 1)[-1]
    emulated = emulator.jobs.get_job(number)
    assert wait_until(lambda: len(entries(emulator, number)) == 3, timeout=20)  # all up
    assert emulated.nodes is not None
    pids = [process.pid for process in emulated.nodes.processes]
    if end == "cancel":
        client.cancel_custom_job(name=job.name)
    elif end == "preempt":
        emulator.preempt(number)
    expected = {"cancel": "JOB_STATE_CANCELLED"}.get(end, "JOB_STATE_FAILED")
    assert wait_until(lambda: emulated.state == expected, timeout=20)
    assert not emulator.is_running(number)
    assert not any(pid is not None and group_alive(pid) for pid in pids)
    if end != "cancel":
        reason = {"timeout": "timeout", "preempt": "Spot VM"}[end]
        assert reason in emulated.resource["error"]["message"]


def test_a_killed_replica_fails_the_step_naming_it_and_leaves_no_process(
    make_operator: OperatorFactory, emulator: VertexEmulator, tmp_path: Path
) -> None:
    killed: list[JobHandle] = []

    class KillNodeOne(LaunchObserver):
        def __init__(self) -> None:
            self.handle: JobHandle | None = None
            self.lines: list[str] = []

        def on_job(self, handle: JobHandle, adopted: bool) -> None:
            self.handle = handle

        def on_log(self, line: str) -> None:
            self.lines.append(line)
            if line == "[node 1] rank 1 waiting" and self.handle and not killed:
                killed.append(self.handle)
                emulator.kill_node(self.handle.extra["job_number"], 1)  # a host lost

    observer = KillNodeOne()
    operator = make_operator(emulator, clock=ConformanceClock())
    launcher = StepLauncher(operator, observer=observer, index=RunIndex(tmp_path / "runs"))
    # Bounded, so that a missed kill fails the test in seconds rather than a minute.
    spec = StepSpec.for_function(steps.fail_on_rank, (7, "never", 20.0), {})
    options = StepOptions(resources=Resources(nodes=2))
    with pytest.raises(StepFailed) as caught:
        launcher.run(spec, run=Run("vertex-kill-node"), step="killed", options=options)
    assert killed, observer.lines
    failure = caught.value
    assert "workerpool1-0" in str(failure) and "status of 137" in str(failure)
    assert failure.failure_kind is FailureKind.INFRASTRUCTURE, str(failure)
    number = killed[0].extra["job_number"]
    group = emulator.jobs.get_job(number).nodes
    assert group is not None
    assert wait_until(lambda: not emulator.is_running(number), timeout=10)
    assert not any(p.pid is not None and group_alive(p.pid) for p in group.processes)


def test_kill_node_refuses_unknown_jobs_ended_jobs_and_missing_replicas(
    emulator: VertexEmulator,
) -> None:
    with pytest.raises(KeyError):
        emulator.kill_node("404", 0)
    client = job_client(emulator)
    job = client.create_custom_job(parent=PARENT, custom_job=pools_body(SLEEPER, SLEEPER))
    number = job.name.rsplit("/", 1)[-1]
    assert wait_until(lambda: state_of(emulator, number) == "JOB_STATE_RUNNING", timeout=20)
    with pytest.raises(ValueError, match="3 replicas; there is no node 3"):
        emulator.kill_node(number, 3)
    client.cancel_custom_job(name=job.name)
    assert wait_until(lambda: state_of(emulator, number) == "JOB_STATE_CANCELLED", timeout=20)
    with pytest.raises(ValueError, match="not running"):
        emulator.kill_node(number, 0)


def test_log_lines_carry_their_node_only_when_the_job_has_several() -> None:
    def entry(number: int, task: str, text: str) -> dict[str, Any]:
        return {
            "timestamp": f"2026-11-25T10:00:00.00000{number}Z",
            "insertId": str(number),
            "resource": {"type": "ml_job", "labels": {"job_id": "42", "task_name": task}},
            "textPayload": text,
        }

    listed = [
        entry(1, "workerpool0-0", "chief"),
        entry(2, "workerpool1-1", "third\nmachine"),
        entry(3, "service", "Job is running."),
        entry(4, "workerpool1-0", "second"),
    ]

    def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"entries": listed}

    several = read_job_logs(post, "http://127.0.0.1:1", "p", "42", None, nodes=3)
    assert several.lines == [
        "[node 0] chief",
        "[node 2] third",
        "[node 2] machine",
        "Job is running.",
        "[node 1] second",
    ]
    one = read_job_logs(post, "http://127.0.0.1:1", "p", "42", None)
    assert one.lines == ["chief", "third", "machine", "Job is running.", "second"]
