"""Scripted jobs: the statuses a job in scripted mode walks through, step by step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ScriptStep"]


@dataclass(frozen=True)
class ScriptStep:
    """One step of a scripted job: a cloud-specific status and, for failures, a reason."""

    status: str
    failure_reason: str | None = None

    @classmethod
    def parse(cls, step: ScriptStep | str | Mapping[str, Any]) -> ScriptStep:
        """Accept a ScriptStep, a bare status or a {"status", "failure_reason"} mapping."""
        if isinstance(step, ScriptStep):
            return step
        if isinstance(step, str):
            return cls(step)
        if isinstance(step, Mapping):
            unknown = set(step) - {"status", "failure_reason"}
            if unknown or not isinstance(step.get("status"), str):
                raise ValueError(f"a script step needs a 'status' string, got {dict(step)!r}")
            reason = step.get("failure_reason")
            if reason is not None and not isinstance(reason, str):
                raise ValueError(f"failure_reason must be a string, got {reason!r}")
            return cls(step["status"], reason)
        raise ValueError(f"not a script step: {step!r}")
