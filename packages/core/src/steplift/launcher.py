"""The launcher glue: write the inputs and execution info, build the entrypoint command,
``launch`` it through an operator, read the result back.

A step attempt that already has a result returns it without submitting anything; one that
already has a job adopts it (``StepOperator.launch`` asks ``find_job`` first). Failures whose
kind is transient (preempted, capacity, infrastructure) are retried as new attempts, up to
``retries`` times.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from steplift.cost import Budget, CostEstimate, JobUsage, attempt_cost, budget_for, check_budget
from steplift.cost import estimate as estimate_cost
from steplift.entrypoint import (
    EXECUTION_INFO_SHA256_OPTION,
    EXECUTION_INFO_URI_OPTION,
    StepEntrypointConfiguration,
)
from steplift.errors import BudgetExceeded, ConfigError, StepError, StepFailed, StepTimeout
from steplift.execution import (
    CodeRef,
    ExecutionInfo,
    RequirementsRef,
    ResultRecord,
    attempt_uri,
    execution_info_uri,
    result_uri,
)
from steplift.models import JobHandle, JobStatus, Resources, StepRunInfo
from steplift.operator import LaunchObserver, StepOperator
from steplift.payloads import SUFFIXES, Format, PayloadRef, encode, read_payload, sha256_hex
from steplift.runs import Run, RunIndex, StepRecord, check_name
from steplift.states import FailureKind
from steplift.store import ArtifactStore, join_uri

if TYPE_CHECKING:
    from steplift.packaging.requirements import RequirementsText
    from steplift.packaging.shipping import CodePlan
    from steplift.plans import StepPlan


@dataclass(frozen=True)
class StepOptions:
    """How a step is run: resources, limits, retries and its environment."""

    resources: Resources = field(default_factory=Resources)
    max_runtime: float | None = None
    max_queue_time: float | None = None
    retries: int = 0
    retry_user_code: bool = False
    spot_fallback_after: int | None = None
    """After this many preempted attempts, the next attempts run on on-demand capacity."""
    environment: dict[str, str] = field(default_factory=dict)
    image: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    code: bool | str | None = None
    """``"auto"``, ``False`` or a folder; None: the operator's ``code``."""
    requirements: str | tuple[str, ...] | None = None
    """Requirement strings, a requirements file or ``"auto"``; None: the operator's."""
    max_cost: float | None = None
    """USD the step may cost, every node and attempt counted (see :mod:`steplift.cost`)."""

    def __post_init__(self) -> None:
        check_budget(self.max_cost, "max_cost")
        if self.code is not None:
            from steplift.packaging.shipping import check_code_setting

            check_code_setting(self.code)
        if self.max_queue_time is not None and not self.max_queue_time > 0:
            raise ConfigError(
                "must be a positive number of seconds",
                field="max_queue_time",
                value=self.max_queue_time,
                has_value=True,
            )
        if self.max_runtime is not None and not self.max_runtime > 0:
            raise ConfigError(
                "must be a positive number of seconds",
                field="max_runtime",
                value=self.max_runtime,
                has_value=True,
            )
        if self.spot_fallback_after is not None and (
            not isinstance(self.spot_fallback_after, int) or self.spot_fallback_after < 1
        ):
            raise ConfigError(
                "must be a whole number, 1 or more",
                field="spot_fallback_after",
                value=self.spot_fallback_after,
                has_value=True,
            )
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(
                "must be a whole number, 0 or more",
                field="retries",
                value=self.retries,
                has_value=True,
            )


