"""Batched status: the launches of one process share ``customJobs.list`` calls.

The real aiplatform client against the scripted emulator, where a job moves one script step
each time a status read (a ``get``, or a ``list`` page) shows it. Receipts go to a store in
memory: only control-plane calls are counted here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from google.api_core import exceptions
from vertex_support import OperatorFactory

from steplift.models import LogChunk, StepRunInfo
from steplift.states import FailureKind, JobState
from steplift.testing import launch_together
from steplift.testing.emulation import Faults, ScriptStep
from steplift.testing.memory import MemoryStore
from steplift_vertex.clients import RetrySettings
from steplift_vertex.emulator import VertexEmulator
from steplift_vertex.requests import KEY_LABEL

LAUNCHES = 30
SCRIPT = ["PENDING", "RUNNING", "RUNNING", "RUNNING", "SUCCEEDED"]
"""Each job answers five status reads: a per-job loop asks about it at least five times."""


def step_info(run: str) -> StepRunInfo:
    return StepRunInfo(
        pipeline="p", run=run, step="s", artifact_uri=f"gs://steplift-staging/steplift/p/{run}/s/1"
    )


@dataclass
class FanOut:
    creates: int
    gets: int
    status_lists: int
    rounds: int
    failures: list[str]

    @property
    def status_calls(self) -> int:
        return self.gets + self.status_lists


def fan_out(make_operator: OperatorFactory, emulator: VertexEmulator, *, batched: bool) -> FanOut:
    """LAUNCHES concurrent launches on one operator, polling in lockstep rounds."""
    operator = make_operator(emulator)
    operator._store = MemoryStore()  # type: ignore[assignment]
    # Logs are read per job (Cloud Logging), a cost apart from status: not counted here.
    operator.read_logs = lambda handle, cursor: LogChunk([], cursor)  # type: ignore[method-assign]
    operator.policy = replace(operator.policy, batched_status=batched)
    operator.warm_up()
    emulator.script(None, SCRIPT)
    infos = [step_info(f"fan{number}") for number in range(LAUNCHES)]
    clock, errors = launch_together(operator, infos, ["true"], hold_until_submitted=False)
    failures = [f"{type(error).__name__}: {error}" for error in errors]
    lists = emulator.requests.filter("ListCustomJobs")
    return FanOut(
        creates=len(emulator.requests.filter("CreateCustomJob")),
        gets=len(emulator.requests.filter("GetCustomJob")),
        # find_job lists by one attempt's key label; the status lists by a creation window.
        status_lists=sum("create_time" in r.params["query"].get("filter", "") for r in lists),
        rounds=clock.moments,
        failures=failures,
    )


def test_concurrent_launches_share_list_calls(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    result = fan_out(make_operator, scripted, batched=True)
    assert result.failures == []
    assert result.creates == LAUNCHES == scripted.submissions()
    # Asking about each job alone costs at least LAUNCHES * len(SCRIPT) = 150 calls (each job
    # moves only when asked about; measured: 150 with batched=False). Shared calls: the first
    # launch awake asks alone (a get), the others share the next list: about 2-5 a round.
    assert result.status_calls * 3 <= LAUNCHES * len(SCRIPT), result
    assert result.status_lists > 0


def test_the_list_maps_states_and_errors_like_get(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(scripted)
    handles = [operator.submit(step_info(f"m{n}"), ["true"], {}) for n in range(3)]
    scripted.script(handles[0].job_id, ["RUNNING"])
    scripted.script(handles[1].job_id, [ScriptStep("FAILED", "RESOURCE_EXHAUSTED: no GPUs")])
    scripted.script(handles[2].job_id, ["EXPIRED"])
    statuses = operator.get_statuses(handles)
    assert [statuses[h.job_id].provider_state for h in handles] == ["RUNNING", "FAILED", "EXPIRED"]
    assert statuses[handles[1].job_id].failure_kind is FailureKind.CAPACITY
    assert statuses[handles[2].job_id].failure_kind is FailureKind.CAPACITY
    for handle in handles:  # the same answers from get, now that the scripts have ended
        assert operator.get_status(handle) == statuses[handle.job_id]
    (request,) = scripted.requests.filter("ListCustomJobs")
    query = request.params["query"]
    assert query["filter"] == (
        f'labels.{KEY_LABEL}:* AND create_time>="{handles[0].extra["create_time"]}"'
    )
    assert query["pageSize"] == "100"


def test_paging_stops_once_every_job_was_seen(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(scripted)
    operator.status_page_size = 2
    handles = [operator.submit(step_info(f"p{n}"), ["true"], {}) for n in range(5)]
    # Newest first: the two newest fill the first page, the third is on the second.
    statuses = operator.get_statuses(handles[2:])
    assert set(statuses) == {handle.job_id for handle in handles[2:]}
    assert len(scripted.requests.filter("ListCustomJobs")) == 2
    assert all(status.state is JobState.PENDING for status in statuses.values())


def test_jobs_the_list_cannot_place_are_left_to_get(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(scripted)
    handles = [operator.submit(step_info(f"q{n}"), ["true"], {}) for n in range(2)]
    without_time = [h.model_copy(update={"extra": {"job_number": "1"}}) for h in handles]
    assert operator.get_statuses(without_time) == {}
    assert scripted.requests.filter("ListCustomJobs") == []
    # One job alone is a get.
    assert set(operator.get_statuses(handles[:1])) == {handles[0].job_id}
    assert len(scripted.requests.filter("GetCustomJob")) == 1


def test_list_errors_are_transient_like_a_gets(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(scripted)
    handles = [operator.submit(step_info(f"e{n}"), ["true"], {}) for n in range(2)]
    operator.transport_retry = RetrySettings(initial=0.01, maximum=0.02, timeout=0.3)
    scripted.set_faults(Faults(throttle_rate=1.0))
    with pytest.raises(exceptions.RetryError) as caught:
        operator.get_statuses(handles)
    assert operator.is_transient_error(caught.value)
    assert len(scripted.requests.filter("ListCustomJobs")) > 1  # the transport retried
    scripted.set_faults(Faults(throttle_rate=0.5, error_rate=0.3, seed=3))
    assert set(operator.get_statuses(handles)) == {handle.job_id for handle in handles}
