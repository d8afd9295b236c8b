"""What the operator really sends to Vertex AI, read back from the emulator's request log."""

from __future__ import annotations

from typing import Any

import pytest
from vertex_support import OperatorFactory

from steplift.errors import ConfigError
from steplift.models import Resources, StepRunInfo
from steplift_vertex.emulator import VertexEmulator
from steplift_vertex.requests import KEY_LABEL, attempt_label

COMMAND = ["python", "-m", "steplift.entrypoint", "--execution-info-uri", "gs://x/y.json"]


def info(**fields: Any) -> StepRunInfo:
    values: dict[str, Any] = {
        "pipeline": "demo",
        "run": "Run.1",
        "step": "train",
        "artifact_uri": "gs://steplift-staging/steplift/demo/Run.1/train/1",
    }
    values.update(fields)
    return StepRunInfo(**values)


def created_body(emulator: VertexEmulator) -> dict[str, Any]:
    creates = emulator.requests.filter("CreateCustomJob")
    assert len(creates) == 1
    assert creates[0].params["query"]["$alt"] == "json;enum-encoding=int"
    body: dict[str, Any] = creates[0].params["body"]
    return body


def test_gpu_machine_spec_timeout_spot_labels_and_env(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(
        scripted,
        gpu="A100:8",
        spot=True,
        max_runtime=3600.5,
        labels={"team": "ml"},
        boot_disk_size_gb=200,
        restart_job_on_worker_restart=True,
    )
    step = info(environment={"EPOCHS": "3"}, tags={"cost-center": "r-d"})
    handle = operator.submit(step, COMMAND, operator.job_environment(step))
    body = created_body(scripted)
    pool = body["jobSpec"]["workerPoolSpecs"][0]
    assert pool["machineSpec"] == {
        "machineType": "a2-highgpu-8g",
        "acceleratorType": 8,  # NVIDIA_TESLA_A100, as a number on the wire
        "acceleratorCount": 8,
    }
    assert pool["replicaCount"] == "1"  # int64: a string
    assert pool["diskSpec"] == {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 200}
    assert pool["containerSpec"]["command"] == COMMAND
    assert pool["containerSpec"]["imageUri"] == "local/steplift:emulated"
    assert {"name": "EPOCHS", "value": "3"} in pool["containerSpec"]["env"]
    assert body["jobSpec"]["scheduling"] == {
        "timeout": "3601s",
        "strategy": 4,  # SPOT
        "restartJobOnWorkerRestart": True,
    }
    labels = body["labels"]
    assert labels["team"] == "ml" and labels["cost-center"] == "r-d"
    assert labels[KEY_LABEL] == attempt_label(step)
    assert labels["steplift-run"] == "run-1" and labels["steplift-attempt"] == "1"
    assert body["displayName"].startswith("steplift-demo-Run.1-train-1-")
    assert body["jobSpec"]["baseOutputDirectory"]["outputUriPrefix"].startswith(
        "gs://steplift-staging/steplift/vertex-output/"
    )
    assert handle.job_id.startswith("projects/steplift-emulator/locations/us-central1/customJobs/")
    assert handle.name == body["displayName"]


@pytest.mark.parametrize(
    ("gpu", "machine", "enum"),
    [("T4:1", "n1-standard-4", 5), ("L4:1", "g2-standard-4", 11), ("H100:8", "a3-highgpu-8g", 13)],
)
def test_a_step_gpu_request_overrides_the_config(
    make_operator: OperatorFactory, scripted: VertexEmulator, gpu: str, machine: str, enum: int
) -> None:
    operator = make_operator(scripted, machine_type="n1-standard-8")
    step = info(resources=Resources(gpu=gpu))
    operator.submit(step, COMMAND, {})
    spec = created_body(scripted)["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]
    assert (spec["machineType"], spec["acceleratorType"]) == (machine, enum)


def test_defaults_are_omitted_and_cpu_jobs_have_no_accelerator(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(scripted)
    operator.submit(info(), COMMAND, {})
    spec = created_body(scripted)["jobSpec"]
    assert spec["workerPoolSpecs"][0]["machineSpec"] == {"machineType": "n1-standard-4"}
    assert "scheduling" not in spec and "diskSpec" not in spec["workerPoolSpecs"][0]
    assert "serviceAccount" not in spec and "network" not in spec


def test_nodes_become_a_chief_and_a_worker_pool_with_the_account_and_network(
    make_operator: OperatorFactory,
    scripted: VertexEmulator,
) -> None:
    operator = make_operator(
        scripted,
        gpu="V100:2",
        boot_disk_size_gb=200,
        service_account="trainer@my-project.iam.gserviceaccount.com",
        network="projects/123456/global/networks/vpc",
        persistent_resource_id="pool-1",
    )
    step = info(resources=Resources(nodes=3), environment={"EPOCHS": "3"})
    handle = operator.submit(step, COMMAND, operator.job_environment(step))
    spec = created_body(scripted)["jobSpec"]
    chief, workers = spec["workerPoolSpecs"]  # exactly two pools
    assert (chief["replicaCount"], workers["replicaCount"]) == ("1", "2")
    # The workers are the chief's twins: same machine and GPUs, disk, image, command, env.
    assert chief["machineSpec"] == {
        "machineType": "n1-standard-4",
        "acceleratorType": 3,  # NVIDIA_TESLA_V100
        "acceleratorCount": 2,
    }
    assert {key: value for key, value in workers.items() if key != "replicaCount"} == {
        key: value for key, value in chief.items() if key != "replicaCount"
    }
    assert chief["diskSpec"] == {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 200}
    assert chief["containerSpec"]["command"] == COMMAND
    assert {"name": "EPOCHS", "value": "3"} in chief["containerSpec"]["env"]
    assert spec["serviceAccount"] == "trainer@my-project.iam.gserviceaccount.com"
    assert spec["network"] == "projects/123456/global/networks/vpc"
    assert spec["persistentResourceId"] == "pool-1"
    # The handle knows the job's size, so its logs name each node.
    assert handle.extra["nodes"] == "3"
    assert operator.find_job(step) == handle


def test_a_single_node_step_is_one_pool_of_one_replica(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(scripted, gpu="A100:8")
    handle = operator.submit(info(), COMMAND, {})
    [pool] = created_body(scripted)["jobSpec"]["workerPoolSpecs"]
    assert pool["replicaCount"] == "1"
    assert handle.extra["nodes"] == "1"


def test_one_process_per_gpu_counts_the_configured_machines_gpus(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(scripted, gpu="A100:8")
    step = info(resources=Resources(nodes=2, processes_per_node="gpu"))
    assert (operator.gpus_per_node(step), operator.processes_per_node(step)) == (8, 8)
    cpu_only = make_operator(scripted)
    assert cpu_only.processes_per_node(step) == 1
    assert len(scripted.requests) == 0


def test_a_replica_count_that_matches_the_nodes_is_kept(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(scripted, replica_count=2)
    operator.submit(info(resources=Resources(nodes=2)), COMMAND, {})
    pools = created_body(scripted)["jobSpec"]["workerPoolSpecs"]
    assert [pool["replicaCount"] for pool in pools] == ["1", "1"]


@pytest.mark.parametrize("nodes", [1, 3])
def test_a_replica_count_other_than_the_nodes_is_refused_before_any_call(
    make_operator: OperatorFactory, scripted: VertexEmulator, nodes: int
) -> None:
    # Every replica runs the entrypoint, which refuses a cluster of another size than the
    # step asked for: such a job would fail on every machine it paid for.
    operator = make_operator(scripted, replica_count=2)
    with pytest.raises(ConfigError) as caught:
        operator.launch(info(resources=Resources(nodes=nodes)), COMMAND)
    assert caught.value.field == "replica_count"
    assert "nodes=2" in str(caught.value)
    assert scripted.requests.list() == []


@pytest.mark.parametrize(
    ("step", "field"),
    [
        (info(resources=Resources(gpu="A100:3")), "resources.gpu"),
        (info(resources=Resources(disk_gb=10)), "resources.disk_gb"),
        (info(tags={"Bad Tag": "x"}), "tags"),
        (info(resources=Resources(gpu="A100:3", nodes=2)), "resources.gpu"),
    ],
)
def test_a_bad_step_request_is_refused_before_any_call(
    make_operator: OperatorFactory, scripted: VertexEmulator, step: StepRunInfo, field: str
) -> None:
    operator = make_operator(scripted)
    for attempt in (
        lambda: operator.submit(step, COMMAND, {}),
        lambda: operator.launch(step, COMMAND),
    ):
        with pytest.raises(ConfigError) as caught:
            attempt()
        assert caught.value.field == field
    assert scripted.requests.list() == []


def test_find_job_lists_by_the_attempt_label(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(scripted)
    step = info()
    assert operator.find_job(step) is None
    handle = operator.submit(step, COMMAND, {})
    assert operator.find_job(step) == handle
    assert operator.find_job(info(attempt=2)) is None
    lists = scripted.requests.filter("ListCustomJobs")
    assert lists[0].params["query"]["filter"] == f'labels.{KEY_LABEL}="{attempt_label(step)}"'
