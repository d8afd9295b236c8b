"""Batched status: concurrent launches share pages of the jobs list instead of a get each;
through the real azure-ai-ml client (and its azure-core pipeline) and the scripted emulator."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import replace

import pytest
from azure.core.exceptions import HttpResponseError
from azureml_helpers import client_environment, make_operator

from steplift.models import JobHandle, StepRunInfo
from steplift.states import FailureKind, JobState
from steplift.testing import launch_together
from steplift.testing.emulation import Faults
from steplift_azureml.emulator import AzureMLEmulator
from steplift_azureml.emulator.jobs import STATUSES
from steplift_azureml.emulator.storage import Azurite
from steplift_azureml.operator import AzureMLStepOperator
from steplift_azureml.requests import ATTEMPT_TAG
from steplift_azureml.status import provider_state_of, status_from_state

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

LAUNCHES = 30
SCRIPT = ["Queued", "Preparing", "Running", "Running", "Finalizing", "Completed"]
"""Every fleet job's script: a read per step, so the job ends at its sixth read."""
_numbers = iter(range(1, 1_000_000))


@pytest.fixture(scope="module")
def scripted(azurite: Azurite) -> Iterator[AzureMLEmulator]:
    """A scripted emulator whose launches keep their receipts in the session's Azurite."""
    with AzureMLEmulator("scripted", azurite=azurite, retry_after_ms=10) as emulator:
        yield from client_environment(emulator)


@pytest.fixture(scope="module")
def shared(scripted: AzureMLEmulator) -> AzureMLStepOperator:
    operator = make_operator(scripted)
    operator.share_clients()  # build the clients once for the module
    return operator


@pytest.fixture
def emulator(scripted: AzureMLEmulator) -> Iterator[AzureMLEmulator]:
    scripted.reset()
    yield scripted
    scripted.reset()


def step_info(run: str | None = None, step: str = "train") -> StepRunInfo:
    number = next(_numbers)
    run = run or f"batch{number}"
    return StepRunInfo(
        pipeline="batched",
        run=run,
        step=step,
        artifact_uri=f"azureblob://devstoreaccount1/steplift-tests/batched/{run}/{step}/{number}",
    )


def submit(operator: AzureMLStepOperator, info: StepRunInfo) -> JobHandle:
    return operator.submit(info, ["python", "-m", "steplift.entrypoint"], {})


def calls(emulator: AzureMLEmulator, operation: str) -> int:
    return len(emulator.requests.filter(operation, service="azureml"))


# --------------------------------------------------------------------------- mapping


@pytest.mark.parametrize("provider_state", sorted(STATUSES - {"Failed"}))
def test_a_list_entry_maps_like_a_get_of_the_same_job(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator, provider_state: str
) -> None:
    operator = make_operator(emulator, shared)
    info = step_info()
    emulator.script(operator.job_name(info), [provider_state])  # one step: it stays there
    handle = submit(operator, info)
    listed = operator.get_statuses([handle])
    assert listed == {handle.job_id: operator.get_status(handle)}
    assert listed[handle.job_id].provider_state == provider_state


def test_an_sdk_enum_and_the_rest_string_are_the_same_state() -> None:
    # A get reads the status as the SDK's str enum, a list entry as the REST string.
    status_enum = enum.Enum("JobStatus", {name.upper(): name for name in STATUSES}, type=str)
    for member in status_enum:
        from_get = status_from_state(provider_state_of(member))
        assert from_get == status_from_state(provider_state_of(member.value))
        assert (from_get is None) == (member.value == "Failed")
    assert provider_state_of(None) == "NotStarted"
    assert status_from_state("SomethingNew") == status_from_state("NotStarted").model_copy(
        update={"provider_state": "SomethingNew"}
    )


