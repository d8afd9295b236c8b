"""What the operator really sends (request shapes), how it reads statuses and failures, and how
it behaves under the emulator's faults; against the scripted emulator and the real SDK."""

from __future__ import annotations

import random
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azureml_helpers import make_operator

from steplift.errors import ConfigError, StepFailed
from steplift.launch.submission import submit_once
from steplift.models import Resources, StepRunInfo
from steplift.operator import LaunchObserver
from steplift.states import FailureKind, JobState
from steplift.store import LocalArtifactStore
from steplift.testing.emulation import EmulatorControl, Faults
from steplift_azureml.emulator import AzureMLEmulator
from steplift_azureml.flavor import FLAVOR
from steplift_azureml.operator import AzureMLStepOperator

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

_numbers = iter(range(1, 1_000_000))


@pytest.fixture(scope="module")
def shared(scripted_emulator: AzureMLEmulator) -> Iterator[AzureMLStepOperator]:
    operator = make_operator(scripted_emulator, None)
    operator.share_clients()  # one set of clients for the module
    yield operator


@pytest.fixture
def emulator(scripted_emulator: AzureMLEmulator) -> Iterator[AzureMLEmulator]:
    scripted_emulator.reset()
    yield scripted_emulator
    scripted_emulator.reset()


class VirtualClock:
    def __init__(self) -> None:
        self.time = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds


def step_info(**fields: Any) -> StepRunInfo:
    number = next(_numbers)
    return StepRunInfo(
        pipeline="shapes",
        run=f"run{number}",
        step=fields.pop("step", "train"),
        artifact_uri=f"azureblob://devstoreaccount1/steplift-tests/x/{number}",
        **fields,
    )


def submitted_job(
    emulator: AzureMLEmulator, operator: AzureMLStepOperator, info: StepRunInfo
) -> dict[str, Any]:
    operator.submit(info, ["python", "-m", "steplift.entrypoint", "--flag", "a b"], {"K": "v"})
    body: dict[str, Any] = emulator.requests.filter("CreateOrUpdateJob")[-1].params["body"]
    return body["properties"]


# -- request shapes ---------------------------------------------------------------------------


def test_cluster_compute_is_sent_as_compute_id(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared, compute="cpu-cluster", instance_type=None)
    job = submitted_job(emulator, operator, step_info())
    assert job["computeId"].endswith("/workspaces/steplift-ws/computes/cpu-cluster")
    assert "instanceType" not in (job.get("resources") or {})
    assert job["command"] == "python -m steplift.entrypoint --flag 'a b'"
    assert job["environmentVariables"] == {"K": "v"}
    assert job["experimentName"] == "steplift"


def test_serverless_instance_type_and_job_name(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared, instance_type="Standard_D4s_v3")
    info = step_info()
    job = submitted_job(emulator, operator, info)
    assert job["resources"]["instanceType"] == "Standard_D4s_v3"
    assert job["resources"]["instanceCount"] == 1
    assert "computeId" not in job
    put = emulator.requests.filter("CreateOrUpdateJob")[-1].params["path"]
    assert put.endswith("/jobs/" + operator.job_name(info))
    assert operator.job_name(info) == operator.job_name(info.model_copy())
    assert job["tags"]["steplift.attempt"] == info.attempt_key


@pytest.mark.parametrize(
    ("gpu", "vm_size"),
    [
        ("A100:1", "Standard_NC24ads_A100_v4"),
        ("a100:4", "Standard_NC96ads_A100_v4"),
        ("H100:8", "Standard_ND96isr_H100_v5"),
        ("T4:1", "Standard_NC4as_T4_v3"),
        ("V100:2", "Standard_NC12s_v3"),
    ],
)
def test_gpu_request_maps_to_a_vm_size(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator, gpu: str, vm_size: str
) -> None:
    operator = make_operator(emulator, shared)
    job = submitted_job(emulator, operator, step_info(resources=Resources(gpu=gpu)))
    assert job["resources"]["instanceType"] == vm_size


