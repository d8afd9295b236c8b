"""The step-operator contract.

:meth:`StepOperator.launch` is written once, here: adopt an existing job or submit one, wait
with the poll policy, stream logs, cancel the remote job on an interrupt or at the deadline,
and raise a typed error on failure. Flavors only implement the primitives ``submit``,
``get_status``, ``cancel``, ``find_job`` and ``read_logs``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import signal
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from typing_extensions import TypeVar as DefaultTypeVar

from steplift.errors import ConfigError, LostContact, StepCancelled, StepFailed, StepTimeout
from steplift.interrupts import Terminated, deferred_interrupts, sigterm_as_interrupt
from steplift.launch.policy import LaunchPolicy
from steplift.models import JobHandle, JobStatus, LogChunk, StepRunInfo, config_error_from
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep
from steplift.secrets import SECRETS_ENV
from steplift.states import FailureKind, JobState
from steplift.store import ArtifactStore, join_uri

T = TypeVar("T")
RECEIPT = "receipt.json"
CHECKPOINT_ENV = "STEPLIFT_CHECKPOINT_DIR"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StepOperatorConfig(BaseModel):
    """Base of every flavor's config: typed, frozen, and unknown fields are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environment: dict[str, str] = Field(
        default_factory=dict, description="Variables set for every job of this operator."
    )
    max_runtime: float | None = Field(
        default=None, gt=0, description="Default max runtime of a step, in seconds."
    )
    max_queue_time: float | None = Field(
        default=None,
        gt=0,
        description="Give up on a job still waiting for capacity after this many seconds.",
    )
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variable -> reference into the provider's secret store; "
        "the value is read inside the job and never travels with the job definition.",
    )

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return value


class LaunchObserver:
    """Receives what happens during :meth:`StepOperator.launch`. Every method is optional."""

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        """A job was submitted (``adopted=False``) or an existing one adopted."""

    def on_status(self, status: JobStatus) -> None:
        """The job's status changed."""

    def on_log(self, line: str) -> None:
        """A new log line (without its newline)."""

    def on_warning(self, message: str) -> None:
        """Something went wrong that does not stop the step (e.g. a log read failed)."""


class StatusBatcher:
    """Coalesces the status questions of concurrent launches into one ``get_statuses`` call.

    No thread and no timer of its own: the first launch to ask while no call is in flight
    makes the call for everyone waiting at that moment (a group commit), after a ``gather``
    pause (seconds, a few milliseconds) in which the launches that woke with it join; those
    who ask during the call are answered by the next one, which one of them makes. Launches
    that poll on the same schedule thus share a call per round, however many they are.
    """

    def __init__(
        self,
        fetch: Callable[[Sequence[JobHandle]], dict[str, JobStatus]],
        fetch_one: Callable[[JobHandle], JobStatus],
        gather: float = 0.0,
    ) -> None:
        self._fetch = fetch
        self._fetch_one = fetch_one
        self._gather = gather
        self._changed = threading.Condition()
        self._waiting: list[_StatusSlot] = []
        self._busy = False
        self.calls = 0
        """Batch calls made so far (for benchmarks)."""

    def status(self, handle: JobHandle) -> JobStatus:
        """The status of ``handle`` from the next batch call (which this thread may make)."""
        slot = _StatusSlot(handle)
        with self._changed:
            self._waiting.append(slot)
            while self._busy and not slot.answered:
                self._changed.wait()
            if slot.answered:
                return slot.result()
            self._busy = True
        try:
            with self._changed:
                if self._gather:
                    # One short, bounded pause lets the launches that wake with this one
                    # join its call instead of making the next.
                    self._changed.wait(self._gather)
                batch, self._waiting = self._waiting, []
        except BaseException:  # interrupted (Ctrl-C) before the call: hand the turn on
            with self._changed:
                self._busy = False
                self._changed.notify_all()
            raise
        self._answer(batch)
        return slot.result()

    def _answer(self, batch: list[_StatusSlot]) -> None:
        try:
            unique = {slot.handle.job_id: slot.handle for slot in batch}
            self.calls += 1
            failure: Exception | None = None
            statuses: dict[str, JobStatus] = {}
            try:
                statuses = self._fetch(list(unique.values()))
            except Exception as error:  # each launch weighs it (transient or not) itself
                failure = error
            for slot in batch:
                found = statuses.get(slot.handle.job_id)
                if failure is not None:
                    slot.fail(failure)
                elif found is not None:
                    slot.answer(found)
                else:  # not in the list's answer: ask about this one alone
                    try:
                        slot.answer(self._fetch_one(slot.handle))
                    except Exception as error:
                        slot.fail(error)
        except BaseException:
            # Interrupted (Ctrl-C lands in the main thread): the others ask again.
            with self._changed:
                self._waiting = [slot for slot in batch if not slot.answered] + self._waiting
            raise
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()


