"""Answer many status questions from a provider's list API, page by page (written once)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from steplift.models import JobStatus

Entry = TypeVar("Entry")


def collect_statuses(
    wanted: Iterable[str],
    pages: Iterable[Iterable[Entry]],
    job_id_of: Callable[[Entry], str],
    status_of: Callable[[Entry], JobStatus | None],
    *,
    bounded: bool = False,
) -> dict[str, JobStatus]:
    """The statuses of the ``wanted`` job ids that the list ``pages`` show, by job id.

    Ids match case-insensitively (the clouds' names do). ``status_of`` may answer None to
    leave a job to its own status call (a failed job whose reason only a get gives). Reading
    stops once every wanted job was seen; ``bounded`` also stops it once the pages read reach
    the jobs still unseen, so a round never costs more list calls than asking each unseen
    job alone would. The caller asks about the jobs left out on their own.
    """
    by_key = {job_id.lower(): job_id for job_id in wanted}
    seen: set[str] = set()
    statuses: dict[str, JobStatus] = {}
    if not by_key:
        return statuses
    for number, page in enumerate(pages, start=1):
        for entry in page:
            job_id = by_key.get(job_id_of(entry).lower())
            if job_id is None or job_id in seen:
                continue
            seen.add(job_id)
            status = status_of(entry)
            if status is not None:
                statuses[job_id] = status
        unseen = len(by_key) - len(seen)
        if unseen == 0 or (bounded and number >= unseen):
            break
    return statuses
