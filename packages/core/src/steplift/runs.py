"""Run identity and the local index of launched step attempts.

Every launch belongs to a run: the name given (``--name`` on the CLI, ``run=`` /
:func:`steplift.run` in the SDK, or ``STEPLIFT_RUN``) or one generated per process.
(pipeline, run, step, attempt) identifies a step attempt everywhere.

The index (``$STEPLIFT_HOME/runs/<run>/<step>.<attempt>.json``, ``STEPLIFT_HOME`` defaulting
to ``./.steplift``) remembers which operator and job ran each attempt, so that ``steplift
status``, ``logs`` and ``cancel`` work from any process. One file per attempt: concurrent
launchers never overwrite each other's entries.
"""

from __future__ import annotations

import contextvars
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from steplift.cost import check_budget
from steplift.errors import ConfigError
from steplift.models import NAME_PATTERN, JobHandle

RUN_ENV = "STEPLIFT_RUN"
PIPELINE_ENV = "STEPLIFT_PIPELINE"
HOME_ENV = "STEPLIFT_HOME"
DEFAULT_PIPELINE = "default"
_NAME = re.compile(NAME_PATTERN)


def check_name(kind: str, value: str) -> str:
    """Refuse a pipeline, run or step name that cannot name a step attempt."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigError(
            f"{kind} names start with a letter or digit and use letters, digits, '.', '_' "
            "and '-' (at most 128)",
            field=kind,
            value=value,
            has_value=True,
        )
    return value


def generate_run_name() -> str:
    """A fresh run name: ``run-<UTC date>-<time>-<4 hex>``."""
    return f"run-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


class Run:
    """A named run; step names are made unique within it (``train``, ``train_2``, ...).

    ``max_cost`` (USD) is the run's budget: every step attempt launched in it is charged what
    it cost, and a step is given only the time what is left buys.
    """

    def __init__(
        self, name: str, pipeline: str = DEFAULT_PIPELINE, *, max_cost: float | None = None
    ) -> None:
        self.name = check_name("run", name)
        self.pipeline = check_name("pipeline", pipeline)
        self.max_cost = check_budget(max_cost, "max_cost")
        self._calls: dict[str, int] = {}
        self._spent: dict[str, float] = {}
        self._lock = threading.Lock()

    def charge(self, step: str, usd: float) -> None:
        """Count what an attempt of ``step`` cost against the run's (and the step's) budget."""
        with self._lock:
            self._spent[step] = self._spent.get(step, 0.0) + usd

    def spent(self, step: str | None = None) -> float:
        """USD charged so far to the run, or to one of its steps."""
        with self._lock:
            if step is not None:
                return self._spent.get(step, 0.0)
            return sum(self._spent.values())

    def step_name(self, base: str) -> str:
        """The name of the next invocation of step ``base`` in this run."""
        with self._lock:
            count = self._calls.get(base, 0) + 1
            self._calls[base] = count
        return base if count == 1 else f"{base}_{count}"

    def __repr__(self) -> str:
        return f"Run(name={self.name!r}, pipeline={self.pipeline!r})"


_current: contextvars.ContextVar[Run | None] = contextvars.ContextVar("steplift_run", default=None)
_process_run: Run | None = None
_process_lock = threading.Lock()


def current_run() -> Run:
    """The run of the current context: set by :func:`run`, else one per process."""
    active = _current.get()
    if active is not None:
        return active
    global _process_run
    with _process_lock:
        if _process_run is None:
            _process_run = Run(
                os.environ.get(RUN_ENV) or generate_run_name(),
                os.environ.get(PIPELINE_ENV) or DEFAULT_PIPELINE,
            )
        return _process_run


@contextmanager
def run(
    name: str | None = None, pipeline: str | None = None, *, max_cost: float | None = None
) -> Iterator[Run]:
    """Launch the steps inside the block as one run: ``with steplift.run("nightly-7"): ...``.

    ``max_cost`` (USD) is a budget for every step attempt of the run together.
    """
    active = Run(
        name or os.environ.get(RUN_ENV) or generate_run_name(),
        pipeline or os.environ.get(PIPELINE_ENV) or DEFAULT_PIPELINE,
        max_cost=max_cost,
    )
    token = _current.set(active)
    try:
        yield active
    finally:
        _current.reset(token)


def state_dir() -> Path:
    """Where steplift keeps its local state (``STEPLIFT_HOME`` or ``./.steplift``)."""
    return Path(os.environ.get(HOME_ENV) or ".steplift").expanduser().resolve()


class StepRecord(BaseModel):
    """What the index knows about one step attempt."""

    model_config = ConfigDict(extra="forbid")

    run: str
    pipeline: str
    step: str
    attempt: int
    operator: str
    flavor: str
    operator_config: dict[str, Any] = Field(default_factory=dict)
    artifact_uri: str
    handle: JobHandle | None = None
    state: str = "PREPARING"
    message: str = ""
    max_cost: float | None = None
    """USD the attempt was allowed to spend (None: no budget)."""
    cost: float | None = None
    """USD the attempt cost, once it ended and where a price is known."""
    cost_basis: str = ""
    """How ``cost`` was worked out (billable time, start and end times, the price's source)."""
    created: float = Field(default_factory=time.time)
    updated: float = Field(default_factory=time.time)


class RunIndex:
    """The local index of runs and their step attempts."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or state_dir() / "runs"

    def _path(self, run: str, step: str, attempt: int) -> Path:
        return self.root / run / f"{step}.{attempt}.json"

    def record(self, entry: StepRecord) -> None:
        """Write (or replace) the entry of one step attempt."""
        path = self._path(entry.run, entry.step, entry.attempt)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry.updated = time.time()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(entry.model_dump_json(indent=2))
        os.replace(tmp, path)

    def steps(self, run: str) -> list[StepRecord]:
        """Every recorded attempt of a run, in launch order."""
        folder = self.root / check_name("run", run)
        if not folder.is_dir():
            raise ConfigError(
                f"no run named '{run}' in {self.root}", field="run", value=run, has_value=True
            )
        entries = [
            StepRecord.model_validate_json(path.read_text()) for path in folder.glob("*.json")
        ]
        return sorted(entries, key=lambda entry: (entry.created, entry.step, entry.attempt))

    def runs(self) -> list[str]:
        """Run names, most recently active last."""
        if not self.root.is_dir():
            return []
        folders = [path for path in self.root.iterdir() if path.is_dir()]
        return [path.name for path in sorted(folders, key=lambda path: path.stat().st_mtime)]
