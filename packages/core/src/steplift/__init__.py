"""steplift: run one step of an ML pipeline as a GPU training job on any cloud.

    import steplift

    @steplift.step(resources={"gpu": "A10G:1"}, max_runtime=3600)
    def train(epochs: int) -> dict[str, float]: ...

    metrics = train(3)   # runs as a job through the configured operator

Names are imported on first use, so ``import steplift`` stays cheap and never imports a
cloud SDK.
"""

from __future__ import annotations

import importlib

# Not `from typing import TYPE_CHECKING`: importing typing would double the cost of
# `import steplift` (type checkers recognise this constant by its name).
TYPE_CHECKING = False

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # SDK
    "step": "steplift.sdk",
    "submit": "steplift.sdk",
    "run_command": "steplift.sdk",
    "plan": "steplift.sdk",
    "plan_command": "steplift.sdk",
    "checkpoint_dir": "steplift.sdk",
    "distributed": "steplift.cluster",
    "Distributed": "steplift.cluster",
    "StepFunction": "steplift.sdk",
    "StepHandle": "steplift.sdk",
    "run": "steplift.runs",
    "Run": "steplift.runs",
    # contract
    "StepOperator": "steplift.operator",
    "StepOperatorConfig": "steplift.operator",
    "Flavor": "steplift.operator",
    "LaunchObserver": "steplift.operator",
    "StepRunInfo": "steplift.models",
    "Resources": "steplift.models",
    "JobHandle": "steplift.models",
    "JobStatus": "steplift.models",
    "LogChunk": "steplift.models",
    "JobState": "steplift.states",
    "FailureKind": "steplift.states",
    "PollPolicy": "steplift.polling",
    "ArtifactStore": "steplift.store",
    "create_operator": "steplift.config",
    "load_config": "steplift.config",
    # errors
    "StepliftError": "steplift.errors",
    "ConfigError": "steplift.errors",
    "FlavorNotFound": "steplift.errors",
    "IntegrityError": "steplift.errors",
    "LostContact": "steplift.errors",
    "StepError": "steplift.errors",
    "StepFailed": "steplift.errors",
    "StepTimeout": "steplift.errors",
    "BudgetExceeded": "steplift.errors",
    "StepCancelled": "steplift.errors",
}

__all__ = [
    "checkpoint_dir",
    "distributed",
    "Distributed",
    "ArtifactStore",
    "BudgetExceeded",
    "ConfigError",
    "FailureKind",
    "Flavor",
    "FlavorNotFound",
    "IntegrityError",
    "JobHandle",
    "JobState",
    "JobStatus",
    "LaunchObserver",
    "LostContact",
    "LogChunk",
    "PollPolicy",
    "Resources",
    "Run",
    "StepCancelled",
    "StepError",
    "StepFailed",
    "StepFunction",
    "StepHandle",
    "StepOperator",
    "StepOperatorConfig",
    "StepRunInfo",
    "StepTimeout",
    "StepliftError",
    "create_operator",
    "load_config",
    "plan",
    "plan_command",
    "run",
    "run_command",
    "step",
    "submit",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'steplift' has no attribute {name!r}")
    from steplift.interrupts import deferred_interrupts

    with deferred_interrupts():  # an import cut in half leaves broken models behind
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from typing import Any

    from steplift.cluster import Distributed, distributed
    from steplift.config import create_operator, load_config
    from steplift.errors import (
        BudgetExceeded,
        ConfigError,
        FlavorNotFound,
        IntegrityError,
        LostContact,
        StepCancelled,
        StepError,
        StepFailed,
        StepliftError,
        StepTimeout,
    )
    from steplift.models import JobHandle, JobStatus, LogChunk, Resources, StepRunInfo
    from steplift.operator import Flavor, LaunchObserver, StepOperator, StepOperatorConfig
    from steplift.polling import PollPolicy
    from steplift.runs import Run, run
    from steplift.sdk import (
        StepFunction,
        StepHandle,
        checkpoint_dir,
        plan,
        plan_command,
        run_command,
        step,
        submit,
    )
    from steplift.states import FailureKind, JobState
    from steplift.store import ArtifactStore