def test_a_failed_job_is_left_to_its_get_which_reads_the_error(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared)
    info = step_info()
    failed = {"status": "Failed", "failure_reason": "user process exited with code 3"}
    emulator.script(operator.job_name(info), [failed])
    handle = submit(operator, info)
    assert operator.get_statuses([handle]) == {}
    assert calls(emulator, "GetRunDetails") == 0
    status = operator.get_status(handle)
    assert status.state is JobState.FAILED and status.failure_kind is FailureKind.USER_CODE
    assert status.exit_code == 3


# --------------------------------------------------------------------------- the emulator


def test_the_sdk_reads_every_page_and_each_listed_job_takes_a_scripted_step(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = make_operator(emulator, shared)
    emulator.script(None, ["Queued", "Running", "Completed"])
    handles = [submit(operator, step_info()) for _ in range(4)]
    monkeypatch.setattr(emulator, "list_page_size", 3)
    emulator.requests.clear()
    listed = [job.name for job in operator.ml_client.jobs.list()]
    assert sorted(listed) == sorted(emulator.job_ids()), "every job once, across the pages"
    assert listed[:4] == [handle.job_id for handle in reversed(handles)], "newest first"
    assert calls(emulator, "ListJobs") == -(-len(listed) // 3)
    assert calls(emulator, "GetJob") == 0
    assert {emulator.jobs[handle.job_id].status for handle in handles} == {"Queued"}
    assert operator.get_status(handles[0]).provider_state == "Running", "one step per read"


def test_a_list_read_respects_a_stuck_queue(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared)
    info = step_info()
    emulator.script(operator.job_name(info), ["Queued", "Running"])
    handle = submit(operator, info)
    emulator.set_faults(Faults(stuck_in_queue=True))
    stuck = [operator.get_statuses([handle])[handle.job_id].provider_state for _ in range(3)]
    assert stuck == ["NotStarted"] * 3
    emulator.set_faults(Faults())
    moving = [operator.get_statuses([handle])[handle.job_id].provider_state for _ in range(2)]
    assert moving == ["Queued", "Running"], "the script resumes where it stood"


def test_the_list_filters_as_the_service_does(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared, tags={"team": "vision"})
    handle = submit(operator, step_info())
    jobs = operator.jobs_list

    def names(**filters: str) -> list[str]:
        return [str(entry["name"]) for page in jobs.pages(**filters) for entry in page]

    assert handle.job_id in names(tag="team")
    assert handle.job_id in names(listViewType="All", jobType="Command")
    assert handle.job_id not in names(tag="no-such-tag")
    assert handle.job_id not in names(jobType="Sweep")
    assert names(listViewType="ArchivedOnly") == []
    assert handle.job_id not in names(properties="no-such-property")
    for bad in ({"listViewType": "Everything"}, {"$skip": "not-a-token"}):
        with pytest.raises(HttpResponseError) as refused:
            names(**bad)
        assert refused.value.status_code == 400
    assert all(r.service == "azureml" for r in emulator.requests.filter("ListJobs"))


# --------------------------------------------------------------------------- get_statuses


def test_a_call_per_page_filtered_to_steplift_jobs(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emulator, "list_page_size", 10)
    operator = make_operator(emulator, shared)
    emulator.script(None, ["Running"])
    handles = [submit(operator, step_info("pages", f"s{n}")) for n in range(25)]
    emulator.requests.clear()
    statuses = operator.get_statuses(handles)
    assert set(statuses) == {handle.job_id for handle in handles}
    assert {status.state for status in statuses.values()} == {JobState.RUNNING}
    assert calls(emulator, "ListJobs") == 3, "25 jobs: three pages of 10"
    assert calls(emulator, "GetJob") == 0
    first, *following = (request.params["query"] for request in emulator.requests.list())
    assert first["listViewType"] == "ActiveOnly"
    assert first["tag"] == ATTEMPT_TAG
    assert all(query["$skip"] and query["tag"] == ATTEMPT_TAG for query in following)

    # The newest jobs come first: the last five submitted need one page.
    emulator.requests.clear()
    assert set(operator.get_statuses(handles[-5:])) == {h.job_id for h in handles[-5:]}
    assert calls(emulator, "ListJobs") == 1


def test_jobs_the_list_does_not_show_stop_the_paging_early(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emulator, "list_page_size", 5)
    operator = make_operator(emulator, shared)
    for number in range(20):
        submit(operator, step_info("history", f"s{number}"))
    gone = [
        JobHandle(flavor="azureml", job_id=f"no-such-job-{n}", name=f"no-such-job-{n}")
        for n in range(2)
    ]
    emulator.requests.clear()
    # Two unseen jobs cost two gets: reading more than two pages for them would cost more.
    assert operator.get_statuses(gone) == {}
    assert calls(emulator, "ListJobs") == 2


def test_a_failed_listing_is_transient_like_a_failed_get(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, None, retry_total=0)
    handle = submit(operator, step_info())
    emulator.set_faults(Faults(throttle_rate=1.0))
    with pytest.raises(HttpResponseError) as listing:
        operator.get_statuses([handle])
    with pytest.raises(HttpResponseError) as getting:
        operator.get_status(handle)
    assert listing.value.status_code == getting.value.status_code == 429
    assert operator.is_transient_error(listing.value)
    assert operator.is_transient_error(getting.value)
    assert calls(emulator, "ListJobs") == 1

    emulator.set_faults(Faults(error_rate=1.0))
    with pytest.raises(HttpResponseError) as failing:
        operator.get_statuses([handle])
    assert failing.value.status_code == 503 and operator.is_transient_error(failing.value)


def test_a_workspace_the_list_cannot_find_leaves_each_job_to_its_get(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    operator = make_operator(emulator, shared, workspace="other-ws")
    handle = JobHandle(flavor="azureml", job_id="job-x", name="job-x")
    assert operator.get_statuses([handle]) == {}
    assert operator.get_status(handle).provider_state == "NotFound"


# --------------------------------------------------------------------------- launches


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "per-job"])
def test_concurrent_launches_share_their_status_calls(
    emulator: AzureMLEmulator,
    shared: AzureMLStepOperator,
    monkeypatch: pytest.MonkeyPatch,
    batched: bool,
) -> None:
    operator = make_operator(emulator, shared)
    monkeypatch.setattr(operator, "policy", replace(operator.policy, batched_status=batched))
    emulator.script(None, SCRIPT)
    run = f"fleet-{'on' if batched else 'off'}-{next(_numbers)}"
    infos = [step_info(run, f"s{number}") for number in range(LAUNCHES)]
    emulator.requests.clear()
    clock, errors = launch_together(
        operator, infos, ["python", "-m", "steplift.entrypoint"], timeout=120
    )
    assert errors == []
    assert calls(emulator, "CreateOrUpdateJob") == LAUNCHES

    lists = calls(emulator, "ListJobs")
    gets = calls(emulator, "GetJob")
    polls = clock.sleeps + LAUNCHES  # every poll but a launch's last is followed by a sleep
    rounds = operator._launch_engine.control.status_rounds
    print(
        f"\nbatched={batched}: {polls} polls at {clock.moments} moments, {lists} ListJobs "
        f"in {rounds} rounds ({lists / clock.moments:g} per moment), {gets} GetJob, "
        f"{calls(emulator, 'GetRunDetails')} GetRunDetails (logs)"
    )
    # Each launch gets its job once, to look for it before submitting (404). Asked one by
    # one, each job then costs a get per script step; batched, the launches waking together
    # share a list call (the first to wake may go alone), and no job needs a get of its own:
    # a completed job reads the same in the list.
    per_job_loop = LAUNCHES + LAUNCHES * len(SCRIPT)
    bound = LAUNCHES + 2 * clock.moments
    if batched:
        assert lists + gets <= bound < per_job_loop
        assert lists == rounds, "30 jobs fit one page: one call per round"
        assert gets == LAUNCHES
    else:
        assert lists == 0
        assert lists + gets >= per_job_loop > bound
