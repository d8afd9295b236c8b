"""The Vertex emulator with the real aiplatform client: routes, wire format, validation,
lifecycle, faults, logs and its control API."""

from __future__ import annotations

import itertools
import json
import logging
import socket
import struct
import sys
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core import exceptions
from vertex_support import PARENT, OperatorFactory, job_body, job_client

from steplift.models import StepRunInfo
from steplift.states import FailureKind, JobState
from steplift.testing.emulation import EmulatorControl, Faults, ScriptStep, wait_until
from steplift_vertex.emulator import VertexEmulator
from steplift_vertex.logs import read_job_logs
from steplift_vertex.requests import attempt_label

PY = sys.executable


def raw(
    emulator: VertexEmulator, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        emulator.endpoint_url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def step_info(run: str = "r1") -> StepRunInfo:
    return StepRunInfo(
        pipeline="p", run=run, step="s", artifact_uri=f"gs://steplift-staging/steplift/p/{run}/s/1"
    )


# -- the emulator protocol ----------------------------------------------------------------


def test_the_emulator_names_its_flavor_operator_config_and_attempt_keys(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    assert scripted.flavor == "vertex"
    config = scripted.operator_config(spot=True, location="europe-west4")
    assert config["flavor"] == "vertex" and config["spot"] is True
    assert config["location"] == "europe-west4"
    assert config["api_endpoint"] == scripted.endpoint_url
    handle = make_operator(scripted).submit(step_info(), ["true"], {})
    by_number = scripted.attempt_key(handle.extra["job_number"])
    assert by_number == scripted.attempt_key(handle.job_id) == attempt_label(step_info())
    with pytest.raises(KeyError):
        scripted.attempt_key("404")


# -- routes, errors and the wire format -----------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_create_get_list_cancel_delete_with_the_real_client(
    scripted: VertexEmulator, version: str
) -> None:
    client = job_client(scripted, version)
    job = client.create_custom_job(parent=PARENT, custom_job=job_body())
    assert job.name.startswith(f"{PARENT}/customJobs/")
    assert job.create_time is not None and job.display_name == "emulator-test"
    assert client.get_custom_job(name=job.name).state.name == "JOB_STATE_PENDING"
    assert [found.name for found in client.list_custom_jobs(parent=PARENT)] == [job.name]
    client.cancel_custom_job(name=job.name)
    assert client.get_custom_job(name=job.name).state.name == "JOB_STATE_CANCELLED"
    client.delete_custom_job(name=job.name).result(timeout=5)
    with pytest.raises(exceptions.NotFound):
        client.get_custom_job(name=job.name)
    assert raw(scripted, "GET", f"/{version}/{job.name}")[0] == 404


def test_errors_come_in_googles_json_shape(scripted: VertexEmulator) -> None:
    status, body = raw(scripted, "GET", f"/v1/{PARENT}/customJobs/123")
    assert status == 404
    assert body["error"]["code"] == 404 and body["error"]["status"] == "NOT_FOUND"
    status, body = raw(scripted, "GET", "/v2/nothing")
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
    status, body = raw(scripted, "POST", f"/v1/{PARENT}/customJobs", {"displayName": "x"})
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    assert "custom_job.job_spec" in body["error"]["message"]


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_an_unknown_field_is_refused_not_echoed(scripted: VertexEmulator, version: str) -> None:
    wire = {
        "displayName": "unknown-fields",
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-4", "gpuCount": 1},
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": "local/test", "command": ["true"]},
                }
            ]
        },
        "priority": "high",
    }
    status, body = raw(scripted, "POST", f"/{version}/{PARENT}/customJobs", wire)
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT", body
    message = body["error"]["message"]
    assert "Unknown name \"priority\" at 'custom_job': Cannot find field." in message
    assert (
        'Unknown name "gpuCount" at '
        "'custom_job.job_spec.worker_pool_specs[0].machine_spec': Cannot find field."
    ) in message
    assert scripted.submissions() == 0
    # Known fields pass, in their JSON or their proto spelling.
    del wire["priority"]
    del wire["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]["gpuCount"]
    wire["job_spec"] = wire.pop("jobSpec")
    status, body = raw(scripted, "POST", f"/{version}/{PARENT}/customJobs", wire)
    assert status == 200, body
    assert "priority" not in body


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {
                "machine_spec": {
                    "machine_type": "n1-standard-4",
                    "accelerator_type": 11,
                    "accelerator_count": 1,
                }
            },
            "machine_spec",
        ),
        ({"replica_count": 2}, "exactly 1 replica"),
        (
            {
                "machine_spec": {
                    "machine_type": "a2-highgpu-8g",
                    "accelerator_type": 8,
                    "accelerator_count": 2,
                }
            },
            "exactly 8",
        ),
        ({"container_spec": {"command": ["x"]}}, "image_uri"),
        ({"disk_spec": {"boot_disk_size_gb": 10}}, "boot_disk_size_gb"),
    ],
)
def test_the_service_validation_refuses_bad_jobs(
    scripted: VertexEmulator, change: dict[str, Any], words: str
) -> None:
    body = job_body()
    body["job_spec"]["worker_pool_specs"][0].update(change)
    with pytest.raises(exceptions.BadRequest) as caught:
        job_client(scripted).create_custom_job(parent=PARENT, custom_job=body)
    assert words in caught.value.message
    assert scripted.submissions() == 0


