"""`ConformanceBase`: the fixtures and helpers every themed mixin of the suite shares.

A flavor overrides `operator` and `backend` (and the fixtures a mixin names for itself);
`clock`, `index` and `run` are the suite's own.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.models import Resources, StepRunInfo
from steplift.operator import StepOperator
from steplift.runs import Run, RunIndex
from steplift.testing.conformance.backend import ConformanceBackend
from steplift.testing.conformance.clocks import ConformanceClock

__all__ = ["ConformanceBase"]

_run_numbers = itertools.count(1)


class ConformanceBase:
    """Fixtures and helpers of the standard tests (no test of its own)."""

    flavor: ClassVar[str]
    """The flavor under test, as registered (``steplift.flavors`` entry point)."""

    @pytest.fixture
    def clock(self) -> ConformanceClock:
        """The clock the operator must be built with (override for a scripted backend)."""
        return ConformanceClock()

    @pytest.fixture
    def operator(self) -> StepOperator:
        """The operator under test (flavors override this fixture)."""
        raise NotImplementedError("the flavor's conformance class must provide `operator`")

    @pytest.fixture
    def backend(self) -> ConformanceBackend:
        """The backend probe (flavors override this fixture)."""
        raise NotImplementedError("the flavor's conformance class must provide `backend`")

    @pytest.fixture
    def index(self, tmp_path_factory: pytest.TempPathFactory) -> RunIndex:
        """A private run index, so tests never touch the user's."""
        return RunIndex(tmp_path_factory.mktemp("runs"))

    @pytest.fixture
    def run(self) -> Iterator[Run]:
        """A fresh run per test."""
        yield Run(f"conformance-{self.flavor}-{int(time.time())}-{next(_run_numbers)}")

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _prepare(
        operator: StepOperator,
        index: RunIndex,
        run: Run,
        function: Any,
        *args: Any,
        max_runtime: float | None = None,
        resources: Resources | None = None,
    ) -> tuple[StepLauncher, StepSpec, StepRunInfo, list[str], StepOptions]:
        """Write inputs and execution info for one attempt; return what launching needs."""
        launcher = StepLauncher(operator, index=index)
        spec = StepSpec.for_function(function, args, {})
        options = StepOptions(max_runtime=max_runtime, resources=resources or Resources())
        step = run.step_name(function.__name__)
        info = launcher.step_info(run=run, step=step, attempt=1, options=options)
        command = launcher.entrypoint_command(*launcher.prepare(spec, info))
        return launcher, spec, info, command, options
