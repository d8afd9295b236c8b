"""Batched status: concurrent launches share ListTrainingJobs pages instead of a describe each."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import boto3
import pytest
from botocore.exceptions import ClientError
from sagemaker_helpers import MakeOperator

from steplift.models import StepRunInfo
from steplift.states import FailureKind, JobState
from steplift.testing import launch_together
from steplift.testing.emulation import Faults, ScriptStep
from steplift_sagemaker.emulator import SageMakerEmulator
from steplift_sagemaker.emulator.jobs import PRIMARY_OF
from steplift_sagemaker.status import status_from_description, status_from_summary

ROLE = "arn:aws:iam::123456789012:role/steplift"
BUCKET = "steplift-batched"
BUCKET_URI = f"s3://{BUCKET}/runs"
LAUNCHES = 30
STEPS_TO_END = 5  # the emulator's default script: Starting .. Uploading, then Completed
IN_PROGRESS = sorted(status for status, primary in PRIMARY_OF.items() if primary == "InProgress")


@pytest.fixture(scope="module")
def emulator() -> Iterator[SageMakerEmulator]:
    with SageMakerEmulator(mode="scripted") as running:
        boto3.session.Session().client(
            "s3",
            endpoint_url=running.endpoint_url,
            region_name=running.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=BUCKET)
        yield running


@pytest.fixture(autouse=True)
def _clean(emulator: SageMakerEmulator) -> Iterator[None]:
    yield
    emulator.reset()


def step_info(run: str, step: str) -> StepRunInfo:
    return StepRunInfo(
        pipeline="p", run=run, step=step, artifact_uri=f"s3://{BUCKET}/runs/p/{run}/{step}/1"
    )


def calls(emulator: SageMakerEmulator, operation: str) -> int:
    return len(emulator.requests.filter(operation, service="sagemaker"))


# --------------------------------------------------------------------------- mapping


@pytest.mark.parametrize("secondary", [*IN_PROGRESS, "Stopping"])
def test_a_summary_maps_like_a_describe_of_the_same_job(secondary: str) -> None:
    summary = {
        "TrainingJobName": "job",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/job",
        "TrainingJobStatus": PRIMARY_OF[secondary],
        "SecondaryStatus": secondary,
    }
    description = {**summary, "RoleArn": ROLE, "SecondaryStatusTransitions": []}
    assert status_from_summary(summary) == status_from_description(description)


@pytest.mark.parametrize(
    "summary",
    [
        {"TrainingJobStatus": "Failed", "SecondaryStatus": "Failed"},  # no FailureReason
        {"TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxRuntimeExceeded"},
        {"TrainingJobStatus": "InProgress"},  # waiting or running? only a describe tells
    ],
)
def test_a_summary_that_cannot_tell_everything_is_left_to_a_describe(
    summary: dict[str, str],
) -> None:
    assert status_from_summary(summary) is None


def test_a_completed_summary_says_all_a_describe_would() -> None:
    completed = {"TrainingJobStatus": "Completed", "SecondaryStatus": "Completed"}
    assert status_from_summary(completed) == status_from_description(completed)


@pytest.mark.parametrize("secondary", IN_PROGRESS)
def test_the_emulators_summary_and_describe_give_the_same_status(
    emulator: SageMakerEmulator, make_operator: MakeOperator, secondary: str
) -> None:
    operator = make_operator(emulator, bucket=BUCKET_URI)
    info = step_info("mapping", secondary)
    emulator.script(operator.job_name(info), [secondary])  # one step: it stays there
    handle = operator.submit(info, ["python"], {})
    listed = operator.get_statuses([handle])
    assert listed == {handle.job_id: operator.get_status(handle)}
    assert listed[handle.job_id].provider_state == f"InProgress/{secondary}"


# --------------------------------------------------------------------------- get_statuses


def test_jobs_in_progress_cost_a_call_per_page_and_ended_ones_are_left_out(
    emulator: SageMakerEmulator, make_operator: MakeOperator
) -> None:
    operator = make_operator(emulator, bucket=BUCKET_URI)
    handles = [operator.submit(step_info("pages", f"s{n}"), ["python"], {}) for n in range(250)]
    emulator.requests.clear()
    statuses = operator.get_statuses(handles)
    assert set(statuses) == {handle.job_id for handle in handles}
    assert {status.state for status in statuses.values()} == {JobState.PENDING}
    assert calls(emulator, "ListTrainingJobs") == 3, "250 jobs: three pages of 100"
    assert calls(emulator, "DescribeTrainingJob") == 0
    sent = emulator.requests.filter("ListTrainingJobs")[0].params
    # Bounded by creation time (known from the submits), so every status is listed: a job
    # that completed is answered by the list too.
    assert "StatusEquals" not in sent
    assert sent["MaxResults"] == 100
    assert sent["NameContains"] == "p-pages-s"
    assert "CreationTimeAfter" in sent

    ended, done = handles[0], handles[1]
    emulator.script(ended.job_id, [ScriptStep("Failed", "AlgorithmError: exit code 3")])
    emulator.script(done.job_id, [ScriptStep("Completed")])
    answered = operator.get_statuses(handles)
    assert ended.job_id not in answered  # its describe tells more (the FailureReason)
    assert answered[done.job_id].state is JobState.SUCCEEDED
    status = operator.get_status(ended)
    assert status.state is JobState.FAILED and status.failure_kind is FailureKind.USER_CODE


def test_an_adopted_job_is_listed_unbounded_once_then_by_its_creation_time(
    emulator: SageMakerEmulator, make_operator: MakeOperator
) -> None:
    operator = make_operator(emulator, bucket=BUCKET_URI)
    info = step_info("adopted", "s")
    handle = make_operator(emulator, bucket=BUCKET_URI).submit(info, ["python"], {})
    emulator.requests.clear()
    assert operator.get_statuses([handle])[handle.job_id].state is JobState.PENDING
    assert operator.get_statuses([handle])[handle.job_id].state is JobState.PENDING
    first, second = (r.params for r in emulator.requests.filter("ListTrainingJobs"))
    assert "CreationTimeAfter" not in first  # this operator did not create it
    created = emulator.store.get(handle.job_id).created
    assert created - 2 <= second["CreationTimeAfter"] < created


def test_a_failed_listing_is_transient_like_a_failed_describe(
    emulator: SageMakerEmulator, make_operator: MakeOperator
) -> None:
    operator = make_operator(emulator, bucket=BUCKET_URI, max_attempts=1)
    handle = operator.submit(step_info("storm", "s"), ["python"], {})
    emulator.set_faults(Faults(throttle_rate=1.0))
    with pytest.raises(ClientError) as listing:
        operator.get_statuses([handle])
    with pytest.raises(ClientError) as describing:
        operator.get_status(handle)
    assert operator.is_transient_error(listing.value)
    assert operator.is_transient_error(describing.value)
    assert calls(emulator, "ListTrainingJobs") == 1


# --------------------------------------------------------------------------- launches


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "per-job"])
def test_concurrent_launches_share_their_status_calls(
    emulator: SageMakerEmulator,
    monkeypatch: pytest.MonkeyPatch,
    batched: bool,
    make_operator: MakeOperator,
) -> None:
    for key, value in emulator.client_env().items():
        monkeypatch.setenv(key, value)
    operator = make_operator(emulator, bucket=BUCKET_URI)
    monkeypatch.setattr(operator, "policy", replace(operator.policy, batched_status=batched))
    run = f"fleet-{'on' if batched else 'off'}"
    infos = [step_info(run, f"s{number}") for number in range(LAUNCHES)]
    emulator.requests.clear()
    clock, errors = launch_together(operator, infos, ["python", "-m", "steplift.entrypoint"])
    assert errors == []
    assert calls(emulator, "CreateTrainingJob") == LAUNCHES

    lists = calls(emulator, "ListTrainingJobs")
    describes = calls(emulator, "DescribeTrainingJob")
    polls = clock.sleeps + LAUNCHES  # every poll but a launch's last is followed by a sleep
    rounds = operator._launch_engine.control.status_rounds
    print(
        f"\nbatched={batched}: {polls} polls at {clock.moments} moments, {lists} "
        f"ListTrainingJobs in {rounds} rounds ({lists / clock.moments:g} per moment), "
        f"{describes} DescribeTrainingJob"
    )
    # Each launch describes once to look for an existing job. Asked one by one, each job
    # then needs a describe per script step; batched, the launches waking together share a
    # list call or two (the first to wake may go alone), which also answers jobs that
    # completed; only a job that failed or stopped is described once more.
    per_job_loop = LAUNCHES + LAUNCHES * STEPS_TO_END
    bound = 2 * LAUNCHES + 4 * clock.moments
    if batched:
        assert lists + describes <= bound < per_job_loop
        assert lists == rounds, "30 jobs fit one page: one call per round"
        assert describes == LAUNCHES
    else:
        assert lists == 0
        assert lists + describes >= per_job_loop > bound