@pytest.mark.parametrize(
    "machine_type", ["n1-standard-3", "n1-standard-128", "a2-highgpu-3g", "g2-standard-20"]
)
def test_a_size_its_family_lacks_is_refused(scripted: VertexEmulator, machine_type: str) -> None:
    body = job_body()
    body["job_spec"]["worker_pool_specs"][0]["machine_spec"] = {"machine_type": machine_type}
    with pytest.raises(exceptions.BadRequest) as caught:
        job_client(scripted).create_custom_job(parent=PARENT, custom_job=body)
    assert f'Machine type "{machine_type}" is not supported.' in caught.value.message
    assert "machine_spec.machine_type" in caught.value.message
    assert scripted.submissions() == 0


@pytest.mark.parametrize(
    "machine_spec",
    [
        {"machine_type": "n1-standard-96"},
        {"machine_type": "e2-highmem-16"},
        {"machine_type": "g2-standard-48"},
        {"machine_type": "a2-highgpu-4g", "accelerator_type": 8, "accelerator_count": 4},
        {"machine_type": "a3-highgpu-8g"},
    ],
    ids=lambda spec: spec["machine_type"],
)
def test_the_sizes_of_each_family_are_taken(
    scripted: VertexEmulator, machine_spec: dict[str, Any]
) -> None:
    body = job_body()
    body["job_spec"]["worker_pool_specs"][0]["machine_spec"] = machine_spec
    job = job_client(scripted).create_custom_job(parent=PARENT, custom_job=body)
    assert (
        job.job_spec.worker_pool_specs[0].machine_spec.machine_type == machine_spec["machine_type"]
    )


def test_labels_and_display_names_are_checked(scripted: VertexEmulator) -> None:
    client = job_client(scripted)
    with pytest.raises(exceptions.BadRequest, match="label key"):
        client.create_custom_job(parent=PARENT, custom_job=job_body(labels={"Upper": "x"}))
    body = job_body()
    body["display_name"] = "x" * 129
    with pytest.raises(exceptions.BadRequest, match="display_name"):
        client.create_custom_job(parent=PARENT, custom_job=body)


