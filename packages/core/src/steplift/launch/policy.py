"""How a launch waits, batches and gives up: one frozen object of tuning, set per flavor."""

from __future__ import annotations

from dataclasses import dataclass, field

from steplift.polling import PollPolicy


@dataclass(frozen=True)
class LaunchPolicy:
    """The launch engine's tuning. A flavor sets its default as ``launch_policy``; an operator
    built with ``policy=`` uses that instead (tests pass a fast one)."""

    poll: PollPolicy = field(default_factory=PollPolicy)
    """Delays between status polls of one job."""
    cancel_timeout: float = 120.0
    """How long to wait (seconds) for the provider to confirm a cancel before giving up."""
    signal_interval: float = 1.0
    """Seconds between checks of a launch's ``done_signal``."""
    signal_rate: float = 20.0
    """``done_signal`` checks per second one operator makes at most, shared by its launches
    in flight: with a thousand in flight each checks every 50 s instead of every
    second (the status polls still run), so the cheap signal stays cheap in storage calls."""
    log_rate: float = 10.0
    """Log reads per second one operator makes at most, shared by its launches in flight: one
    launch reads its job's new lines after every status poll, a thousand each read theirs
    every 100 s. A job's logs are always read to the end once it ends."""
    batched_status: bool = False
    """Whether ``get_statuses`` answers many jobs with few calls (a list API): then the
    launches of one process in flight at the same time share one status call per round."""
    call_workers: int | None = 8
    """Provider and artifact-store calls of ``launch`` are made on a small pool of this many
    threads instead of each launching thread: with a thousand launches in one process, only
    the pool's threads ever hold the SDKs' deep call stacks (whose pages stay resident for a
    thread's life; azure-ai-ml's alone kept ~200 MiB for 1000 threads). None: in place."""
    status_gather: float = 0.02
    """Seconds a batched status call waits for the other launches waking with it."""
    shortest_run: float = 60.0
    """Seconds: a budget (``max_cost``) that buys less runtime than this is refused before any
    call, since a job spends about that long starting (emulators, which start in a blink,
    lower it)."""
    transient_budget: float = 900.0
    """How long (seconds) control-plane calls may keep failing transiently, after the SDK's
    own retries, before a launch gives up: a storm slows polling down instead of failing."""
