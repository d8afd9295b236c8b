"""The launch engine's pieces a flavor author may set: its tuning (:class:`LaunchPolicy`)."""

from __future__ import annotations

from steplift.launch.policy import LaunchPolicy

__all__ = ["LaunchPolicy"]
