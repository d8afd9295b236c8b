"""The step-operator contract: what a flavor implements, and the one ``launch`` that runs it.

A flavor implements the primitives (``submit``, ``get_status``, ``cancel``, ``find_job``,
``read_logs``) and three properties, and may override the hooks below them.
:meth:`StepOperator.launch` is written once, in :mod:`steplift.launch`: adopt an existing job
or submit one, wait with the poll policy, stream logs, cancel the remote job on an interrupt
or at the deadline, and raise a typed error on failure.
"""

from __future__ import annotations

import importlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from typing_extensions import TypeVar as DefaultTypeVar

from steplift.errors import ConfigError
from steplift.interrupts import deferred_interrupts
from steplift.launch.batching import StatusBatcher
from steplift.launch.engine import LaunchEngine
from steplift.launch.observer import LaunchObserver
from steplift.launch.policy import LaunchPolicy
from steplift.launch.submission import RECEIPT
from steplift.models import JobHandle, JobStatus, LogChunk, StepRunInfo, config_error_from
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep
from steplift.secrets import SECRETS_ENV
from steplift.store import ArtifactStore

if TYPE_CHECKING:
    from steplift.cost import JobUsage, PriceKey

__all__ = [
    "CHECKPOINT_ENV",
    "RECEIPT",
    "ConfigT",
    "Flavor",
    "LaunchObserver",
    "StatusBatcher",
    "StepOperator",
    "StepOperatorConfig",
]

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
    price_per_hour: float | None = Field(
        default=None,
        ge=0,
        strict=True,  # a number, never a string or a boolean read as one
        allow_inf_nan=False,
        description="USD per node-hour of this operator's jobs (spot or not); overrides the "
        "flavor's price catalog, or prices what the catalog does not.",
    )
    max_cost: float | None = Field(
        default=None,
        gt=0,
        strict=True,
        allow_inf_nan=False,
        description="Most a step of this operator may cost, in USD, counting every node and "
        "attempt; turned into the job's max runtime before it is submitted.",
    )
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variable -> reference into the provider's secret store; "
        "the value is read inside the job and never travels with the job definition.",
    )

    code: bool | str = Field(
        default="auto",
        description='What code the job gets: "auto" (the step\'s project, packaged), false '
        "(none: the image holds it) or the path of a folder to package.",
    )
    max_code_size_mb: float = Field(
        default=100.0, gt=0, description="Largest code package, in MB, before it is refused."
    )
    requirements: list[str] | str | None = Field(
        default=None,
        description="Installed with pip in the job before the step is imported: requirement "
        'strings, the path of a requirements file, or "auto" (the project\'s '
        "[project] dependencies).",
    )

    @field_validator("code")
    @classmethod
    def _code_setting(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and not value.strip():
            raise ValueError('must be "auto", false or the path of a folder')
        return value

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return value


# Covariant (an operator of a flavor's config is an operator of the base config) and with a
# default, so ``StepOperator`` alone means "an operator of any flavor".
ConfigT = DefaultTypeVar(
    "ConfigT", bound=StepOperatorConfig, covariant=True, default=StepOperatorConfig
)


class StepOperator(ABC, Generic[ConfigT]):
    """Runs step attempts as jobs on one backend; generic in its flavor's config class.

    A flavor implements the three abstract properties and the five primitives, and may
    override the hooks; :meth:`launch` does the rest. ``clock`` and ``sleep`` drive every
    wait, so tests can run a whole launch without sleeping for real; ``policy`` overrides
    the flavor's ``launch_policy``.
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
        # All of the engine's state (call pool, status batcher, launches in flight) lives in
        # this one object, name-mangled so that a flavor's attributes cannot replace it.
        self.__engine = LaunchEngine(self)

    @property
    def config(self) -> ConfigT:
        """This operator's validated config."""
        return self._config

    # -- what every flavor implements -------------------------------------------------------

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

    # -- hooks a flavor may override ----------------------------------------------------------

    def get_statuses(self, handles: Sequence[JobHandle]) -> dict[str, JobStatus]:
        """Statuses of many jobs by job id; flavors with a list API override this (and set
        ``batched_status``). A job missing from the answer is asked about on its own."""
        return {handle.job_id: self.get_status(handle) for handle in handles}

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

    def describe_request(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> dict[str, Any] | None:
        """The exact create request ``submit`` would send, as JSON-able data, without any
        call (None: this flavor cannot say). ``steplift plan`` shows it."""
        return None

    def price_key(self, info: StepRunInfo) -> PriceKey | None:
        """What this flavor's price catalog prices one node of the step by (None: it has
        no catalog); see :mod:`steplift.cost`."""
        return None

    def job_usage(self, handle: JobHandle) -> JobUsage | None:
        """What the ended job used, as the provider reports it (start and end times, billable
        seconds); None: the launcher's own watch of the job is used instead."""
        return None

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

    def portable_config(self) -> dict[str, Any]:
        """The config as JSON-able data that rebuilds this operator from any working directory."""
        return self.config.model_dump(mode="json")

    # -- the launch, written once (in steplift.launch) ----------------------------------------

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
        self.__engine.launch(info, entrypoint_command, observer, done_signal)

    def lookup(
        self, info: StepRunInfo, observer: LaunchObserver | None = None
    ) -> tuple[JobHandle, JobStatus] | None:
        """The job of this step attempt and its status, if there is one.

        Transient errors are waited out within ``transient_budget``, as in ``launch``.
        """
        return self.__engine.lookup(info, observer or LaunchObserver())

    def stream_logs(
        self, handle: JobHandle, cursor: str | None, observer: LaunchObserver
    ) -> str | None:
        """Hand new log lines to the observer; return the next cursor (logs are best effort)."""
        return self.__engine.control.stream_logs(handle, cursor, observer)

    @property
    def _launch_engine(self) -> LaunchEngine:
        """The engine that runs this operator's launches (read-only; for tests and benchmarks)."""
        return self.__engine


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
