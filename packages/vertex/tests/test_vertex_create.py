"""The create path through ``launch``: ``submit`` makes one create call, and the shared
mechanism retries it after a 429, 5xx or lost connection, each time only after ``find_job``
found no job: a create is never repeated blindly, and a storm slows launches down instead
of failing them, until the transient budget runs out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from vertex_support import OperatorFactory

from steplift.errors import ConfigError, StepFailed
from steplift.models import JobHandle, StepRunInfo
from steplift.operator import LaunchObserver
from steplift.states import FailureKind
from steplift.testing import ConformanceClock
from steplift.testing.emulation import FaultKind, Faults, free_port
from steplift.testing.memory import MemoryStore
from steplift_vertex.clients import JobNotCreated
from steplift_vertex.emulator import VertexEmulator
from steplift_vertex.emulator.errors import ApiError
from steplift_vertex.emulator.jobs import EmulatedJob
from steplift_vertex.operator import VertexStepOperator

STORM = 6


def step_info(run: str = "r1") -> StepRunInfo:
    return StepRunInfo(
        pipeline="p", run=run, step="s", artifact_uri=f"gs://steplift-staging/steplift/p/{run}/s/1"
    )


class Warnings(LaunchObserver):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def on_warning(self, message: str) -> None:
        self.lines.append(message)


def launching_operator(
    make_operator: OperatorFactory, emulator: VertexEmulator, clock: ConformanceClock
) -> VertexStepOperator:
    """An operator in virtual time whose receipts stay in memory (no storage emulator)."""
    operator = make_operator(emulator, clock=clock)
    operator._store = MemoryStore()  # type: ignore[assignment]
    return operator


def operations(emulator: VertexEmulator) -> list[str]:
    return [r.operation for r in emulator.requests.list() if r.service == "aiplatform"]


def fail_creates(
    emulator: VertexEmulator, monkeypatch: pytest.MonkeyPatch, first: int, kind: FaultKind
) -> None:
    """The first ``first`` creates are answered with ``kind`` before anything is created."""
    decide = emulator.decide_fault
    creates = 0

    def failing(operation: str) -> FaultKind | None:
        nonlocal creates
        if operation == "CreateCustomJob":
            creates += 1
            if creates <= first:
                return kind
        return decide(operation)

    monkeypatch.setattr(emulator, "decide_fault", failing)


def test_a_create_whose_answer_was_lost_is_adopted_not_repeated(
    make_operator: OperatorFactory, scripted: VertexEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = launching_operator(make_operator, scripted, ConformanceClock(real_pause=0))
    create = scripted.jobs.create

    def lands_then_fails(*args: Any) -> EmulatedJob:
        create(*args)
        raise ApiError("UNAVAILABLE", "The service is currently unavailable.")

    monkeypatch.setattr(scripted.jobs, "create", lands_then_fails)
    warnings = Warnings()
    operator.launch(step_info(), ["true"], observer=warnings)
    assert scripted.submissions() == 1
    assert operations(scripted)[:3] == ["ListCustomJobs", "CreateCustomJob", "ListCustomJobs"]
    assert operations(scripted).count("CreateCustomJob") == 1
    assert warnings.lines == []  # found at once: nothing to wait out
    # The receipt names the job that find_job adopted.
    receipt = operator.artifact_store.get(f"{step_info().artifact_uri}/receipt.json")
    adopted = operator.find_job(step_info())
    assert adopted is not None and adopted.job_id == scripted.jobs.all_jobs()[0].name
    assert JobHandle.model_validate_json(receipt) == adopted


def test_a_create_that_did_not_land_is_repeated_only_after_find_job(
    make_operator: OperatorFactory, scripted: VertexEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = launching_operator(make_operator, scripted, ConformanceClock(real_pause=0))
    fail_creates(scripted, monkeypatch, 1, "error")
    operator.launch(step_info(), ["true"])
    assert operations(scripted)[:4] == [
        "ListCustomJobs",  # adoption check before the first create
        "CreateCustomJob",  # 503
        "ListCustomJobs",  # did it land after all? no
        "CreateCustomJob",
    ]
    assert scripted.submissions() == 1


def test_a_429_storm_on_create_slows_down_then_succeeds(
    make_operator: OperatorFactory, scripted: VertexEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ConformanceClock(real_pause=0)
    operator = launching_operator(make_operator, scripted, clock)
    fail_creates(scripted, monkeypatch, STORM, "throttle")
    warnings = Warnings()
    operator.launch(step_info(), ["true"], observer=warnings)
    calls = operations(scripted)
    creates = [index for index, name in enumerate(calls) if name == "CreateCustomJob"]
    assert len(creates) == STORM + 1 and scripted.submissions() == 1
    assert all(calls[index - 1] == "ListCustomJobs" for index in creates)
    # Slower and slower: the waits between creates follow the poll backoff.
    backoff = clock.sleeps[:STORM]
    assert backoff == sorted(backoff) and backoff[-1] > backoff[0]
    assert len(warnings.lines) == STORM
    assert all("submitting the job failed" in line for line in warnings.lines)
    assert "429" in warnings.lines[0]


@pytest.mark.parametrize(
    ("fault", "kind"), [("throttle", FailureKind.QUOTA), ("error", FailureKind.INFRASTRUCTURE)]
)
def test_a_storm_that_outlasts_the_budget_fails_with_its_kind(
    make_operator: OperatorFactory,
    scripted: VertexEmulator,
    monkeypatch: pytest.MonkeyPatch,
    fault: FaultKind,
    kind: FailureKind,
) -> None:
    clock = ConformanceClock(real_pause=0)
    operator = launching_operator(make_operator, scripted, clock)
    operator.policy = replace(operator.policy, transient_budget=20.0)
    fail_creates(scripted, monkeypatch, 10_000, fault)
    started = clock.now()
    with pytest.raises(StepFailed) as caught:
        operator.launch(step_info(), ["true"])
    assert isinstance(caught.value, JobNotCreated)
    assert caught.value.failure_kind is kind
    assert caught.value.provider_state == "NOT_CREATED"
    assert clock.now() - started >= operator.policy.transient_budget
    calls = operations(scripted)
    assert scripted.submissions() == 0
    # Each create after the first came after a find_job, at the poll policy's pace (<= 2 s).
    assert calls.count("ListCustomJobs") == calls.count("CreateCustomJob") + 1
    assert operator.policy.transient_budget / 2 <= calls.count("CreateCustomJob") <= 40


def test_submit_makes_one_create_call(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    operator = make_operator(scripted)
    scripted.set_faults(Faults(refuse_create="quota"))
    with pytest.raises(JobNotCreated) as caught:
        operator.submit(step_info(), ["true"], {})
    assert caught.value.failure_kind is FailureKind.QUOTA
    assert operator.is_transient_error(caught.value)
    assert operations(scripted) == ["CreateCustomJob"]


def test_a_refusal_that_is_not_transient_is_a_config_error_at_once(
    make_operator: OperatorFactory, scripted: VertexEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = launching_operator(make_operator, scripted, ConformanceClock(real_pause=0))

    def refuse(*args: Any) -> EmulatedJob:
        raise ApiError("PERMISSION_DENIED", "Permission 'aiplatform.customJobs.create' denied")

    monkeypatch.setattr(scripted.jobs, "create", refuse)
    with pytest.raises(ConfigError, match="Vertex AI refused the job: .*Permission"):
        operator.launch(step_info(), ["true"])
    assert operations(scripted) == ["ListCustomJobs", "CreateCustomJob"]


def test_a_lost_connection_at_create_is_transient(
    make_operator: OperatorFactory, scripted: VertexEmulator
) -> None:
    # Nobody listens on that port: the connection is refused.
    operator = make_operator(scripted, api_endpoint=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(JobNotCreated) as caught:
        operator.submit(step_info(), ["true"], {})
    assert caught.value.failure_kind is FailureKind.INFRASTRUCTURE
    assert operator.is_transient_error(caught.value)