def test_enums_travel_as_names_or_numbers_and_int64_as_strings(scripted: VertexEmulator) -> None:
    job = {
        "displayName": "wire",
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {
                        "machineType": "g2-standard-4",
                        "acceleratorType": "NVIDIA_L4",
                        "acceleratorCount": 1,
                    },
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": "i", "command": ["true"]},
                }
            ],
            "scheduling": {"strategy": "SPOT", "timeout": "60s"},
        },
    }
    status, named = raw(scripted, "POST", f"/v1/{PARENT}/customJobs", job)
    assert status == 200
    assert named["state"] == "JOB_STATE_QUEUED"
    pool = named["jobSpec"]["workerPoolSpecs"][0]
    assert pool["machineSpec"]["acceleratorType"] == "NVIDIA_L4"
    assert pool["replicaCount"] == "1" and named["jobSpec"]["scheduling"]["strategy"] == "SPOT"
    assert "error" not in named and "startTime" not in named  # defaults omitted
    status, numbered = raw(scripted, "GET", f"/v1/{named['name']}?$alt=json;enum-encoding=int")
    assert numbered["state"] == 2  # one scripted step: PENDING
    assert numbered["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]["acceleratorType"] == 11
    assert numbered["jobSpec"]["scheduling"] == {"strategy": 4, "timeout": "60s"}
    status, body = raw(
        scripted,
        "POST",
        f"/v1/{PARENT}/customJobs",
        {**job, "jobSpec": {**job["jobSpec"], "scheduling": {"strategy": 99}}},
    )
    assert status == 400 and "strategy" in body["error"]["message"]


def test_list_pages_and_filters_on_labels_and_state(scripted: VertexEmulator) -> None:
    client = job_client(scripted)
    names = []
    scripted.script(None, ["PENDING", "RUNNING", "RUNNING", "RUNNING"])
    for index in range(5):
        job = client.create_custom_job(
            parent=PARENT, custom_job=job_body(labels={"team": "a" if index % 2 else "b"})
        )
        names.append(job.name)
    pager = client.list_custom_jobs(request={"parent": PARENT, "page_size": 2})
    # Newest first; in scripted mode each job on a page moves one step, as on a get.
    listed = list(pager)
    assert [job.name for job in listed] == names[::-1]
    assert {job.state.name for job in listed} == {"JOB_STATE_PENDING"}
    assert len(scripted.requests.filter("ListCustomJobs")) == 3
    team_a = client.list_custom_jobs(request={"parent": PARENT, "filter": 'labels.team="a"'})
    assert sorted(job.name for job in team_a) == sorted(names[1::2])  # now RUNNING
    pending = client.list_custom_jobs(
        request={"parent": PARENT, "filter": 'state="JOB_STATE_PENDING" OR labels.team="zzz"'}
    )
    assert sorted(job.name for job in pending) == sorted(names[0::2])  # chosen, then moved
    both = client.list_custom_jobs(
        request={"parent": PARENT, "filter": 'labels.team="b" AND NOT state="JOB_STATE_PENDING"'}
    )
    assert sorted(job.name for job in both) == sorted(names[0::2])
    stamp = client.get_custom_job(name=names[3]).create_time.rfc3339()
    since = client.list_custom_jobs(
        request={"parent": PARENT, "filter": f'labels.team:* AND create_time>="{stamp}"'}
    )
    assert [job.name for job in since] == [names[4], names[3]]
    with pytest.raises(exceptions.BadRequest, match="filter"):
        list(client.list_custom_jobs(request={"parent": PARENT, "filter": "labels.team="}))
    with pytest.raises(exceptions.BadRequest, match="page token"):
        list(client.list_custom_jobs(request={"parent": PARENT, "page_token": "garbage"}))


def test_cancel_and_delete_follow_the_job_state(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    client = job_client(scripted)
    job = client.create_custom_job(parent=PARENT, custom_job=job_body())
    with pytest.raises(exceptions.BadRequest):
        client.delete_custom_job(name=job.name)
    for _ in range(3):
        client.get_custom_job(name=job.name)
    assert client.get_custom_job(name=job.name).state.name == "JOB_STATE_SUCCEEDED"
    with pytest.raises(exceptions.BadRequest):
        client.cancel_custom_job(name=job.name)
    # The operator treats a cancel of a finished job as done.
    operator = make_operator(scripted)
    operator.cancel(operator._handle(job))


# -- scripted mode -----------------------------------------------------------------------------


def test_scripts_drive_states_and_failure_kinds(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(scripted)
    scripted.script(
        None,
        [
            "QUEUED",
            "RUNNING",
            ScriptStep("FAILED", "RESOURCE_EXHAUSTED: GPU quota exceeded in region"),
        ],
    )
    handle = operator.submit(step_info(), ["true"], {})
    states = [operator.get_status(handle) for _ in range(4)]
    assert [status.provider_state for status in states] == ["QUEUED", "RUNNING", "FAILED", "FAILED"]
    assert states[-1].failure_kind is FailureKind.QUOTA
    second = operator.submit(step_info("r2"), ["true"], {})
    scripted.script(second.job_id, ["EXPIRED"])
    assert operator.get_status(second).failure_kind is FailureKind.CAPACITY
    with pytest.raises(ValueError, match="unknown Vertex job state"):
        scripted.script(None, ["DANCING"])
    with pytest.raises(ValueError, match="no such job"):
        scripted.script("999", ["RUNNING"])
    scripted.reset()
    third = operator.submit(step_info("r3"), ["true"], {})
    assert [operator.get_status(third).state for _ in range(3)][-1] is JobState.SUCCEEDED


# -- faults ------------------------------------------------------------------------------------


def test_throttling_and_5xx_are_retried_by_get_status(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(scripted)
    handle = operator.submit(step_info(), ["true"], {})
    scripted.set_faults(Faults(throttle_rate=0.4, error_rate=0.3, seed=7))
    for _ in range(6):
        assert operator.get_status(handle).state in (
            JobState.PENDING,
            JobState.RUNNING,
            JobState.SUCCEEDED,
        )
    gets = scripted.requests.filter("GetCustomJob")
    assert len(gets) > 6  # some answers were 429/503 and were asked again


def test_latency_is_added_to_control_calls(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    import time

    operator = make_operator(scripted)
    scripted.set_faults(Faults(latency=0.1))
    started = time.monotonic()
    assert operator.find_job(step_info()) is None
    assert time.monotonic() - started >= 0.1


def test_capacity_and_stuck_in_queue(
    make_operator: OperatorFactory, emulator: VertexEmulator
) -> None:
    operator = make_operator(emulator)
    emulator.set_faults(Faults(stuck_in_queue=True))
    handle = operator.submit(step_info(), [PY, "-c", "print('ran')"], {})
    assert operator.get_status(handle).provider_state == "QUEUED"
    assert operator.get_status(handle).state is JobState.PENDING
    emulator.set_faults(Faults(refuse_create="capacity"))
    assert wait_until(lambda: operator.get_status(handle).state is JobState.FAILED, timeout=10)
    status = operator.get_status(handle)
    assert status.failure_kind is FailureKind.CAPACITY
    assert "insufficient" in status.message


def test_only_running_spot_jobs_can_be_preempted(
    make_operator: OperatorFactory, emulator: VertexEmulator
) -> None:
    operator = make_operator(emulator)
    handle = operator.submit(step_info(), [PY, "-c", "import time; time.sleep(30)"], {})
    assert wait_until(lambda: operator.get_status(handle).state is JobState.RUNNING, timeout=10)
    with pytest.raises(ValueError, match="Spot"):
        emulator.preempt(handle.job_id)
    control = EmulatorControl(emulator.endpoint_url)
    with pytest.raises(RuntimeError, match="409"):
        control.preempt(handle.extra["job_number"])
    with pytest.raises(RuntimeError, match="404"):
        control.preempt("nope")
    operator.cancel(handle)
    assert wait_until(lambda: operator.get_status(handle).state is JobState.CANCELLED, timeout=10)


def test_the_control_api_is_shared(scripted: VertexEmulator) -> None:
    control = EmulatorControl(scripted.endpoint_url)
    assert control.health() == {"status": "ok", "mode": "scripted"}
    control.set_faults(Faults(throttle_rate=1.0))
    with pytest.raises(exceptions.TooManyRequests):
        job_client(scripted).get_custom_job(name=f"{PARENT}/customJobs/1")
    assert [request.operation for request in control.requests()] == ["GetCustomJob"]
    control.reset()
    assert control.faults() == Faults() and control.requests() == []


# -- execute mode ------------------------------------------------------------------------------


def test_the_job_sees_the_vertex_container_environment(
    make_operator: OperatorFactory, emulator: VertexEmulator
) -> None:
    operator = make_operator(emulator)
    code = (
        "import json, os\n"
        "for name in ('CLOUD_ML_JOB_ID', 'AIP_MODEL_DIR', 'AIP_CHECKPOINT_DIR',"
        " 'AIP_TENSORBOARD_LOG_DIR', 'STORAGE_EMULATOR_HOST', 'MINE'):\n"
        "    print(name + '=' + os.environ.get(name, '-'))\n"
        "print('task=' + json.loads(os.environ['CLUSTER_SPEC'])['task']['type'])\n"
    )
    handle = operator.submit(step_info(), [PY, "-c", code], {"MINE": "yes"})
    assert wait_until(lambda: operator.get_status(handle).state is JobState.SUCCEEDED, timeout=15)
    lines = operator.read_logs(handle, None).lines
    prefix = "gs://steplift-staging/steplift/vertex-output/"
    values = dict(line.split("=", 1) for line in lines)
    assert values["CLOUD_ML_JOB_ID"] == handle.extra["job_number"]
    assert values["AIP_MODEL_DIR"].startswith(prefix)
    assert values["AIP_MODEL_DIR"].endswith("/model/")
    assert values["AIP_CHECKPOINT_DIR"].endswith("/checkpoints/")
    assert values["AIP_TENSORBOARD_LOG_DIR"].endswith("/logs/")
    assert values["STORAGE_EMULATOR_HOST"] == emulator.storage_url
    assert values["MINE"] == "yes" and values["task"] == "workerpool0"


def test_a_non_zero_exit_is_a_user_code_failure(
    make_operator: OperatorFactory, emulator: VertexEmulator
) -> None:
    operator = make_operator(emulator)
    handle = operator.submit(step_info(), [PY, "-c", "import sys; sys.exit(3)"], {})
    assert wait_until(lambda: operator.get_status(handle).state is JobState.FAILED, timeout=15)
    status = operator.get_status(handle)
    assert status.failure_kind is FailureKind.USER_CODE and status.exit_code == 3
    assert "non-zero status of 3" in status.message


def test_scheduling_timeout_is_enforced(
    make_operator: OperatorFactory, emulator: VertexEmulator
) -> None:
    client = job_client(emulator)
    body = job_body(
        [PY, "-c", "import time; print('start', flush=True); time.sleep(30)"],
        scheduling={"timeout": timedelta(seconds=0.3)},
    )
    job = client.create_custom_job(parent=PARENT, custom_job=body)
    operator = make_operator(emulator)
    handle = operator._handle(job)
    assert wait_until(lambda: operator.get_status(handle).state is JobState.FAILED, timeout=15)
    status = operator.get_status(handle)
    assert status.failure_kind is FailureKind.TIMEOUT
    assert wait_until(lambda: not emulator.is_running(handle.job_id), timeout=10)


def test_logs_are_read_incrementally_without_gaps_or_duplicates(
    make_operator: OperatorFactory, emulator: VertexEmulator
) -> None:
    operator = make_operator(emulator)
    code = (
        "import time\n"
        "for i in range(400):\n"
        "    print(i, flush=True)\n"
        "    time.sleep(0.0005 * (i % 3))"
    )
    handle = operator.submit(step_info(), [PY, "-c", code], {})
    seen: list[str] = []
    cursor = None
    for _ in range(2000):
        done = operator.get_status(handle).state.is_terminal
        chunk = operator.read_logs(handle, cursor)
        seen += chunk.lines
        cursor = chunk.cursor
        if done:
            break
    assert seen == [str(i) for i in range(400)]
    assert operator.read_logs(handle, cursor).lines == []
    assert len(emulator.requests.filter("ListLogEntries")) >= 2


def test_entries_list_takes_timestamps_with_offsets(
    make_operator: OperatorFactory, emulator: VertexEmulator
) -> None:
    operator = make_operator(emulator)
    handle = operator.submit(step_info(), [PY, "-c", "print('logged')"], {})
    assert wait_until(lambda: operator.get_status(handle).state is JobState.SUCCEEDED, timeout=15)
    job = f'resource.labels.job_id="{handle.extra["job_number"]}"'
    # google-cloud-logging's default filter: a day back, strftime("...%f%z") -> "+0000".
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()  # "+00:00"
    for stamp, lines in ((yesterday, ["logged"]), (tomorrow, [])):
        body = {
            "resourceNames": [f"projects/{emulator.project}"],
            "filter": f'{job} AND timestamp>="{stamp}"',
        }
        status, answer = raw(emulator, "POST", "/v2/entries:list", body)
        assert status == 200, answer
        assert [entry["textPayload"] for entry in answer.get("entries", [])] == lines


def test_the_log_cursor_survives_shared_timestamps_and_pages() -> None:
    stamp = "2026-11-25T10:00:00.000001Z"
    later = "2026-11-25T10:00:00.000002Z"
    entries = [
        {"timestamp": stamp, "insertId": "a", "textPayload": "one"},
        {"timestamp": stamp, "insertId": "b", "textPayload": "two"},
        {"timestamp": later, "insertId": "c", "jsonPayload": {"message": "three"}},
    ]
    visible = 2
    bodies: list[dict[str, Any]] = []

    def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
        bodies.append(dict(body))
        selected = [
            e
            for e in entries[:visible]
            if 'timestamp>="' not in body["filter"] or e["timestamp"] >= stamp
        ]
        offset = int(body.get("pageToken", 0))
        answer: dict[str, Any] = {"entries": selected[offset : offset + 1]}
        if offset + 1 < len(selected):
            answer["nextPageToken"] = str(offset + 1)
        return answer

    first = read_job_logs(post, "http://127.0.0.1:1", "p", "42", None)
    assert first.lines == ["one", "two"]
    visible = 3
    second = read_job_logs(post, "http://127.0.0.1:1", "p", "42", first.cursor)
    assert second.lines == ["three"]
    assert f'timestamp>="{stamp}"' in bodies[-1]["filter"]
    assert 'resource.labels.job_id="42"' in bodies[0]["filter"]


def request_threads() -> list[threading.Thread]:
    """The emulators' request threads still running (socketserver names them so)."""
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def test_a_client_gone_mid_request_is_a_debug_line_not_a_traceback(
    scripted: VertexEmulator, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = int(scripted.endpoint_url.rsplit(":", 1)[1])
    request = f"POST /v1/{PARENT}/customJobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    halves = [
        (request + "Content-Le").encode(),  # gone within the headers
        (request + 'Content-Length: 100\r\n\r\n{"displ').encode(),  # gone within the body
    ]
    for half, reset in itertools.product(halves, (False, True)):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(half)
            if reset:  # closed with a reset instead of a FIN
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    # The server's request threads may not have read the halves yet: wait for the debug line,
    # then for every request to be handled, before reading stderr.
    assert wait_until(
        lambda: any("went away" in record.getMessage() for record in caplog.records), timeout=5
    )
    assert wait_until(lambda: not request_threads(), timeout=5)  # every request handled
    assert "Traceback" not in capsys.readouterr().err
    assert job_client(scripted).list_custom_jobs(parent=PARENT) is not None  # still serving


# -- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "steplift_vertex.emulator", "--port", "0"],
        [
            "-c",
            "import sys, steplift.cli; sys.exit(steplift.cli.main(sys.argv[1:]))",
            "emulator",
            "vertex",
            "--port",
            "0",
        ],
    ],
    ids=["module", "steplift-cli"],
)
def test_the_command_line_serves_until_sigterm(command: list[str]) -> None:
    import signal
    import subprocess

    process = subprocess.Popen(
        [PY, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        lines = []
        for _ in range(40):
            line = process.stdout.readline()
            lines.append(line)
            if "listening on" in line or not line:
                break
        text = "".join(lines)
        assert "Vertex AI emulator (execute mode) listening on http://127.0.0.1:" in text, text
        endpoint = text.split("listening on ", 1)[1].split()[0]
        assert EmulatorControl(endpoint).wait_until_healthy(10)["status"] == "ok"
        rest = ""
        for _ in range(10):
            rest += process.stdout.readline()
            if "control API" in rest:
                break
        assert "export STORAGE_EMULATOR_HOST=http://127.0.0.1:" in rest
        assert 'api_endpoint = "http://127.0.0.1:' in text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