class _StatusSlot:
    def __init__(self, handle: JobHandle) -> None:
        self.handle = handle
        self.answered = False
        self._status: JobStatus | None = None
        self._error: Exception | None = None

    def answer(self, status: JobStatus) -> None:
        self._status, self.answered = status, True

    def fail(self, error: Exception) -> None:
        self._error, self.answered = error, True

    def result(self) -> JobStatus:
        if self._error is not None:
            raise self._error
        assert self._status is not None
        return self._status


# Covariant (an operator of a flavor's config is an operator of the base config) and with a
# default, so ``StepOperator`` alone means "an operator of any flavor".
ConfigT = DefaultTypeVar(
    "ConfigT", bound=StepOperatorConfig, covariant=True, default=StepOperatorConfig
)


class StepOperator(ABC, Generic[ConfigT]):
    """Runs step attempts as jobs on one backend; generic in its flavor's config class.

    ``clock`` and ``sleep`` drive every wait, so tests can run a whole launch without
    sleeping for real; ``policy`` overrides the flavor's ``launch_policy``.
    """

    launch_policy: ClassVar[LaunchPolicy] = LaunchPolicy()
    """This flavor's tuning of the launch engine (polling, batching, budgets)."""
    multi_node: ClassVar[bool] = False
    """Whether the flavor runs steps that span several nodes (``Resources.nodes > 1``)."""

    def __init__(
        self,
        config: ConfigT,
        *,
        name: str = "default",
        clock: Clock = DEFAULT_CLOCK,
        sleep: Sleep = DEFAULT_SLEEP,
        policy: LaunchPolicy | None = None,
    ) -> None:
        self._config = config
        self.name = name
        self.clock = clock
        self.sleep = sleep
        self.policy = policy or self.launch_policy
        self._lock = threading.Lock()
        self._batcher: StatusBatcher | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight = 0

    @property
    def config(self) -> ConfigT:
        """This operator's validated config."""
        return self._config

    def portable_config(self) -> dict[str, Any]:
        """The config as JSON-able data that rebuilds this operator from any working directory."""
        return self.config.model_dump(mode="json")

    @property
    @abstractmethod
    def flavor(self) -> str:
        """The flavor name (``local``, ``sagemaker``, ...)."""

    @property
    @abstractmethod
    def artifact_store(self) -> ArtifactStore:
        """The store that holds execution info, inputs and results for this operator."""

    @property
    @abstractmethod
    def artifact_root(self) -> str:
        """The store URI under which step attempts are laid out."""

    # -- primitives every flavor implements -------------------------------------------------

    @abstractmethod
    def submit(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> JobHandle:
        """Create the provider job that runs ``entrypoint_command``; return its handle."""

    @abstractmethod
    def get_status(self, handle: JobHandle) -> JobStatus:
        """Ask the provider for the job's current status."""

    @abstractmethod
    def cancel(self, handle: JobHandle) -> None:
        """Ask the provider to stop the job (returns before it has stopped)."""

    @abstractmethod
    def find_job(self, info: StepRunInfo) -> JobHandle | None:
        """The existing job for this step attempt, if the provider has one."""

    @abstractmethod
    def read_logs(self, handle: JobHandle, cursor: str | None) -> LogChunk:
        """Log lines after ``cursor`` (None: from the start), and the next cursor."""

    def get_statuses(self, handles: Sequence[JobHandle]) -> dict[str, JobStatus]:
        """Statuses of many jobs by job id; flavors with a list API override this (and set
        ``batched_status``). A job missing from the answer is asked about on its own."""
        return {handle.job_id: self.get_status(handle) for handle in handles}

    def _call(self, function: Callable[[], T]) -> T:
        """Make one provider or store call: in place or on the pool (``call_workers``).

        These calls never nest, so the pool cannot deadlock. An interrupt while waiting
        lets the call finish first (one bounded HTTP call), so it lands after it, as without
        the pool: a create that went through is then found and cancelled, not left behind.
        """
        with self._lock:
            pool = self._pool
        if pool is None:  # no launch in flight (or no pool): in place
            return function()
        try:
            future = pool.submit(function)
        except RuntimeError:  # the last launch just ended and shut the pool down
            return function()
        try:
            return future.result()
        except KeyboardInterrupt:
            futures_wait([future])
            raise

    def _current_status(self, handle: JobHandle) -> JobStatus:
        """The job's status: on its own, or in the batch of every launch waiting right now."""
        if not self.policy.batched_status:
            return self._call(lambda: self.get_status(handle))
        with self._lock:
            if self._batcher is None:
                self._batcher = StatusBatcher(
                    lambda handles: self._call(lambda: self.get_statuses(handles)),
                    lambda one: self._call(lambda: self.get_status(one)),
                    gather=self.policy.status_gather,
                )
        return self._batcher.status(handle)

    def warm_up(self) -> None:
        """Import the SDK and build clients (called first in ``launch``, with interrupts held).

        Flavors that import a cloud SDK lazily do it here, so a Ctrl-C cannot land in the
        middle of the import.
        """
        return None

    def is_transient_error(self, error: Exception) -> bool:
        """True for errors worth trying again later (throttling, 5xx, lost connections).

        Called after the SDK's own retries gave up; flavors recognise their SDK's errors.
        """
        return False

    def checkpoint_dir(self, info: StepRunInfo) -> str | None:
        """The folder, as the job sees it, that keeps checkpoints across attempts of a step."""
        return None

    # -- the launch, written once -----------------------------------------------------------

    def check_step(self, info: StepRunInfo) -> None:
        """Refuse, with a :class:`ConfigError` and before any call, a step this flavor cannot run.

        Flavors extend it with what their cloud or machine types cannot do.
        """
        if info.resources.nodes > 1 and not self.multi_node:
            raise ConfigError(
                f"the {self.flavor} flavor runs single-node steps only",
                field="nodes",
                value=info.resources.nodes,
                has_value=True,
            )

    def gpus_per_node(self, info: StepRunInfo) -> int:
        """GPUs on each machine of the step: the step's own request, unless the flavor knows
        better (a GPU or an instance type in the operator's config)."""
        return info.resources.gpu_count

    def processes_per_node(self, info: StepRunInfo) -> int:
        """Processes the step runs on each node (``processes_per_node="gpu"``: one per GPU)."""
        return info.resources.processes_for(self.gpus_per_node(info))

    def world_size(self, info: StepRunInfo) -> int:
        """Processes the step runs across all its nodes."""
        return info.resources.nodes * self.processes_per_node(info)

    def job_environment(self, info: StepRunInfo) -> dict[str, str]:
        """The environment of the job: the operator's, then the step's on top."""
        environment = {**self.config.environment, **info.environment}
        checkpoints = self.checkpoint_dir(info)
        if checkpoints is not None:
            environment[CHECKPOINT_ENV] = checkpoints
        if self.config.secrets:
            # References only: the entrypoint reads the values inside the job.
            environment[SECRETS_ENV] = json.dumps(self.config.secrets, sort_keys=True)
        return environment

    def launch(
        self,
        info: StepRunInfo,
        entrypoint_command: list[str],
        *,
        observer: LaunchObserver | None = None,
        done_signal: Callable[[], bool] | None = None,
    ) -> None:
        """Run the step attempt as a job and wait until it ends.

        Adopts the existing job of the same step attempt instead of submitting twice. Returns
        when the job succeeded; raises :class:`StepFailed`, :class:`StepTimeout` or
        :class:`StepCancelled` otherwise. Ctrl-C or SIGTERM cancels the remote job first.

        ``done_signal`` is a cheap check (the launcher's: "is the result record stored?")
        made every ``signal_interval`` seconds between status polls; once it answers True the
        provider is asked at once, so a long poll backoff does not delay the end of a step.
        """
        observer = observer or LaunchObserver()
        self.check_step(info)
        with self._launch_in_flight():
            self._launch(info, entrypoint_command, observer, done_signal)

    @contextlib.contextmanager
    def _launch_in_flight(self) -> Iterator[None]:
        """Count the launch; the call pool lives while any launch of this operator does."""
        with self._lock:
            self._in_flight += 1
            if self.policy.call_workers and self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.policy.call_workers, thread_name_prefix=f"steplift-{self.name}"
                )
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                idle = None
                if self._in_flight == 0:
                    idle, self._pool = self._pool, None
            if idle is not None:
                idle.shutdown(wait=False)

    def _launch(
        self,
        info: StepRunInfo,
        entrypoint_command: list[str],
        observer: LaunchObserver,
        done_signal: Callable[[], bool] | None,
    ) -> None:
        handle: JobHandle | None = None
        with sigterm_as_interrupt():
            try:
                with deferred_interrupts():
                    self.warm_up()
                handle = self._adoptable(info, observer)
                adopted = handle is not None
                if handle is None:
                    handle = self._submit(info, entrypoint_command, observer)
                observer.on_job(handle, adopted)
                self._wait(info, handle, observer, done_signal)
            except KeyboardInterrupt as interrupt:
                signal_number = (
                    interrupt.signal_number if isinstance(interrupt, Terminated) else signal.SIGINT
                )
                self._stop_after_interrupt(info, handle, observer, int(signal_number))

    def lookup(
        self, info: StepRunInfo, observer: LaunchObserver | None = None
    ) -> tuple[JobHandle, JobStatus] | None:
        """The job of this step attempt and its status, if there is one.

        Transient errors are waited out within ``transient_budget``, as in ``launch``.
        """
        observer = observer or LaunchObserver()
        handle = self._find_job_patiently(info, observer)
        if handle is None:
            return None
        return handle, self._status_patiently(handle, observer)

    def _find_job_patiently(self, info: StepRunInfo, observer: LaunchObserver) -> JobHandle | None:
        """``find_job``, transient errors waited out within the budget."""
        return self._patiently(
            lambda: self._call(lambda: self.find_job(info)), "looking for the job", observer
        )

    def _status_patiently(self, handle: JobHandle, observer: LaunchObserver) -> JobStatus:
        """The job's current status, transient errors waited out within the budget."""
        return self._patiently(
            lambda: self._current_status(handle),
            f"asking for the status of {handle.name}",
            observer,
        )

    def _patiently(self, call: Callable[[], T], what: str, observer: LaunchObserver) -> T:
        """Make a control-plane call, waiting out transient errors within the budget."""
        delays = self.policy.poll.delays()
        give_up: float | None = None
        while True:
            try:
                return call()
            except Exception as error:
                if not self.is_transient_error(error):
                    raise
                now = self.clock()
                give_up = now + self.policy.transient_budget if give_up is None else give_up
                if now >= give_up:
                    raise
                delay = min(next(delays), give_up - now)
                observer.on_warning(f"{what} failed ({error}); trying again in {delay:g} s")
                self.sleep(delay)

    def _receipt_uri(self, info: StepRunInfo) -> str:
        return join_uri(info.artifact_uri, RECEIPT)

    def _adoptable(self, info: StepRunInfo, observer: LaunchObserver) -> JobHandle | None:
        """The job of this step attempt: from its receipt, else from the provider."""
        uri = self._receipt_uri(info)
        try:
            if self._call(lambda: self.artifact_store.exists(uri)):
                handle = JobHandle.model_validate_json(
                    self._call(lambda: self.artifact_store.get(uri))
                )
                if handle.flavor == self.flavor:
                    return handle
        except Exception as error:  # a receipt is a shortcut; the provider is the truth
            observer.on_warning(f"could not read the receipt {uri}: {error}")
        return self._find_job_patiently(info, observer)

    def _submit(
        self, info: StepRunInfo, entrypoint_command: list[str], observer: LaunchObserver
    ) -> JobHandle:
        """Submit once; after a transient failure, check for the job before trying again."""
        environment = self.job_environment(info)

        def create() -> JobHandle:
            try:
                return self._call(lambda: self.submit(info, entrypoint_command, environment))
            except Exception as error:
                if not self.is_transient_error(error):
                    raise
                # The create may have gone through before the error: never submit blindly.
                existing = self._find_job_patiently(info, observer)
                if existing is not None:
                    return existing
                raise

        handle = self._patiently(create, "submitting the job", observer)
        try:
            receipt = handle.model_dump_json().encode()
            self._call(lambda: self.artifact_store.put(self._receipt_uri(info), receipt))
        except Exception as error:  # the provider-side name or label still finds the job
            observer.on_warning(f"could not write the receipt of {handle.name}: {error}")
        return handle

    def _wait(
        self,
        info: StepRunInfo,
        handle: JobHandle,
        observer: LaunchObserver,
        done_signal: Callable[[], bool] | None = None,
    ) -> None:
        max_runtime = info.max_runtime or self.config.max_runtime
        started = self.clock()
        deadline = started + max_runtime if max_runtime else None
        max_queue = info.max_queue_time or self.config.max_queue_time
        delays = self.policy.poll.delays()
        cursor: str | None = None
        logs_due = started
        last: JobStatus | None = None
        while True:
            try:
                status = self._status_patiently(handle, observer)
            except Exception as error:
                if not self.is_transient_error(error):
                    raise
                raise LostContact(
                    f"{self.flavor} kept failing for {self.policy.transient_budget:g} s while job "
                    f"{handle.name} ran ({type(error).__name__}: {error}); the job may still be "
                    f"running: check it with `steplift status {info.run}`, stop it with "
                    f"`steplift cancel {info.run}`",
                    handle=handle,
                ) from error
            if status != last:
                observer.on_status(status)
                last = status
            if status.state.is_terminal or self.clock() >= logs_due:
                cursor = self.stream_logs(handle, cursor, observer)
                logs_due = self.clock() + self._in_flight / self.policy.log_rate
            if status.state.is_terminal:
                self._conclude(handle, status, max_runtime)
                return
            if (
                max_queue is not None
                and status.state is JobState.PENDING
                and self.clock() - started >= max_queue
            ):
                self._cancel_and_confirm(handle, observer)
                reason = status.message or status.provider_state
                raise StepFailed(
                    f"job {handle.name} was still waiting to start after {max_queue:g} s "
                    f"({reason}) and was cancelled",
                    handle=handle,
                    failure_kind=FailureKind.CAPACITY,
                    provider_state=status.provider_state,
                )
            if deadline is not None and self.clock() >= deadline:
                final = self._cancel_and_confirm(handle, observer)
                self.stream_logs(handle, cursor, observer)
                raise StepTimeout(
                    f"job {handle.name} ran past its max runtime of {max_runtime:g} s and "
                    f"was {'stopped' if final else 'asked to stop'}",
                    handle=handle,
                    max_runtime=max_runtime,
                )
            delay = next(delays)
            if deadline is not None:
                delay = max(0.0, min(delay, deadline - self.clock()))
            if self._sleep_unless_done(delay, done_signal):
                delays = self.policy.poll.delays()  # the step ended: confirm it quickly

    def _sleep_unless_done(self, delay: float, done_signal: Callable[[], bool] | None) -> bool:
        """Sleep ``delay`` seconds, checking ``done_signal`` in between; True if it fired."""
        if done_signal is None:
            self.sleep(delay)
            return False
        wake = self.clock() + delay
        while (left := wake - self.clock()) > 0:
            interval = max(self.policy.signal_interval, self._in_flight / self.policy.signal_rate)
            self.sleep(min(interval, left))
            try:
                if self._call(done_signal):
                    return True
            except Exception:  # the signal is a shortcut; the status poll stays the truth
                self.sleep(max(0.0, wake - self.clock()))
                return False
        return False

    def stream_logs(
        self, handle: JobHandle, cursor: str | None, observer: LaunchObserver
    ) -> str | None:
        """Hand new log lines to the observer; return the next cursor (logs are best effort)."""
        try:
            chunk = self._call(lambda: self.read_logs(handle, cursor))
        except Exception as error:  # logs are best effort: never lose track of a paid job
            observer.on_warning(f"could not read logs of {handle.name}: {error}")
            return cursor
        for line in chunk.lines:
            observer.on_log(line)
        return chunk.cursor

    @staticmethod
    def _conclude(handle: JobHandle, status: JobStatus, max_runtime: float | None) -> None:
        if status.state is JobState.SUCCEEDED:
            return
        detail = f": {status.message}" if status.message else ""
        if status.state is JobState.CANCELLED:
            raise StepCancelled(f"job {handle.name} was cancelled{detail}", handle=handle)
        kind = status.failure_kind
        if kind is None:
            kind = FailureKind.USER_CODE if status.exit_code else FailureKind.INFRASTRUCTURE
        if kind is FailureKind.TIMEOUT:
            raise StepTimeout(
                f"job {handle.name} ran past its max runtime{detail}",
                handle=handle,
                max_runtime=max_runtime,
            )
        raise StepFailed(
            f"job {handle.name} failed ({kind.value}){detail}",
            handle=handle,
            failure_kind=kind,
            provider_state=status.provider_state,
        )

    def _cancel_and_confirm(self, handle: JobHandle, observer: LaunchObserver) -> JobStatus | None:
        """Cancel, then poll (bounded by ``cancel_timeout``) until the provider confirms."""
        self._patiently(
            lambda: self._call(lambda: self.cancel(handle)), f"cancelling {handle.name}", observer
        )
        give_up = self.clock() + self.policy.cancel_timeout
        delays = self.policy.poll.delays()
        while True:
            status = self._status_patiently(handle, observer)
            observer.on_status(status)
            if status.state.is_terminal:
                return status
            if self.clock() >= give_up:
                observer.on_warning(
                    f"{handle.name}: the provider did not confirm the cancel within "
                    f"{self.policy.cancel_timeout:g} s"
                )
                return None
            self.sleep(max(0.0, min(next(delays), give_up - self.clock())))

    def _stop_after_interrupt(
        self,
        info: StepRunInfo,
        handle: JobHandle | None,
        observer: LaunchObserver,
        signal_number: int,
    ) -> None:
        name = signal.Signals(signal_number).name
        if handle is None:
            # The interrupt may have landed after the create call went through.
            handle = self._adoptable(info, observer)
            if handle is None:
                raise StepCancelled(
                    f"interrupted by {name} before a job was submitted", signal_number=signal_number
                ) from None
        try:
            final = self._cancel_and_confirm(handle, observer)
        except KeyboardInterrupt:
            raise StepCancelled(
                f"interrupted twice: stopped waiting for job {handle.name} to confirm its cancel; "
                f"check it with `steplift status {info.run}` or cancel it again with "
                f"`steplift cancel {info.run}`",
                handle=handle,
                signal_number=signal_number,
                confirmed=False,
            ) from None
        state = final.state.value if final else "not yet confirmed"
        raise StepCancelled(
            f"interrupted by {name}: cancelled job {handle.name} ({state})",
            handle=handle,
            signal_number=signal_number,
            confirmed=final is not None,
        ) from None


