"""Multi-node steps on SageMaker: InstanceCount, refusals, `[node R]` logs, and the emulator's
hosts algo-1..algo-N (each its own cluster view, log stream and process; one failing or lost
host ends the job)."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import signal
import tarfile
import time
from typing import Any

import pytest
from sagemaker_helpers import EmulatorClients, MakeOperator, training_job_request

from steplift.errors import ConfigError, StepFailed
from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.models import JobHandle, Resources, StepRunInfo
from steplift.operator import LaunchObserver
from steplift.runs import Run, RunIndex
from steplift.states import FailureKind
from steplift.testing import ConformanceClock, steps
from steplift.testing.emulation import JobProcess, group_alive, wait_until
from steplift_sagemaker.emulator import SageMakerEmulator
from steplift_sagemaker.requests import build_request

ROLE = "arn:aws:iam::123456789012:role/steplift"
BUCKET = "steplift-emulator-tests"  # created by the `execute` fixture's emulator
BUCKET_URI = f"s3://{BUCKET}/runs"
_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}-{int(time.time())}"


def step_info(step: str, **fields: Any) -> StepRunInfo:
    return StepRunInfo(
        pipeline="p",
        run="multi",
        step=step,
        artifact_uri=f"s3://{BUCKET}/runs/p/multi/{step}/1",
        **fields,
    )


def _streams(clients: EmulatorClients, name: str) -> dict[str, list[str]]:
    """Each log stream of a job (by host) and its lines."""
    answer = clients.logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{name}/"
    )
    lines: dict[str, list[str]] = {}
    for stream in answer["logStreams"]:
        events = clients.logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs",
            logStreamName=stream["logStreamName"],
            startFromHead=True,
        )["events"]
        host = stream["logStreamName"].split("/", 1)[1].rsplit("-", 1)[0]
        lines[host] = [event["message"] for event in events]
    return lines


def _all_gone(processes: list[JobProcess]) -> bool:
    """True when every process (and its process group) has ended."""
    pids = [process.pid for process in processes]
    return all(pid is not None and not group_alive(pid) for pid in pids)


# --------------------------------------------------------------------------- the operator


def test_a_multi_node_request_asks_for_one_instance_per_node(
    scripted: EmulatorClients, make_operator: MakeOperator
) -> None:
    operator = make_operator(scripted.emulator, name="sm", bucket=BUCKET_URI)
    info = step_info("nodes", resources=Resources(nodes=2, gpu="A100:8", processes_per_node="gpu"))
    handle = operator.submit(info, ["python", "-m", "steplift.entrypoint"], {})
    [create] = [
        request.params
        for request in scripted.emulator.requests.filter("CreateTrainingJob")
        if request.params["TrainingJobName"] == handle.job_id
    ]
    assert create["ResourceConfig"] == {
        "InstanceType": "ml.p4d.24xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 30,
    }
    # Each host reads the cluster from SageMaker's own description: no torch variables sent.
    assert "MASTER_ADDR" not in create["Environment"] and "WORLD_SIZE" not in create["Environment"]
    assert handle.extra["instance_count"] == "2"
    assert operator.find_job(info) == handle

    single = operator.submit(step_info("single"), ["python"], {})
    assert "instance_count" not in single.extra
    agreeing = make_operator(scripted.emulator, name="sm", bucket=BUCKET_URI, instance_count=2)
    request = build_request(
        agreeing.config, step_info("agree", resources=Resources(nodes=2)), ["p"], {}
    )
    assert request["ResourceConfig"]["InstanceCount"] == 2


@pytest.mark.parametrize(
    ("fields", "resources", "field"),
    [
        ({"instance_count": 3}, Resources(nodes=2), "instance_count"),
        ({"instance_count": 3}, Resources(), "instance_count"),
        ({}, Resources(nodes=2, gpu="A100:2"), "resources.gpu"),
    ],
    ids=["instance-count-contradicts-nodes", "instance-count-on-one-node", "no-instance-type"],
)
def test_a_step_sagemaker_cannot_run_is_refused_before_any_call(
    scripted: EmulatorClients,
    make_operator: MakeOperator,
    fields: dict[str, Any],
    resources: Resources,
    field: str,
) -> None:
    operator = make_operator(scripted.emulator, name="sm", bucket=BUCKET_URI, **fields)
    before = len(scripted.emulator.requests)
    with pytest.raises(ConfigError) as caught:
        operator.launch(step_info(unique("refused"), resources=resources), ["python"])
    assert caught.value.field == field, str(caught.value)
    assert len(scripted.emulator.requests) == before


def _put_lines(clients: EmulatorClients, stream: str, lines: list[str]) -> None:
    group = "/aws/sagemaker/TrainingJobs"
    with contextlib.suppress(clients.logs.exceptions.ResourceAlreadyExistsException):
        clients.logs.create_log_group(logGroupName=group)
    clients.logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    clients.logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )


def test_logs_of_several_hosts_carry_the_node_rank(
    scripted: EmulatorClients, make_operator: MakeOperator
) -> None:
    operator = make_operator(scripted.emulator, name="sm", bucket=BUCKET_URI)

    def handle(name: str, **extra: str) -> JobHandle:
        return JobHandle(flavor="sagemaker", job_id=name, name=name, extra=extra)

    hosts = unique("hosts")
    for number in (2, 1, 10):
        _put_lines(scripted, f"{hosts}/algo-{number}-1700000000", [f"from {number}"])
    assert operator.read_logs(handle(hosts), None).lines == [
        "[node 0] from 1",
        "[node 1] from 2",
        "[node 9] from 10",
    ]
    # One host restarted by a spot interruption: a second stream, still one node.
    restarted = unique("restarted")
    _put_lines(scripted, f"{restarted}/algo-1-1700000000", ["first"])
    _put_lines(scripted, f"{restarted}/algo-1-1700000100", ["second"])
    assert operator.read_logs(handle(restarted), None).lines == ["first", "second"]
    # The handle knows the job has two hosts before the second one logged anything.
    early = unique("early")
    _put_lines(scripted, f"{early}/algo-1-1700000000", ["up"])
    chunk = operator.read_logs(handle(early, instance_count="2"), None)
    assert chunk.lines == ["[node 0] up"]
    _put_lines(scripted, f"{early}/algo-2-1700000000", ["late"])
    assert operator.read_logs(handle(early, instance_count="2"), chunk.cursor).lines == [
        "[node 1] late"
    ]


# --------------------------------------------------------------------------- the emulator

_REPORT = """
import json, os
from steplift.cluster import read_cluster
config_dir = os.environ['SM_INPUT_CONFIG_DIR']
config = json.load(open(os.path.join(config_dir, 'resourceconfig.json')))
cluster = read_cluster()
host = os.environ['SM_CURRENT_HOST']
open(os.path.join(os.environ['SM_MODEL_DIR'], host + '.txt'), 'w').write(host)
print(json.dumps({
    'current_host': config['current_host'], 'hosts': config['hosts'],
    'sm_hosts': json.loads(os.environ['SM_HOSTS']), 'sm_current_host': host,
    'config_dir': config_dir, 'master': [os.environ['MASTER_ADDR'], os.environ['MASTER_PORT']],
    'cluster': [cluster.source, cluster.nodes, cluster.node_rank, cluster.master_addr,
                cluster.master_port],
}), flush=True)
"""


def test_each_host_of_a_job_has_its_own_cluster_view_and_log_stream(
    execute: EmulatorClients, script: Any
) -> None:
    name = unique("two-hosts")
    execute.sagemaker.create_training_job(
        **training_job_request(name, script(_REPORT), bucket=BUCKET, instance_count=2)
    )
    done = execute.wait_for(name, timeout=20)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    streams = _streams(execute, name)
    assert sorted(streams) == ["algo-1", "algo-2"]
    reports = {host: json.loads(lines[0]) for host, lines in streams.items()}
    port = reports["algo-1"]["master"][1]
    for rank, host in enumerate(["algo-1", "algo-2"]):
        report = reports[host]
        assert report["current_host"] == report["sm_current_host"] == host
        assert report["hosts"] == report["sm_hosts"] == ["algo-1", "algo-2"]
        # algo-N names resolve on SageMaker, not here: every host meets on 127.0.0.1.
        assert report["master"] == ["127.0.0.1", port]
        assert report["cluster"] == ["sagemaker", 2, rank, "127.0.0.1", int(port)]
    assert reports["algo-1"]["config_dir"] != reports["algo-2"]["config_dir"]
    # As on SageMaker, every host's /opt/ml/model ends up in the one model.tar.gz.
    key = f"output/{name}/output/model.tar.gz"
    body = execute.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert sorted(archive.getnames()) == ["algo-1.txt", "algo-2.txt"]


_SECOND_HOST_FAILS = """
import os, sys, time
if os.environ['SM_CURRENT_HOST'] == 'algo-2':
    time.sleep(0.3)
    open(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w').write('host two broke')
    sys.exit(3)
print('waiting', flush=True)
time.sleep(30)
"""


def test_a_failing_host_fails_the_job_naming_it_and_stops_the_others(
    execute: EmulatorClients, script: Any
) -> None:
    name = unique("one-fails")
    started = time.monotonic()
    execute.sagemaker.create_training_job(
        **training_job_request(name, script(_SECOND_HOST_FAILS), bucket=BUCKET, instance_count=2)
    )
    done = execute.wait_for(name, timeout=20)
    assert (done["TrainingJobStatus"], done["SecondaryStatus"]) == ("Failed", "Failed")
    assert done["FailureReason"] == "AlgorithmError: host two broke, exit code: 3 (host algo-2)"
    assert time.monotonic() - started < 15  # not after algo-1's 30 s sleep
    runner = execute.emulator.runner(name)
    assert runner is not None and runner.group is not None
    assert _all_gone(runner.group.processes)
    assert not execute.emulator.is_running(name)


_WAITER = "import time\nprint('started', flush=True)\ntime.sleep(30)\n"


def test_a_spot_interruption_stops_every_host_and_restarts_them(
    execute: EmulatorClients, script: Any
) -> None:
    name = unique("spot-hosts")
    request = training_job_request(
        name, script(_WAITER), bucket=BUCKET, instance_count=2, spot=True
    )
    execute.sagemaker.create_training_job(**request)
    assert wait_until(lambda: _streams(execute, name).get("algo-2") == ["started"], timeout=10)
    runner = execute.emulator.runner(name)
    assert runner is not None and runner.group is not None
    first = runner.group
    execute.emulator.preempt(name)
    assert wait_until(lambda: runner.group is not first and runner.processes_running(), timeout=10)
    assert not first.is_running()
    execute.sagemaker.stop_training_job(TrainingJobName=name)
    done = execute.wait_for(name)
    assert (done["TrainingJobStatus"], done["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert [t["Status"] for t in done["SecondaryStatusTransitions"]].count("Training") == 2
    assert wait_until(lambda: not execute.emulator.is_running(name), timeout=5)
    assert _all_gone([*first.processes, *runner.group.processes])


def test_the_max_runtime_stops_every_host(execute: EmulatorClients, script: Any) -> None:
    name = unique("slow-hosts")
    request = training_job_request(
        name, script(_WAITER), bucket=BUCKET, instance_count=2, max_runtime=1
    )
    execute.sagemaker.create_training_job(**request)
    done = execute.wait_for(name, timeout=15)
    assert (done["TrainingJobStatus"], done["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert _streams(execute, name) == {"algo-1": ["started"], "algo-2": ["started"]}
    runner = execute.emulator.runner(name)
    assert runner is not None and runner.group is not None
    assert wait_until(lambda: not execute.emulator.is_running(name), timeout=5)
    assert _all_gone(runner.group.processes)


class _LoseHostTwo(LaunchObserver):
    """Loses algo-2's instance once node 1 runs the step."""

    def __init__(self, emulator: SageMakerEmulator) -> None:
        self.emulator = emulator
        self.handle: JobHandle | None = None
        self.lines: list[str] = []

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        self.handle = handle

    def on_log(self, line: str) -> None:
        self.lines.append(line)
        if line == "[node 1] rank 1 waiting" and self.handle is not None:
            self.emulator.fail_instance(self.handle.job_id, host=2)


def test_a_lost_host_fails_the_step_naming_it_and_leaves_no_process(
    execute: EmulatorClients, make_operator: MakeOperator, tmp_path: Any
) -> None:
    emulator = execute.emulator
    clock = ConformanceClock()
    operator = make_operator(
        emulator, name="sm", clock=clock.now, sleep=clock.sleep, bucket=BUCKET_URI
    )
    observer = _LoseHostTwo(emulator)
    launcher = StepLauncher(operator, observer=observer, index=RunIndex(tmp_path))
    spec = StepSpec.for_function(steps.fail_on_rank, (7, "never"), {})
    options = StepOptions(resources=Resources(nodes=2))
    with pytest.raises(StepFailed) as caught:
        launcher.run(spec, run=Run(unique("lost")), step="lost-host", options=options)
    assert "[node 1] rank 1 waiting" in observer.lines
    failure = caught.value
    assert failure.failure_kind is FailureKind.INFRASTRUCTURE, str(failure)
    assert "InternalServerError" in str(failure) and "host algo-2 was lost" in str(failure)
    assert observer.handle is not None
    job = observer.handle.job_id
    assert wait_until(lambda: not emulator.is_running(job), timeout=10)
    runner = emulator.runner(job)
    assert runner is not None and runner.group is not None
    assert runner.group.failed_node == 1  # algo-2 went first, killed as a lost machine is
    assert runner.group.exit_codes[1] == -signal.SIGKILL
    assert _all_gone(runner.group.processes)
    with pytest.raises(ValueError, match="algo-1..algo-2"):
        emulator.fail_instance(job, host=3)


def test_one_process_per_gpu_counts_the_instance_types_gpus(
    scripted: EmulatorClients, make_operator: MakeOperator
) -> None:
    operator = make_operator(
        scripted.emulator, name="sm", bucket=BUCKET_URI, instance_type="ml.g5.12xlarge"
    )
    step = step_info("per-gpu", resources=Resources(nodes=2, processes_per_node="gpu"))
    assert (operator.gpus_per_node(step), operator.processes_per_node(step)) == (4, 4)
    cpu = make_operator(
        scripted.emulator, name="sm", bucket=BUCKET_URI, instance_type="ml.m5.xlarge"
    )
    assert cpu.processes_per_node(step) == 1