def test_gpu_request_uses_the_cluster_configured_for_that_gpu(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(
        emulator,
        shared,
        instance_type=None,
        compute="cpu-cluster",
        gpu_clusters={"a100": "gpu-cluster"},
    )
    job = submitted_job(emulator, operator, step_info(resources=Resources(gpu="A100:1")))
    assert job["computeId"].endswith("/computes/gpu-cluster")
    cpu_job = submitted_job(emulator, operator, step_info())
    assert cpu_job["computeId"].endswith("/computes/cpu-cluster")


def test_impossible_gpu_request_is_refused_before_any_call(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared)
    before = len(emulator.requests)
    with pytest.raises(ConfigError) as caught:
        operator.submit(step_info(resources=Resources(gpu="A100:3")), ["true"], {})
    assert caught.value.field == "gpu"
    assert "A100 counts per VM: 1, 2, 4, 8" in str(caught.value)
    assert len(emulator.requests) == before


def test_max_runtime_is_sent_as_limits_timeout(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared)
    job = submitted_job(emulator, operator, step_info(max_runtime=90.5))
    assert job["limits"] == {"timeout": "PT1M31S", "jobLimitsType": "Command"}


def test_spot_sets_the_job_tier_or_the_low_priority_cluster(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    serverless = make_operator(emulator, shared)
    job = submitted_job(emulator, serverless, step_info(resources=Resources(spot=True)))
    assert job["queueSettings"] == {"jobTier": "Spot"}
    premium = make_operator(emulator, shared, job_tier="Premium")
    assert submitted_job(emulator, premium, step_info())["queueSettings"] == {"jobTier": "Premium"}
    cluster = make_operator(
        emulator, shared, instance_type=None, compute="cpu-cluster", spot_compute="spot-cluster"
    )
    spot_job = submitted_job(emulator, cluster, step_info(resources=Resources(spot=True)))
    assert spot_job["computeId"].endswith("/computes/spot-cluster")
    assert "queueSettings" not in spot_job or not spot_job["queueSettings"].get("jobTier")


def test_image_is_sent_as_an_anonymous_environment(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared, image="myregistry.azurecr.io/train:3")
    job = submitted_job(emulator, operator, step_info())
    environment = emulator.requests.filter("CreateOrUpdateEnvironmentVersion")[-1]
    assert environment.params["body"]["properties"]["image"] == "myregistry.azurecr.io/train:3"
    assert environment.params["path"] in job["environmentId"]
    assert "/environments/CliV2AnonymousEnvironment/versions/" in job["environmentId"]


def test_registered_environment_is_referenced_by_name(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    emulator.register_environment("train-env", "7", "python:3.11")
    operator = make_operator(emulator, shared, image=None, environment_name="train-env:7")
    job = submitted_job(emulator, operator, step_info())
    assert job["environmentId"].endswith("/environments/train-env/versions/7")


@pytest.mark.parametrize(
    ("resources", "instance_count", "distribution"),
    [
        # One process per GPU on each of 2 nodes: Azure ML starts 8 per instance.
        (
            Resources(gpu="A100:8", nodes=2, processes_per_node="gpu"),
            2,
            {"distributionType": "PyTorch", "processCountPerInstance": 8},
        ),
        (
            Resources(gpu="A100:8", nodes=2),
            2,
            {"distributionType": "PyTorch", "processCountPerInstance": 1},
        ),
        (
            Resources(nodes=1, processes_per_node=2),
            1,
            {"distributionType": "PyTorch", "processCountPerInstance": 2},
        ),
        (Resources(gpu="A100:8"), 1, None),
    ],
    ids=["2x8-per-gpu", "2x1", "1x2", "single"],
)
def test_nodes_and_processes_become_instance_count_and_a_pytorch_distribution(
    emulator: AzureMLEmulator,
    shared: AzureMLStepOperator,
    resources: Resources,
    instance_count: int,
    distribution: dict[str, Any] | None,
) -> None:
    operator = make_operator(emulator, shared)
    info = step_info(resources=resources)
    operator.check_step(info)
    job = submitted_job(emulator, operator, info)
    assert job["resources"]["instanceCount"] == instance_count
    assert job.get("distribution") == distribution
    if resources.gpu:
        assert job["resources"]["instanceType"] == "Standard_ND96asr_v4"


def test_one_process_per_gpu_counts_the_gpus_of_the_configured_machines(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    step = step_info(resources=Resources(nodes=2, processes_per_node="gpu"))
    by_gpu = make_operator(emulator, shared, gpu="V100:2", instance_type=None)
    by_size = make_operator(emulator, shared, instance_type="Standard_NC64as_T4_v3")
    assert (by_gpu.gpus_per_node(step), by_gpu.processes_per_node(step)) == (2, 2)
    assert (by_size.gpus_per_node(step), by_size.processes_per_node(step)) == (4, 4)
    job = submitted_job(emulator, by_gpu, step)
    assert job["distribution"] == {"distributionType": "PyTorch", "processCountPerInstance": 2}


def test_a_configured_instance_count_other_than_the_steps_nodes_is_refused_before_any_call(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared, instance_count=4)
    before = len(emulator.requests)
    for nodes in (1, 2):
        info = step_info(resources=Resources(nodes=nodes))
        with pytest.raises(ConfigError) as caught:
            operator.launch(info, ["python", "-c", "pass"])
        assert caught.value.field == "instance_count"
        assert "4 nodes, but it asks for" in str(caught.value)
    assert len(emulator.requests) == before
    # The same count on both sides is what the step asked for.
    operator.check_step(step_info(resources=Resources(nodes=4)))


def test_service_validation_refuses_an_unknown_cluster(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared, instance_type=None, compute="no-such-cluster")
    with pytest.raises(StepFailed) as caught:
        operator.submit(step_info(), ["true"], {})
    assert "no-such-cluster" in str(caught.value)
    assert not any("no-such-cluster" in str(job.resource) for job in emulator.jobs.values())


# -- statuses and failures --------------------------------------------------------------------


def test_statuses_are_normalised(emulator: AzureMLEmulator, shared: AzureMLStepOperator) -> None:
    operator = make_operator(emulator, shared)
    info = step_info()
    script = ["Queued", "Preparing", "Running", "Finalizing", "Completed"]
    emulator.script(operator.job_name(info), script)
    handle = operator.submit(info, ["true"], {})
    seen = [operator.get_status(handle) for _ in script]
    assert [status.provider_state for status in seen] == script
    assert [status.state for status in seen] == [
        JobState.PENDING,
        JobState.PENDING,
        JobState.RUNNING,
        JobState.RUNNING,
        JobState.SUCCEEDED,
    ]


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("Not enough quota for Standard_NC24ads_A100_v4", FailureKind.QUOTA),
        ("insufficient capacity in westeurope", FailureKind.CAPACITY),
        ("the spot node was preempted", FailureKind.PREEMPTED),
        ("failed to pull image myregistry/train:3", FailureKind.IMAGE),
        ("user process exited with code 2", FailureKind.USER_CODE),
        ("the node stopped responding", FailureKind.INFRASTRUCTURE),
    ],
)
def test_failure_text_from_run_history_gives_the_failure_kind(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator, reason: str, kind: FailureKind
) -> None:
    operator = make_operator(emulator, shared)
    info = step_info()
    failed = {"status": "Failed", "failure_reason": reason}
    emulator.script(operator.job_name(info), ["Running", failed])
    handle = operator.submit(info, ["true"], {})
    operator.get_status(handle)
    status = operator.get_status(handle)
    assert status.state is JobState.FAILED
    assert status.failure_kind is kind
    assert status.message == reason
    assert emulator.requests.filter("GetRunDetails")


def test_cancel_posts_and_follows_the_location(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared)
    info = step_info()
    emulator.script(operator.job_name(info), ["Running"])
    handle = operator.submit(info, ["true"], {})
    assert operator.get_status(handle).state is JobState.RUNNING
    operator.cancel(handle)
    assert (
        emulator.requests.filter("CancelJob")[-1]
        .params["path"]
        .endswith(f"/jobs/{handle.job_id}/cancel")
    )
    assert emulator.requests.filter("GetCancelStatus")
    assert operator.get_status(handle).state is JobState.CANCELLED


def test_spot_jobs_can_be_preempted_and_others_cannot(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared, spot=True)
    info = step_info()
    emulator.script(operator.job_name(info), ["Running"])
    handle = operator.submit(info, ["true"], {})
    operator.get_status(handle)
    emulator.preempt(handle.job_id)
    status = operator.get_status(handle)
    assert (status.state, status.failure_kind) == (JobState.FAILED, FailureKind.PREEMPTED)
    regular = make_operator(emulator, shared)
    other = regular.submit(step_info(), ["true"], {})
    with pytest.raises(ValueError, match="not a spot job"):
        emulator.preempt(other.job_id)


def test_killing_a_node_fails_the_job_naming_it(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared)
    info = step_info(resources=Resources(nodes=2))
    emulator.script(operator.job_name(info), ["Running"])
    handle = operator.submit(info, ["true"], {})
    assert operator.get_status(handle).state is JobState.RUNNING
    with pytest.raises(ValueError, match="no node 2"):
        emulator.kill_node(handle.job_id, 2)
    emulator.kill_node(handle.job_id, 1)
    status = operator.get_status(handle)
    assert (status.state, status.failure_kind) == (JobState.FAILED, FailureKind.INFRASTRUCTURE)
    assert status.message.startswith("Node 1 of the job was lost")
    with pytest.raises(ValueError, match="already ended"):
        emulator.kill_node(handle.job_id, 0)
    with pytest.raises(KeyError):
        emulator.kill_node("no-such-job", 0)


def test_distributed_logs_are_read_per_process_with_the_node_prefix(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared)
    info = step_info(resources=Resources(nodes=2, processes_per_node=2))
    # (Each jobs.get takes a scripted step; a running one logs a line.)
    emulator.script(operator.job_name(info), ["Running", "Completed"])
    handle = operator.submit(info, ["true"], {})
    assert handle.extra["nodes"] == "2" and handle.extra["processes_per_node"] == "2"
    operator.get_status(handle)
    job = emulator.jobs[handle.job_id]
    job.append_log("user_logs/std_log_process_3.txt", "from rank 3")
    job.append_log("user_logs/std_log_process_1.txt", "from rank 1")
    chunk = operator.read_logs(handle, None)
    assert chunk.lines == [
        f"[node 0] scripted job {job.name} is running",
        "[node 0] from rank 1",
        "[node 1] from rank 3",
    ]
    job.append_log("user_logs/std_log_process_2.txt", "from rank 2")
    job.append_log("user_logs/std_log_process_3.txt", "rank 3 again")
    # A handle stored before the layout was recorded: the job itself says how it is laid out.
    bare = handle.model_copy(update={"extra": {}})
    gets = len(emulator.requests.filter("GetJob"))
    assert operator.read_logs(bare, chunk.cursor).lines == [
        "[node 1] from rank 2",
        "[node 1] rank 3 again",
    ]
    assert len(emulator.requests.filter("GetJob")) == gets + 1


def test_kill_node_over_the_control_api(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    assert emulator.control_url is not None
    operator = make_operator(emulator, shared)
    info = step_info(resources=Resources(nodes=2))
    emulator.script(operator.job_name(info), ["Running"])
    handle = operator.submit(info, ["true"], {})
    operator.get_status(handle)

    def kill(job_id: str, body: bytes) -> int:
        request = urllib.request.Request(
            f"{emulator.control_url}/_steplift/jobs/{job_id}/kill-node", data=body, method="POST"
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            error.close()
            return int(error.code)

    assert kill("no-such-job", b'{"node": 0}') == 404
    assert kill(handle.job_id, b'{"node": "1"}') == 400
    assert kill(handle.job_id, b"not json") == 400
    assert kill(handle.job_id, b'{"node": 5}') == 409
    assert kill(handle.job_id, b'{"node": 1}') == 200
    assert emulator.jobs[handle.job_id].status == "Failed"


# -- faults and retries -------------------------------------------------------------------------


def test_throttling_is_retried_by_the_sdk_honouring_retry_after(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared)
    info = step_info()
    emulator.script(operator.job_name(info), ["Running"])
    handle = operator.submit(info, ["true"], {})
    emulator.set_faults(Faults(throttle_rate=0.5, seed=3))
    states = [operator.get_status(handle).state for _ in range(6)]
    assert states == [JobState.RUNNING] * 6
    assert len(emulator.requests.filter("GetJob")) > 6  # some were answered 429 and retried


def _seed_where(patterns: dict[str, list[bool]], rate: float) -> int:
    """A fault seed whose first calls of each operation fail (True) or not, as given."""
    for seed in range(10_000):
        if all(
            [random.Random(f"{seed}:{op}:{n}").random() < rate for n in range(len(pattern))]
            == pattern
            for op, pattern in patterns.items()
        ):
            return seed
    raise AssertionError("no seed found")


def test_a_failed_create_is_retried_only_after_find_job(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator, tmp_path: Path
) -> None:
    clock = VirtualClock()
    operator = make_operator(emulator, shared, clock)
    info = step_info()
    # Only job creations fail: the first is answered 503, the second goes through.
    ok = [False] * 3
    seed = _seed_where(
        {
            "CreateOrUpdateJob": [True, False],
            "GetJob": ok,
            "CreateOrUpdateEnvironmentVersion": ok,
        },
        0.5,
    )
    emulator.set_faults(Faults(error_rate=0.5, seed=seed))
    # submit makes one try; the launch's shared submit_once looks the job up, then tries again
    # (and writes the receipt: here into a folder, this emulator serves no blob storage).
    operator._store = LocalArtifactStore()
    info = info.model_copy(update={"artifact_uri": str(tmp_path / "attempt")})
    handle = submit_once(operator._launch_engine.control, info, ["true"], LaunchObserver())
    operations = [
        request.operation
        for request in emulator.requests.list()
        if request.operation in ("CreateOrUpdateJob", "GetJob")
    ]
    assert operations == ["CreateOrUpdateJob", "GetJob", "CreateOrUpdateJob"]
    assert handle.job_id == operator.job_name(info)
    assert clock.sleeps and clock.sleeps[0] > 0  # backed off on the virtual clock


def test_a_create_that_already_went_through_is_adopted(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared)
    info = step_info()
    first = operator.submit(info, ["true"], {})
    created = emulator.created_jobs
    # A second launcher that did not look first: the service answers 409, we adopt.
    second = operator.submit(info, ["true"], {})
    assert second == first
    assert emulator.created_jobs == created


def test_quota_refusal_is_a_quota_failure(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared)
    created = emulator.created_jobs
    emulator.set_faults(Faults(refuse_create="quota"))
    with pytest.raises(StepFailed) as caught:
        operator.submit(step_info(), ["true"], {})
    assert caught.value.failure_kind is FailureKind.QUOTA
    assert emulator.created_jobs == created


def test_shared_control_api_over_http(emulator: AzureMLEmulator) -> None:
    assert emulator.control_url is not None
    control = EmulatorControl(emulator.control_url)
    assert control.health()["mode"] == "scripted"
    control.set_faults(Faults(latency=0.01))
    assert emulator.faults.latency == 0.01
    control.script(None, ["Queued", "Completed"])
    control.reset()
    assert emulator.faults == Faults()
    assert control.requests() == []
    with pytest.raises(RuntimeError, match="400"):
        control.script("job", ["NoSuchStatus"])


def test_checkpoints_are_a_read_write_mounted_datastore_folder_per_step(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared)
    info = step_info(step="resumable")
    operator.submit(info, ["python", "-m", "steplift.entrypoint"], operator.job_environment(info))
    job = emulator.requests.filter("CreateOrUpdateJob")[-1].params["body"]["properties"]
    assert job["command"] == (
        "env 'STEPLIFT_CHECKPOINT_DIR=${{outputs.steplift_checkpoints}}' "
        "python -m steplift.entrypoint"
    )
    assert "STEPLIFT_CHECKPOINT_DIR" not in job["environmentVariables"]
    assert job["outputs"]["steplift_checkpoints"] == {
        "uri": f"azureml://datastores/workspaceblobstore/paths/steplift/checkpoints/"
        f"{info.pipeline}/{info.run}/{info.step}",
        "mode": "ReadWriteMount",
        "jobOutputType": "uri_folder",
    }
    emulated = emulator.jobs[operator.job_name(info)]
    folder = emulator.datastore_folder(
        "workspaceblobstore", f"steplift/checkpoints/{info.pipeline}/{info.run}/{info.step}"
    )
    assert emulated.command.startswith(f"env 'STEPLIFT_CHECKPOINT_DIR={folder}' python")
    assert folder.is_dir()
    off = AzureMLStepOperator(operator.config.model_copy(update={"checkpoint_datastore": None}))
    assert "STEPLIFT_CHECKPOINT_DIR" not in off.job_environment(info)


def test_transient_errors_are_recognised() -> None:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    operator = AzureMLStepOperator(
        FLAVOR.validate_config(
            {
                "subscription_id": "11111111-2222-3333-4444-555555555555",
                "resource_group": "rg",
                "workspace": "ws1",
                "artifact_root": "azureblob://acct1/cont/x",
                "image": "python:3.11",
                "compute": "cpu-cluster",
            }
        )
    )

    def http(status: int) -> HttpResponseError:
        error = HttpResponseError(message=f"status {status}")
        error.status_code = status
        return error

    assert operator.is_transient_error(http(429))
    assert operator.is_transient_error(http(503))
    assert operator.is_transient_error(ServiceRequestError("connection reset"))
    assert not operator.is_transient_error(http(400))
    assert not operator.is_transient_error(ValueError("no"))


def test_identity_experiment_and_tags_are_sent(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(
        emulator, shared, identity="managed", experiment_name="nightly", tags={"team": "ml"}
    )
    job = submitted_job(emulator, operator, step_info())
    assert job["identity"]["identityType"] == "Managed"
    assert job["experimentName"] == "nightly"
    assert job["tags"]["team"] == "ml"


def test_a_throttled_create_is_one_call_and_stays_transient(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    # The shared launch loop then keeps trying within its transient budget (looking the
    # job up first) instead of failing the step in the middle of a throttling storm.
    operator = make_operator(emulator, shared, retry_total=0)
    created = emulator.created_jobs
    creates = ("CreateOrUpdateJob", "CreateOrUpdateEnvironmentVersion")
    before = sum(len(emulator.requests.filter(name)) for name in creates)
    emulator.set_faults(Faults(throttle_rate=1.0))
    with pytest.raises(HttpResponseError) as refused:
        operator.submit(step_info(), ["true"], {})
    assert refused.value.status_code == 429
    assert operator.is_transient_error(refused.value)
    assert emulator.created_jobs == created
    # One try, not a loop of its own: the first refused call ends it.
    assert sum(len(emulator.requests.filter(name)) for name in creates) == before + 1


def test_the_emulator_gives_its_operator_config_and_each_jobs_step_attempt(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    fields = emulator.operator_config(compute="cpu-cluster", instance_type=None)
    assert fields["flavor"] == emulator.flavor == "azureml"
    assert fields["cloud_endpoint"] == emulator.endpoint_url
    assert fields["compute"] == "cpu-cluster" and "instance_type" not in fields
    operator = make_operator(emulator, shared)
    info = step_info()
    handle = operator.submit(info, ["true"], {})
    assert emulator.attempt_key(handle.job_id) == info.attempt_key
    with pytest.raises(KeyError):
        emulator.attempt_key("no-such-job")