@dataclass(frozen=True)
class Flavor:
    """A kind of step operator, declared in a few lines in a package's ``flavor.py``::

        FLAVOR = Flavor(
            name="sagemaker",
            config="steplift_sagemaker.config:SageMakerStepOperatorConfig",
            operator="steplift_sagemaker.operator:SageMakerStepOperator",
        )

    and found through the ``steplift.flavors`` entry point (``sagemaker =
    "steplift_sagemaker.flavor:FLAVOR"``). The config and operator classes are named by import
    path, so nothing of the flavor is imported until a config is validated or an operator made.
    """

    name: str
    """The flavor name used in config files."""
    config: str
    """``module:Class`` of the pydantic model that validates this flavor's config."""
    operator: str
    """``module:Class`` of the operator (imported only when an operator is made)."""

    @property
    def config_class(self) -> type[StepOperatorConfig]:
        """The pydantic model that validates this flavor's config."""
        config_class: type[StepOperatorConfig] = _load_class(self.config, StepOperatorConfig)
        return config_class

    @property
    def implementation_class(self) -> type[StepOperator]:
        """The operator class."""
        operator_class: type[StepOperator] = _load_class(self.operator, StepOperator)
        return operator_class

    def validate_config(
        self,
        fields: Mapping[str, Any],
        *,
        file: str | None = None,
        operator: str | None = None,
    ) -> StepOperatorConfig:
        """Validate raw config fields; one ConfigError naming file, operator, field and value."""
        # Ctrl-C is held: the config class may be imported (its validator built) only now.
        with deferred_interrupts():
            try:
                return self.config_class.model_validate(dict(fields))
            except ValidationError as error:
                raise config_error_from(error, file=file, operator=operator) from None

    def create(
        self,
        config: StepOperatorConfig,
        *,
        name: str = "default",
        clock: Clock = DEFAULT_CLOCK,
        sleep: Sleep = DEFAULT_SLEEP,
        policy: LaunchPolicy | None = None,
    ) -> StepOperator:
        """Build an operator from a validated config (no API call is made)."""
        with deferred_interrupts():  # the operator's module may be imported only now
            implementation = self.implementation_class
            if not isinstance(config, self.config_class):
                raise TypeError(
                    f"the {self.name} flavor needs a {self.config_class.__name__}, "
                    f"not {type(config).__name__}"
                )
            return implementation(config, name=name, clock=clock, sleep=sleep, policy=policy)


def _load_class(path: str, base: type) -> Any:
    """The class at ``module:Class``, checked to be a subclass of ``base``."""
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not (isinstance(target, type) and issubclass(target, base)):
        raise TypeError(f"{path} is not a {base.__name__} class")
    return target
