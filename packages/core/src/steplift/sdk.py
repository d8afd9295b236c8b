"""The Python SDK: ``@steplift.step``, ``steplift.submit`` and ``steplift.run_command``."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from pydantic import ValidationError

from steplift.config import create_operator
from steplift.console import ConsoleObserver
from steplift.errors import ConfigError, StepliftError
from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.models import JobHandle, JobStatus, Resources, config_error_from
from steplift.operator import CHECKPOINT_ENV, LaunchObserver, StepOperator
from steplift.runs import DEFAULT_PIPELINE, Run, current_run

if TYPE_CHECKING:
    from steplift.plans import StepPlan

P = ParamSpec("P")
R = TypeVar("R")

OperatorLike = str | StepOperator | None
ResourcesLike = Resources | Mapping[str, Any] | None
RequirementsLike = str | Path | Sequence[str] | None

_runs: dict[tuple[str, str], Run] = {}
_runs_lock = threading.Lock()


def resolve_run(run: str | Run | None, pipeline: str | None = None) -> Run:
    """The Run object for a name; one per name per process, so step names stay unique."""
    if isinstance(run, Run):
        return run
    if run is None:
        return current_run()
    key = (run, pipeline or DEFAULT_PIPELINE)
    with _runs_lock:
        if key not in _runs:
            _runs[key] = Run(*key)
        return _runs[key]


def resolve_operator(operator: OperatorLike) -> StepOperator:
    """An operator object from a name (config file) or None (the chosen default)."""
    if isinstance(operator, StepOperator):
        return operator
    return create_operator(operator)


def make_options(
    *,
    resources: ResourcesLike = None,
    max_runtime: float | None = None,
    max_queue_time: float | None = None,
    retries: int = 0,
    retry_user_code: bool = False,
    spot_fallback_after: int | None = None,
    environment: Mapping[str, str] | None = None,
    image: str | None = None,
    tags: Mapping[str, str] | None = None,
    code: bool | str | None = None,
    requirements: RequirementsLike = None,
    max_cost: float | None = None,
) -> StepOptions:
    """Validate step options; ConfigError names the bad field."""
    if resources is None:
        parsed = Resources()
    elif isinstance(resources, Resources):
        parsed = resources
    else:
        try:
            parsed = Resources.model_validate(dict(resources))
        except ValidationError as error:
            raise config_error_from(error, prefix="resources.") from None
    return StepOptions(
        resources=parsed,
        max_runtime=max_runtime,
        max_queue_time=max_queue_time,
        retries=retries,
        retry_user_code=retry_user_code,
        spot_fallback_after=spot_fallback_after,
        environment=dict(environment or {}),
        image=image,
        tags=dict(tags or {}),
        code=code,
        requirements=_requirements(requirements),
        max_cost=max_cost,
    )


def _requirements(value: RequirementsLike) -> str | tuple[str, ...] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    if not all(isinstance(line, str) for line in value):
        raise ConfigError(
            'must be a list of strings, a file or "auto"',
            field="requirements",
            value=value,
            has_value=True,
        )
    return tuple(value)


class _HandleObserver(LaunchObserver):
    def __init__(self, owner: StepHandle) -> None:
        self.owner = owner

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        self.owner._job = handle
        if self.owner._cancel_requested.is_set():
            self.owner._launcher.operator.cancel(handle)

    def on_status(self, status: JobStatus) -> None:
        self.owner._status = status

    def on_log(self, line: str) -> None:
        with self.owner._lock:
            self.owner._logs.append(line)


class StepHandle:
    """A step running in the background: ``wait()``, ``status()``, ``cancel()``, ``logs()``."""

    def __init__(
        self, launcher: StepLauncher, spec: StepSpec, *, run: Run, step: str, options: StepOptions
    ) -> None:
        self._launcher = launcher
        self._job: JobHandle | None = None
        self._status: JobStatus | None = None
        self._logs: list[str] = []
        self._lock = threading.Lock()
        self._cancel_requested = threading.Event()
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self.run = run
        self.step = step
        launcher.observer = _HandleObserver(self)
        self._thread = threading.Thread(
            target=self._work, args=(spec, options), name=f"steplift-{step}", daemon=True
        )
        self._thread.start()

    def _work(self, spec: StepSpec, options: StepOptions) -> None:
        try:
            self._value = self._launcher.run(spec, run=self.run, step=self.step, options=options)
        except BaseException as error:  # handed to whoever waits
            self._error = error
        finally:
            self._done.set()

    @property
    def job(self) -> JobHandle | None:
        """The provider job, once it was submitted or adopted."""
        return self._job

    def done(self) -> bool:
        """True once the step has a value or an error."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Any:
        """The step's value; raises its error. TimeoutError if not done within ``timeout``."""
        try:
            finished = self._done.wait(timeout)
        except KeyboardInterrupt:
            self.cancel()
            self._done.wait(self._launcher.operator.policy.cancel_timeout)
            raise
        if not finished:
            raise TimeoutError(f"step {self.step} of run {self.run.name} is still running")
        if self._error is not None:
            raise self._error
        return self._value

    def status(self) -> JobStatus | None:
        """The job's current status, asked of the provider (None before it is submitted)."""
        if self._job is None:
            return None
        return self._launcher.operator.get_status(self._job)

    def cancel(self) -> None:
        """Ask the provider to stop the job; ``wait()`` then raises StepCancelled."""
        self._cancel_requested.set()
        if self._job is not None:
            self._launcher.operator.cancel(self._job)

    def logs(self) -> list[str]:
        """The log lines received so far."""
        with self._lock:
            return list(self._logs)

    @property
    def cost(self) -> float | None:
        """USD the step's ended attempts cost so far (None: no price known for any)."""
        return self._launcher.cost


