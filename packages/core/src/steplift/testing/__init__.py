"""Test support shipped with steplift: the conformance suite every flavor subclasses.

from steplift.testing import StepOperatorConformance

class TestMyFlavor(StepOperatorConformance):
    flavor = "myflavor"
    ...fixtures: operator, backend, invalid_configs, bad_input...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steplift.testing.conformance import (
        AllSubmitted,
        BadInputCase,
        ConformanceBackend,
        ConformanceClock,
        EmulatedBackend,
        LockstepClock,
        StepOperatorConformance,
        launch_together,
    )

__all__ = [
    "AllSubmitted",
    "BadInputCase",
    "ConformanceBackend",
    "ConformanceClock",
    "EmulatedBackend",
    "LockstepClock",
    "StepOperatorConformance",
    "launch_together",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing steplift.testing.emulation or .steps needs neither pytest
    # nor hypothesis.
    if name in __all__:
        from steplift.testing import conformance

        return getattr(conformance, name)
    raise AttributeError(f"module 'steplift.testing' has no attribute {name!r}")
