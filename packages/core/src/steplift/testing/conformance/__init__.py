"""The conformance suite: the behaviour every flavor must show, as pytest mixins.

A flavor opts in with one subclass and its fixtures::

    class TestLocal(StepOperatorConformance):
        flavor = "local"

        @pytest.fixture
        def operator(self, clock, tmp_path): ...       # built with clock.now / clock.sleep
        @pytest.fixture
        def backend(self, operator): ...               # a ConformanceBackend
        @pytest.fixture
        def invalid_configs(self): ...                 # raw configs the flavor must refuse
        @pytest.fixture
        def bad_input(self): ...                       # a BadInputCase (see bad_input)

The standard tests come in themed mixins, one module each (as fsspec's abstract tests do):
`lifecycle`, `checkpoints`, `interrupts`, `bad_input`, `multi_node`, `storms` and `secrets`,
all on the shared fixtures of `base`. `StepOperatorConformance` is all of them.

Standard tests may not be dropped or overridden; one that a flavor cannot pass is overridden
with ``@pytest.mark.xfail(strict=True, reason=...)`` and the guard test checks exactly that.

The multi-node scenarios run on every flavor whose operator declares ``multi_node = True``
(and are skipped, saying so, on the others): a real PyTorch gloo rendezvous across two nodes,
ranks and processes per node, one failing node, and an interrupt that must stop every node.
Each node's log lines reach the observer prefixed ``[node R] ``.
"""

from __future__ import annotations

import inspect

from steplift.testing.conformance.backend import ConformanceBackend, EmulatedBackend
from steplift.testing.conformance.bad_input import BadInputCase, BadInputTests
from steplift.testing.conformance.base import ConformanceBase
from steplift.testing.conformance.checkpoints import CheckpointTests
from steplift.testing.conformance.clocks import ConformanceClock, LockstepClock
from steplift.testing.conformance.interrupts import InterruptTests
from steplift.testing.conformance.lifecycle import LifecycleTests
from steplift.testing.conformance.multi_node import MultiNodeTests
from steplift.testing.conformance.secrets import SecretTests
from steplift.testing.conformance.storms import StormTests
from steplift.testing.conformance.together import AllSubmitted, launch_together

__all__ = [
    "AllSubmitted",
    "BadInputCase",
    "BadInputTests",
    "CheckpointTests",
    "ConformanceBackend",
    "ConformanceBase",
    "ConformanceClock",
    "EmulatedBackend",
    "InterruptTests",
    "LifecycleTests",
    "LockstepClock",
    "MultiNodeTests",
    "SecretTests",
    "StepOperatorConformance",
    "StormTests",
    "launch_together",
]


class StepOperatorConformance(
    LifecycleTests,
    CheckpointTests,
    InterruptTests,
    BadInputTests,
    MultiNodeTests,
    StormTests,
    SecretTests,
):
    """Every standard test; see the module docstring for the opt-in."""

    # -- the guard ----------------------------------------------------------------------------

    def test_standard_tests_are_not_dropped_or_overridden(self) -> None:
        for name, standard in inspect.getmembers(StepOperatorConformance, inspect.isfunction):
            if not name.startswith("test_"):
                continue
            actual = getattr(type(self), name, None)
            if actual is standard:
                continue
            marks = getattr(actual, "pytestmark", [])
            strict_xfails = [
                mark
                for mark in marks
                if mark.name == "xfail"
                and mark.kwargs.get("strict") is True
                and mark.kwargs.get("reason")
            ]
            assert strict_xfails, (
                f"{type(self).__name__}.{name} replaces a standard conformance test; keep it, or "
                "override it with @pytest.mark.xfail(strict=True, reason=...)"
            )