class StepFunction(Generic[P, R]):
    """A function that runs as a job when called. Made by :func:`step`."""

    def __init__(
        self,
        function: Callable[P, R],
        *,
        name: str,
        operator: OperatorLike,
        options: StepOptions,
        run: str | Run | None = None,
        observer: LaunchObserver | None = None,
    ) -> None:
        self.__steplift_function__ = function
        self.__wrapped__ = function
        self.__doc__ = function.__doc__
        self.__name__ = getattr(function, "__name__", name)
        self.__qualname__ = getattr(function, "__qualname__", name)
        self.__module__ = function.__module__
        self.name = name
        self.operator = operator
        self.options = options
        self.run = run
        self.observer = observer

    def with_options(
        self,
        *,
        operator: OperatorLike = None,
        run: str | Run | None = None,
        observer: LaunchObserver | None = None,
        **options: Any,
    ) -> StepFunction[P, R]:
        """A copy with other options (``resources``, ``max_runtime``, ``retries``, ...)."""
        unknown = options.keys() - {field.name for field in dataclasses.fields(StepOptions)}
        if unknown:
            raise ConfigError(f"unknown step option(s): {', '.join(sorted(unknown))}")
        merged = {
            field.name: getattr(self.options, field.name)
            for field in dataclasses.fields(StepOptions)
        }
        merged.update(options)
        return StepFunction(
            self.__steplift_function__,
            name=self.name,
            operator=operator or self.operator,
            options=make_options(**merged),
            run=run or self.run,
            observer=observer or self.observer,
        )

    def _prepare(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[StepLauncher, StepSpec, Run, str]:
        spec = StepSpec.for_function(self.__steplift_function__, args, kwargs)
        run = resolve_run(self.run)
        launcher = StepLauncher(resolve_operator(self.operator), observer=self.observer)
        return launcher, spec, run, run.step_name(self.name)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        launcher, spec, run, step = self._prepare(args, kwargs)
        if self.observer is None:
            launcher.observer = ConsoleObserver(prefix=f"{step}: ")
        value: R = launcher.run(spec, run=run, step=step, options=self.options)
        return value

    def plan(self, *args: P.args, **kwargs: P.kwargs) -> StepPlan:
        """What calling the step would send, without sending anything (see :func:`plan`)."""
        spec = StepSpec.for_function(self.__steplift_function__, args, kwargs)
        run = resolve_run(self.run)
        launcher = StepLauncher(resolve_operator(self.operator))
        return launcher.plan(spec, run=run, step=self.name, options=self.options)

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> StepHandle:
        """Start the step in the background and return its handle."""
        launcher, spec, run, step = self._prepare(args, kwargs)
        return StepHandle(launcher, spec, run=run, step=step, options=self.options)


@overload
def step(function: Callable[P, R], /) -> StepFunction[P, R]: ...


@overload
def step(
    *,
    operator: OperatorLike = None,
    resources: ResourcesLike = None,
    max_runtime: float | None = None,
    max_queue_time: float | None = None,
    retries: int = 0,
    retry_user_code: bool = False,
    spot_fallback_after: int | None = None,
    environment: Mapping[str, str] | None = None,
    image: str | None = None,
    tags: Mapping[str, str] | None = None,
    code: bool | str | None = None,
    requirements: RequirementsLike = None,
    max_cost: float | None = None,
    name: str | None = None,
) -> Callable[[Callable[P, R]], StepFunction[P, R]]: ...


def step(
    function: Callable[P, R] | None = None,
    /,
    *,
    operator: OperatorLike = None,
    resources: ResourcesLike = None,
    max_runtime: float | None = None,
    max_queue_time: float | None = None,
    retries: int = 0,
    retry_user_code: bool = False,
    spot_fallback_after: int | None = None,
    environment: Mapping[str, str] | None = None,
    image: str | None = None,
    tags: Mapping[str, str] | None = None,
    code: bool | str | None = None,
    requirements: RequirementsLike = None,
    max_cost: float | None = None,
    name: str | None = None,
) -> StepFunction[P, R] | Callable[[Callable[P, R]], StepFunction[P, R]]:
    """Make a function a step: calling it runs it as a job and returns its value.

    ``operator`` names a configured operator (default: the config file's choice, else
    ``local``); ``resources`` asks for GPUs and more (``{"gpu": "A10G:1"}``); ``max_runtime``
    is in seconds, and so is ``max_queue_time`` (give up on a job that waits that long for
    capacity); ``retries`` re-runs preempted, capacity or infrastructure failures as new
    attempts (user-code failures too with ``retry_user_code=True``); with
    ``spot_fallback_after=K``, attempts after K preemptions run on on-demand capacity.
    ``code`` is what code the job gets (``"auto"``: the step's project, packaged; ``False``;
    or a folder) and ``requirements`` what pip installs in the job first (a list, a
    requirements file, or ``"auto"`` for the project's dependencies); both default to the
    operator's. ``max_cost`` (USD) is the step's budget, every node and attempt counted: it
    becomes the job's max runtime, so the cloud stops the job at its budget
    (:class:`~steplift.errors.BudgetExceeded`).
    """
    options = make_options(
        resources=resources,
        max_runtime=max_runtime,
        max_queue_time=max_queue_time,
        retries=retries,
        retry_user_code=retry_user_code,
        spot_fallback_after=spot_fallback_after,
        environment=environment,
        image=image,
        tags=tags,
        code=code,
        requirements=requirements,
        max_cost=max_cost,
    )

    def decorate(inner: Callable[P, R]) -> StepFunction[P, R]:
        return StepFunction(inner, name=name or inner.__name__, operator=operator, options=options)

    return decorate(function) if function is not None else decorate


def submit(function: Callable[..., Any], *args: Any, **kwargs: Any) -> StepHandle:
    """Run a step (or plain top-level function) in the background; see :class:`StepHandle`."""
    step_function = function if isinstance(function, StepFunction) else step(function)
    return step_function.submit(*args, **kwargs)


def checkpoint_dir() -> Path:
    """Inside a step: the folder whose files survive into the step's next attempt.

    Write checkpoints there; after a preemption or another transient failure, the retried
    attempt finds them and can resume.
    """
    value = os.environ.get(CHECKPOINT_ENV)
    if not value:
        raise StepliftError(
            f"steplift.checkpoint_dir() works inside a step's job ({CHECKPOINT_ENV} is not set)"
        )
    path = Path(value)
    path.mkdir(parents=True, exist_ok=True)
    return path


def command_step_name(command: list[str] | tuple[str, ...]) -> str:
    """A readable step name for a command: the script or program it runs."""
    words = [Path(word).name for word in command]
    program = words[0] if words else "command"
    if program.startswith("python") and len(words) > 1:
        script = next((word for word in words[1:] if word.endswith(".py")), None)
        if script:
            program = script[: -len(".py")]
        elif words[1] == "-m" and len(words) > 2:
            program = words[2]
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", program).strip("-._") or "command"
    return cleaned[:128]


def run_command(
    command: list[str],
    *,
    operator: OperatorLike = None,
    run: str | Run | None = None,
    name: str | None = None,
    resources: ResourcesLike = None,
    max_runtime: float | None = None,
    max_queue_time: float | None = None,
    retries: int = 0,
    environment: Mapping[str, str] | None = None,
    image: str | None = None,
    tags: Mapping[str, str] | None = None,
    code: bool | str | None = None,
    requirements: RequirementsLike = None,
    max_cost: float | None = None,
    observer: LaunchObserver | None = None,
) -> int:
    """Run a plain command as a job; returns 0 or raises StepFailed with its exit code."""
    spec = StepSpec.for_command(command)
    options = make_options(
        resources=resources,
        max_runtime=max_runtime,
        max_queue_time=max_queue_time,
        retries=retries,
        environment=environment,
        image=image,
        tags=tags,
        code=code,
        requirements=requirements,
        max_cost=max_cost,
    )
    active = resolve_run(run)
    step_name = active.step_name(name or command_step_name(command))
    launcher = StepLauncher(
        resolve_operator(operator), observer=observer or ConsoleObserver(prefix=f"{step_name}: ")
    )
    code = launcher.run(spec, run=active, step=step_name, options=options)
    return int(code or 0)


def plan(function: Callable[..., Any], *args: Any, **kwargs: Any) -> StepPlan:
    """What calling the step would send, without sending anything: ``steplift.plan(train, 3)``.

    Takes what :func:`submit` takes. Returns a :class:`~steplift.plans.StepPlan` (the
    operator, machines, the exact request body, code package, max runtime, cost estimate);
    raises the ConfigError a launch would raise before any call. Makes no provider call and
    uploads nothing.
    """
    step_function = function if isinstance(function, StepFunction) else step(function)
    return step_function.plan(*args, **kwargs)


def plan_command(
    command: list[str],
    *,
    operator: OperatorLike = None,
    run: str | Run | None = None,
    name: str | None = None,
    resources: ResourcesLike = None,
    max_runtime: float | None = None,
    max_queue_time: float | None = None,
    retries: int = 0,
    environment: Mapping[str, str] | None = None,
    image: str | None = None,
    tags: Mapping[str, str] | None = None,
    code: bool | str | None = None,
    requirements: RequirementsLike = None,
    max_cost: float | None = None,
) -> StepPlan:
    """What :func:`run_command` would send, without sending anything (``steplift plan``)."""
    spec = StepSpec.for_command(command)
    options = make_options(
        resources=resources,
        max_runtime=max_runtime,
        max_queue_time=max_queue_time,
        retries=retries,
        environment=environment,
        image=image,
        tags=tags,
        code=code,
        requirements=requirements,
        max_cost=max_cost,
    )
    active = resolve_run(run)
    launcher = StepLauncher(resolve_operator(operator))
    step_name = name or command_step_name(command)
    return launcher.plan(spec, run=active, step=step_name, options=options)


__all__ = [
    "checkpoint_dir",
    "plan",
    "plan_command",
    "StepFunction",
    "StepHandle",
    "resolve_operator",
    "resolve_run",
    "run_command",
    "step",
    "submit",
]
