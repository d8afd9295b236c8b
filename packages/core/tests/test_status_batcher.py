"""StatusBatcher: concurrent launches share one get_statuses call per round."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from steplift.launch.batching import StatusBatcher
from steplift.models import JobHandle, JobStatus
from steplift.states import JobState


def _handle(number: int) -> JobHandle:
    return JobHandle(flavor="fake", job_id=f"job-{number}", name=f"job-{number}")


def _running(job_id: str) -> JobStatus:
    return JobStatus(state=JobState.RUNNING, provider_state=job_id)


class _Backend:
    """get_statuses that holds its first call until told, recording every call's jobs."""

    def __init__(self, missing: frozenset[str] = frozenset()) -> None:
        self.calls: list[list[str]] = []
        self.single: list[str] = []
        self.first_call_started = threading.Event()
        self.release = threading.Event()
        self.missing = missing

    def fetch(self, handles: Sequence[JobHandle]) -> dict[str, JobStatus]:
        self.calls.append(sorted(handle.job_id for handle in handles))
        if len(self.calls) == 1:
            self.first_call_started.set()
            assert self.release.wait(10), "the test never released the first call"
        return {h.job_id: _running(h.job_id) for h in handles if h.job_id not in self.missing}

    def fetch_one(self, handle: JobHandle) -> JobStatus:
        self.single.append(handle.job_id)
        return _running(handle.job_id)


def _ask_all(
    batcher: StatusBatcher, numbers: range
) -> tuple[list[threading.Thread], dict[str, JobStatus | Exception]]:
    answers: dict[str, JobStatus | Exception] = {}

    def ask(number: int) -> None:
        try:
            answers[f"job-{number}"] = batcher.status(_handle(number))
        except Exception as error:
            answers[f"job-{number}"] = error

    threads = [threading.Thread(target=ask, args=(n,), daemon=True) for n in numbers]
    for thread in threads:
        thread.start()
    return threads, answers


def _waiting(batcher: StatusBatcher, count: int) -> bool:
    for _ in range(2000):  # bounded: until `count` launches queued behind the call in flight
        with batcher._changed:
            if len(batcher._waiting) >= count:
                return True
        threading.Event().wait(0.005)
    return False


def test_launches_asking_during_a_call_share_the_next_one() -> None:
    backend = _Backend()
    batcher = StatusBatcher(backend.fetch, backend.fetch_one)
    first, answers = _ask_all(batcher, range(0, 1))
    assert backend.first_call_started.wait(10)
    rest, more = _ask_all(batcher, range(1, 201))
    assert _waiting(batcher, 200)
    backend.release.set()
    for thread in first + rest:
        thread.join(10)
    answers.update(more)
    assert len(backend.calls) == 2, "200 launches waiting together must cost one call"
    assert backend.calls[1] == sorted(f"job-{n}" for n in range(1, 201))
    assert all(
        isinstance(status, JobStatus) and status.provider_state == job_id
        for job_id, status in answers.items()
    )
    assert len(answers) == 201 and batcher.calls == 2


def test_a_job_missing_from_the_list_is_asked_about_alone() -> None:
    backend = _Backend(missing=frozenset({"job-1"}))
    backend.release.set()
    batcher = StatusBatcher(backend.fetch, backend.fetch_one)
    assert batcher.status(_handle(1)).provider_state == "job-1"
    assert backend.single == ["job-1"]


def test_a_failed_call_fails_every_launch_in_its_batch_and_the_next_call_is_fresh() -> None:
    calls: list[int] = []

    def fetch(handles: Sequence[JobHandle]) -> dict[str, JobStatus]:
        calls.append(len(handles))
        if len(calls) == 1:
            raise ConnectionError("throttled")
        return {h.job_id: _running(h.job_id) for h in handles}

    batcher = StatusBatcher(fetch, lambda handle: pytest.fail("not expected"))
    with pytest.raises(ConnectionError, match="throttled"):
        batcher.status(_handle(1))
    assert batcher.status(_handle(1)).state is JobState.RUNNING
    assert calls == [1, 1]


def test_launches_waking_together_share_the_first_call_after_a_short_gather() -> None:
    backend = _Backend()
    backend.release.set()
    batcher = StatusBatcher(backend.fetch, backend.fetch_one, gather=0.2)
    threads, answers = _ask_all(batcher, range(10))
    for thread in threads:
        thread.join(10)
    assert len(answers) == 10 and all(isinstance(a, JobStatus) for a in answers.values())
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 10


def test_an_interrupted_leader_does_not_wedge_the_batcher() -> None:
    backend = _Backend()
    backend.release.set()
    batcher = StatusBatcher(backend.fetch, backend.fetch_one, gather=0.01)
    real_wait = batcher._changed.wait
    interrupts = iter([KeyboardInterrupt()])

    def wait_once_interrupted(timeout: float | None = None) -> bool:
        interrupt = next(interrupts, None)
        if interrupt is not None:
            raise interrupt  # Ctrl-C landing in the gather pause
        return real_wait(timeout)

    batcher._changed.wait = wait_once_interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        batcher.status(_handle(1))
    # The cancel that follows a Ctrl-C asks again: it must be answered, not block.
    assert batcher.status(_handle(1)).provider_state == "job-1"

    def interrupted_fetch(handles: Sequence[JobHandle]) -> dict[str, JobStatus]:
        raise KeyboardInterrupt

    during_call = StatusBatcher(interrupted_fetch, backend.fetch_one)
    with pytest.raises(KeyboardInterrupt):
        during_call.status(_handle(2))
    during_call._fetch = backend.fetch
    assert during_call.status(_handle(2)).provider_state == "job-2"