@dataclass(frozen=True)
class StepSpec:
    """What runs: a Python function (by reference, or pickled by value) with its arguments,
    or a command; and the folder its code comes from."""

    kind: Literal["function", "command"]
    step_ref: str | None = None
    source_root: str | None = None
    """The folder the step's code imports from (a command's: the working directory); None
    when its code comes with the image (an installed package, steplift's own steps)."""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    pickled: bytes | None = None
    """The function pickled by value, when no job could import it (defined in ``__main__``)."""

    @classmethod
    def for_function(cls, function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> StepSpec:
        """Reference a top-level function so the job can import it, or pickle one from
        ``__main__`` (a script, ``python -c``, a notebook) by value."""
        from steplift.packaging.functions import defined_in_main, pickle_by_value

        qualname = function.__qualname__
        if defined_in_main(function):
            file = getattr(sys.modules.get("__main__"), "__file__", None)
            folder = Path(file).resolve().parent if file else Path.cwd()
            return cls(
                "function",
                f"__main__:{qualname}",
                str(folder),
                tuple(args),
                dict(kwargs),
                pickled=pickle_by_value(function),
            )
        module_name, source_root = _importable_module(function)
        if "<locals>" in qualname or "<lambda>" in qualname:
            raise ConfigError(
                "steps must be importable: define the step function at the top level of a module",
                field="step",
                value=qualname,
                has_value=True,
            )
        return cls("function", f"{module_name}:{qualname}", source_root, tuple(args), dict(kwargs))

    @classmethod
    def for_command(cls, command: list[str] | tuple[str, ...]) -> StepSpec:
        """A plain command run as the job, from the working directory's project."""
        if not command or not all(isinstance(part, str) for part in command):
            raise ConfigError(
                "a command is a non-empty list of strings",
                field="command",
                value=command,
                has_value=True,
            )
        return cls("command", source_root=str(Path.cwd().resolve()), command=tuple(command))


_SHIPPED_ELSEWHERE = ("site-packages", "dist-packages")


def _importable_module(function: Any) -> tuple[str, str | None]:
    """The module name the job imports the function from, and the folder that holds it
    (None when the module comes with the image: an installed package, or steplift)."""
    module_name = function.__module__
    module = sys.modules.get(module_name)
    if module_name == "__main__":  # run as `python -m name`: import it by that name
        module_name = module.__spec__.name  # type: ignore[union-attr]
        module = sys.modules.get(module_name, module)
    top = module_name.partition(".")[0]
    if top == "steplift" or top.startswith("steplift_"):
        return module_name, None  # steplift reaches the job on its own, never in a package
    file = getattr(module, "__file__", None)
    if not file:
        return module_name, None
    path = Path(file).resolve()
    depth = module_name.count(".") + (1 if path.name == "__init__.py" else 0)
    root = path.parents[depth]
    if any(part in _SHIPPED_ELSEWHERE for part in root.parts):
        return module_name, None
    return module_name, str(root)


def _inputs_data(spec: StepSpec) -> tuple[bytes, Format]:
    """A function step's arguments, encoded (a command has none)."""
    if spec.kind != "function":
        return b"", "json"
    return encode({"args": list(spec.args), "kwargs": spec.kwargs})


@dataclass(frozen=True)
class Shipment:
    """What a step's jobs get besides their image: the code package and the requirements."""

    code: CodePlan | None = None
    requirements: RequirementsText | None = None


class _IndexingObserver(LaunchObserver):
    """Keeps the run index up to date while passing events on."""

    def __init__(self, inner: LaunchObserver, index: RunIndex, entry: StepRecord) -> None:
        self.inner = inner
        self.index = index
        self.entry = entry
        self.handle: JobHandle | None = None

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        self.handle = handle
        self.entry.handle = handle
        self.entry.state = "ADOPTED" if adopted else "SUBMITTED"
        self.index.record(self.entry)
        self.inner.on_job(handle, adopted)

    def on_status(self, status: JobStatus) -> None:
        if status.state.value != self.entry.state:
            self.entry.state = status.state.value
            self.entry.message = status.message
            self.index.record(self.entry)
        self.inner.on_status(status)

    def on_log(self, line: str) -> None:
        self.inner.on_log(line)

    def on_warning(self, message: str) -> None:
        self.inner.on_warning(message)


class StepLauncher:
    """Runs step specs through one operator and returns their results."""

    def __init__(
        self,
        operator: StepOperator,
        *,
        observer: LaunchObserver | None = None,
        index: RunIndex | None = None,
    ) -> None:
        self.operator = operator
        self.observer = observer or LaunchObserver()
        self.index = index or RunIndex()
        self._costs: list[float] = []

    @property
    def cost(self) -> float | None:
        """USD the attempts this launcher ran cost (None: no price known for any of them)."""
        return sum(self._costs) if self._costs else None

    @property
    def store(self) -> ArtifactStore:
        """The operator's artifact store."""
        return self.operator.artifact_store

    def run(self, spec: StepSpec, *, run: Run, step: str, options: StepOptions) -> Any:
        """Run the step, retrying transient failures; return its value or raise."""
        check_name("step", step)
        shipment = self.plan_shipment(spec, options)  # bad code or requirements: before any call
        attempt = 1
        preempted = 0
        while True:
            try:
                return self.run_attempt(
                    spec, run=run, step=step, attempt=attempt, options=options, shipment=shipment
                )
            except StepFailed as failure:
                retryable = failure.failure_kind.is_transient or (
                    options.retry_user_code and failure.failure_kind is FailureKind.USER_CODE
                )
                if attempt > options.retries or not retryable:
                    raise
                self.observer.on_warning(
                    f"attempt {attempt} of step {step} failed ({failure.failure_kind.value}); "
                    f"retrying as attempt {attempt + 1} of {options.retries + 1}"
                )
                preempted += failure.failure_kind is FailureKind.PREEMPTED
                fallback = options.spot_fallback_after
                if (
                    fallback is not None
                    and preempted >= fallback
                    and options.resources.spot is not False
                ):
                    self.observer.on_warning(
                        f"step {step} was preempted {preempted} times; the next attempts run "
                        "on on-demand capacity"
                    )
                    on_demand = options.resources.model_copy(update={"spot": False})
                    options = dataclasses.replace(options, resources=on_demand)
                attempt += 1

    def step_info(self, *, run: Run, step: str, attempt: int, options: StepOptions) -> StepRunInfo:
        """The StepRunInfo of one attempt."""
        folder = attempt_uri(self.operator.artifact_root, run.pipeline, run.name, step, attempt)
        environment = {
            **options.environment,
            "STEPLIFT_JOB_PIPELINE": run.pipeline,
            "STEPLIFT_JOB_RUN": run.name,
            "STEPLIFT_JOB_STEP": step,
            "STEPLIFT_JOB_ATTEMPT": str(attempt),
        }
        return StepRunInfo(
            pipeline=run.pipeline,
            run=run.name,
            step=step,
            attempt=attempt,
            resources=options.resources,
            environment=environment,
            max_runtime=options.max_runtime or self.operator.config.max_runtime,
            max_queue_time=options.max_queue_time or self.operator.config.max_queue_time,
            image=options.image,
            tags=options.tags,
            artifact_uri=folder,
        )

    def budgeted_info(
        self, info: StepRunInfo, *, run: Run, options: StepOptions
    ) -> tuple[StepRunInfo, CostEstimate, Budget | None]:
        """The attempt with the max runtime its budget buys (the smaller one wins), its cost
        estimate and its budget.

        The step's ``max_cost`` and the operator's count what earlier attempts of the step
        cost, the run's what every step of the run cost. ConfigError, before any call, for a
        budget with no price to turn it into time, or one that buys less than the policy's
        ``shortest_run``.
        """
        cost = estimate_cost(self.operator, info)
        spent_on_step = run.spent(info.step)
        budgets = [
            (limit - spent, owner)
            for limit, spent, owner in (
                (options.max_cost, spent_on_step, "step"),
                (self.operator.config.max_cost, spent_on_step, "operator"),
                (run.max_cost, run.spent(), "run"),
            )
            if limit is not None
        ]
        budget = budget_for(
            budgets, cost, shortest_run=self.operator.policy.shortest_run, what=f"step {info.step}"
        )
        if budget is None or not budget.binding or budget.seconds is None:
            return info, cost, budget
        info = info.model_copy(update={"max_runtime": budget.seconds})
        return info, estimate_cost(self.operator, info), budget

    def plan(self, spec: StepSpec, *, run: Run, step: str, options: StepOptions) -> StepPlan:
        """Everything a launch of the step's first attempt would do up to the create call,
        and nothing after: no provider call, no upload, nothing written.

        ConfigError (what ``run`` would raise before any call) when the step would be refused.
        """
        from steplift.packaging.shipping import code_uri
        from steplift.plans import CodeSummary, StepPlan

        check_name("step", step)
        shipment = self.plan_shipment(spec, options)
        info = self.step_info(run=run, step=step, attempt=1, options=options)
        info, cost, budget = self.budgeted_info(info, run=run, options=options)
        self.operator.check_step(info)
        execution, _ = self._execution(spec, info, shipment)
        blob = execution.model_dump_json(indent=2).encode()
        command = self.entrypoint_command(execution_info_uri(info.artifact_uri), sha256_hex(blob))
        environment = self.operator.job_environment(info)
        request = self.operator.describe_request(info, command, environment)
        code = None
        if shipment.code is not None:
            package = shipment.code.package
            code = CodeSummary(
                sha256=package.sha256,
                files=package.files,
                size=package.size,
                compressed_size=len(package.data),
                uri=code_uri(self.operator.artifact_root, package.sha256),
            )
        return StepPlan(
            operator=self.operator.name,
            flavor=self.operator.flavor,
            run=run.name,
            step=step,
            nodes=info.resources.nodes,
            price_key=self.operator.price_key(info),
            max_runtime=info.max_runtime,
            budget=budget,
            estimate=cost,
            code=code,
            requirements=shipment.requirements.text if shipment.requirements else None,
            command=command,
            request=request,
        )

    def plan_shipment(self, spec: StepSpec, options: StepOptions) -> Shipment:
        """Pack the step's code and read its requirements (no call is made).

        ConfigError for a ``code`` folder that does not exist, a package over the size limit
        or a requirements file that does not exist.
        """
        from steplift.packaging.requirements import resolve_requirements
        from steplift.packaging.shipping import plan_code

        config = self.operator.config
        setting = options.code if options.code is not None else config.code
        code = plan_code(setting, source_root=spec.source_root, limit_mb=config.max_code_size_mb)
        wanted = options.requirements if options.requirements is not None else config.requirements
        project_root = code.project.root if code else None
        return Shipment(code, resolve_requirements(wanted, project_root=project_root))

    def run_attempt(
        self,
        spec: StepSpec,
        *,
        run: Run,
        step: str,
        attempt: int,
        options: StepOptions,
        shipment: Shipment | None = None,
    ) -> Any:
        """Run (or adopt, or read back) one attempt."""
        if shipment is None:
            shipment = self.plan_shipment(spec, options)
        info = self.step_info(run=run, step=step, attempt=attempt, options=options)
        info, cost, budget = self.budgeted_info(info, run=run, options=options)
        entry = StepRecord(
            run=run.name,
            pipeline=run.pipeline,
            step=step,
            attempt=attempt,
            operator=self.operator.name,
            flavor=self.operator.flavor,
            operator_config=self.operator.portable_config(),
            artifact_uri=info.artifact_uri,
            max_cost=budget.max_cost if budget else None,
        )
        self.operator.check_step(info)
        # Checks first that a stored attempt ran the same thing, so a relaunch with other
        # inputs is refused rather than handed the old result.
        info_uri, info_sha = self.prepare(spec, info, shipment)
        stored = self._stored_result(info)
        if stored is not None and stored.status == "succeeded" and self._still_running(info):
            stored = None  # rank 0 is done, other nodes are not: adopt the job and wait
        if stored is not None:
            entry.state = "SUCCEEDED" if stored.status == "succeeded" else "FAILED"
            entry.message = "result already stored; nothing submitted"
            try:
                found = self.operator.lookup(info, self.observer)
            except Exception as error:  # the result is stored: showing its job is a nicety
                self.observer.on_warning(f"the result is stored; its job was not found: {error}")
                found = None
            entry.handle = found[0] if found else None
            self.index.record(entry)
            if found is not None:
                # Show the finished job as a live launch would have: its logs and end state.
                self.observer.on_job(found[0], True)
                self.operator.stream_logs(found[0], None, self.observer)
                self.observer.on_status(found[1])
                if stored.status == "failed" and found[1].failure_kind is FailureKind.TIMEOUT:
                    # The cloud stopped it at its max runtime (the step, killed, recorded only
                    # its signal): the same error a launch watching it would have raised.
                    spent = self._charge(run, entry, found[0], cost, None)
                    timeout = StepTimeout(
                        f"job {found[0].name} ran past its max runtime: {found[1].message}",
                        handle=found[0],
                        max_runtime=info.max_runtime,
                    )
                    raise self._budget_error(timeout, budget, cost, spent) from None
            return self._value_of(stored, entry.handle)
        command = self.entrypoint_command(info_uri, info_sha)
        self.index.record(entry)
        observer = _IndexingObserver(self.observer, self.index, entry)
        started = self.operator.clock()
        try:
            result_at = result_uri(info.artifact_uri)
            self.operator.launch(
                info,
                command,
                observer=observer,
                done_signal=lambda: self.store.exists(result_at),
            )
        except StepError as error:
            spent = self._charge(run, entry, observer.handle, cost, started)
            if isinstance(error, StepTimeout):
                raise self._budget_error(error, budget, cost, spent) from None
            if not isinstance(error, StepFailed):
                raise
            failure = error
            record = self._stored_result(info)
            if record is not None and record.status == "failed":
                raise self._remote_failure(record, observer.handle, failure) from None
            raise
        self._charge(run, entry, observer.handle, cost, started)
        record = self._stored_result(info)
        if record is None:
            raise StepFailed(
                f"job {observer.handle.name if observer.handle else '?'} succeeded but wrote no "
                f"result to {result_uri(info.artifact_uri)}; is steplift installed in the image?",
                handle=observer.handle,
                failure_kind=FailureKind.INFRASTRUCTURE,
            )
        return self._value_of(record, observer.handle)

    @staticmethod
    def _budget_error(
        timeout: StepTimeout, budget: Budget | None, cost: CostEstimate, spent: float | None
    ) -> StepTimeout:
        """BudgetExceeded when the budget set the max runtime that stopped the job; else the
        timeout as it is."""
        if budget is None or not budget.binding or budget.seconds is None:
            return timeout
        name = timeout.handle.name if timeout.handle else "the job"
        return BudgetExceeded(
            f"job {name} was stopped by its budget: the {budget.owner}'s max_cost left "
            f"${budget.max_cost:.4g}, which "
            f"bought {budget.seconds:g} s at ${cost.usd_per_hour or 0:.4g}/h"
            + (f"; it cost ${spent:.4g}" if spent is not None else ""),
            handle=timeout.handle,
            max_runtime=budget.seconds,
            max_cost=budget.max_cost,
            budget_owner=budget.owner,
            cost=spent,
        )

    def _charge(
        self,
        run: Run,
        entry: StepRecord,
        handle: JobHandle | None,
        cost: CostEstimate,
        started: float | None,
    ) -> float | None:
        """Work out what the ended attempt cost, record it and charge it to the run
        (``started``: when this launcher started watching it, None if it did not)."""
        usage: JobUsage | None = None
        if handle is not None:
            try:
                usage = self.operator.job_usage(handle)
            except Exception as error:  # the cost is a report: never fail a step over it
                self.observer.on_warning(f"the cost of job {handle.name} is unknown: {error}")
        if usage is None and started is not None:
            # The launcher's own watch: from launch to end, queueing included (an upper bound).
            usage = JobUsage(started=started, ended=self.operator.clock(), source="launcher")
        usage = usage or JobUsage()
        spent, basis = attempt_cost(usage, cost)
        entry.cost, entry.cost_basis = spent, basis
        self.index.record(entry)
        if spent is not None:
            run.charge(entry.step, spent)
            self._costs.append(spent)
        return spent

    def _still_running(self, info: StepRunInfo) -> bool:
        """Whether a multi-process step's job is still running (its other nodes may fail)."""
        if self.operator.world_size(info) == 1:
            return False
        found = self.operator.lookup(info, self.observer)
        return found is not None and not found[1].state.is_terminal

    def _stored_result(self, info: StepRunInfo) -> ResultRecord | None:
        """Rank 0's result record; in a multi-process step, the first failure of any rank."""
        uri = result_uri(info.artifact_uri)
        record = (
            ResultRecord.model_validate_json(self.store.get(uri))
            if self.store.exists(uri)
            else None
        )
        if self.operator.world_size(info) == 1:
            return record
        failures = [
            ResultRecord.model_validate_json(self.store.get(failure))
            for failure in self.store.list(join_uri(info.artifact_uri, "failures"))
        ]
        if record is not None and record.status == "failed":
            failures.append(record)
        if not failures:
            return record
        return min(failures, key=lambda failed: (failed.finished_at or 0.0, failed.rank or 0))

    @staticmethod
    def entrypoint_command(info_uri: str, info_sha256: str) -> list[str]:
        """The command a job runs for an attempt whose execution info is stored."""
        command = StepEntrypointConfiguration.get_entrypoint_command()
        return command + StepEntrypointConfiguration.get_entrypoint_arguments(
            **{EXECUTION_INFO_URI_OPTION: info_uri, EXECUTION_INFO_SHA256_OPTION: info_sha256}
        )

    def prepare(
        self, spec: StepSpec, info: StepRunInfo, shipment: Shipment | None = None
    ) -> tuple[str, str]:
        """Write inputs and execution info once (and the code package, if not stored yet);
        return the info's URI and digest.

        A relaunch reuses what is stored, after checking it describes the same step.
        """
        from steplift.packaging.shipping import store_package

        if shipment is None:
            shipment = self.plan_shipment(spec, StepOptions())
        info_uri = execution_info_uri(info.artifact_uri)
        execution, inputs_data = self._execution(spec, info, shipment)
        if self.store.exists(info_uri):
            existing_blob = self.store.get(info_uri)
            existing = ExecutionInfo.model_validate_json(existing_blob)
            if (existing.step_ref, existing.command, existing.inputs) != (
                execution.step_ref,
                execution.command,
                execution.inputs,
            ):
                raise ConfigError(
                    f"step attempt {info.attempt_key} was already launched with a different "
                    "function, command or inputs; launch it under a new run name",
                    field="run",
                    value=info.run,
                    has_value=True,
                )
            return info_uri, sha256_hex(existing_blob)
        if shipment.code is not None:
            store_package(self.store, self.operator.artifact_root, shipment.code.package)
        if execution.function is not None and spec.pickled is not None:
            self.store.put(execution.function.uri, spec.pickled)
        if execution.inputs is not None:
            self.store.put(execution.inputs.uri, inputs_data)
        blob = execution.model_dump_json(indent=2).encode()
        self.store.put(info_uri, blob)
        return info_uri, sha256_hex(blob)

    def _execution(
        self, spec: StepSpec, info: StepRunInfo, shipment: Shipment
    ) -> tuple[ExecutionInfo, bytes]:
        """The execution info of an attempt as ``prepare`` stores it, and the encoded
        inputs it names (no call)."""
        from steplift.packaging.functions import python_version
        from steplift.packaging.shipping import code_uri

        inputs_data, inputs_format = _inputs_data(spec)
        inputs_ref = None
        if spec.kind == "function":
            suffix = SUFFIXES[inputs_format]
            inputs_ref = PayloadRef(
                uri=join_uri(info.artifact_uri, f"inputs.{suffix}"),
                format=inputs_format,
                sha256=sha256_hex(inputs_data),
            )
        function_ref = None
        if spec.pickled is not None:
            function_ref = PayloadRef(
                uri=join_uri(info.artifact_uri, "function.pkl"),
                format="pickle",
                sha256=sha256_hex(spec.pickled),
            )
        plan = shipment.code
        code_ref = None
        if plan is not None:
            code_ref = CodeRef(
                uri=code_uri(self.operator.artifact_root, plan.package.sha256),
                sha256=plan.package.sha256,
                import_path=plan.import_path,
                workdir=plan.workdir,
            )
        wanted = shipment.requirements
        requirements_ref = (
            RequirementsRef(text=wanted.text, sha256=wanted.sha256) if wanted else None
        )
        execution = ExecutionInfo(
            pipeline=info.pipeline,
            run=info.run,
            step=info.step,
            attempt=info.attempt,
            kind=spec.kind,
            step_ref=spec.step_ref,
            function=function_ref,
            function_python=python_version() if function_ref else None,
            code=code_ref,
            requirements=requirements_ref,
            inputs=inputs_ref,
            command=list(spec.command) if spec.kind == "command" else None,
            result_uri=result_uri(info.artifact_uri),
            nodes=info.resources.nodes,
            processes_per_node=self.operator.processes_per_node(info),
            gpus_per_node=self.operator.gpus_per_node(info),
        )
        return execution, inputs_data

    def _value_of(self, record: ResultRecord, handle: JobHandle | None) -> Any:
        if record.status == "failed":
            raise self._remote_failure(record, handle, None)
        if record.output is None:
            return record.exit_code
        return read_payload(self.store, record.output)

    @staticmethod
    def _remote_failure(
        record: ResultRecord, handle: JobHandle | None, failure: StepFailed | None
    ) -> StepFailed:
        name = handle.name if handle else "the job"
        if record.rank is not None:
            name += f" on node {record.node_rank} (rank {record.rank})"
        what = record.exception_type or "error"
        message = record.exception_message or (failure.remote_message if failure else None) or ""
        return StepFailed(
            f"step failed in {name}: {what}: {message}",
            handle=handle,
            failure_kind=FailureKind(record.failure_kind)
            if record.failure_kind
            else FailureKind.USER_CODE,
            remote_type=record.exception_type,
            remote_message=record.exception_message,
            remote_traceback=record.traceback,
            provider_state=failure.provider_state if failure else None,
        )
