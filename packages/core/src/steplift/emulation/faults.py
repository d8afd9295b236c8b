"""Faults an emulator injects on purpose: the settings (`Faults`) and the call-by-call draw.

A fault applies to control-plane calls only (create/describe/list/stop jobs), never to data
transfer, and is deterministic: the same seed gives the same throttles and errors.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = ["FaultDecider", "FaultKind", "Faults"]

FaultKind: TypeAlias = Literal["throttle", "error"]
"""What a faulty call gets: refused as throttling, or answered with a 5xx."""


@dataclass(frozen=True)
class Faults:
    """What an emulator should get wrong on purpose.

    Rates apply to control-plane calls (create/describe/list/stop jobs), never to data transfer.
    """

    throttle_rate: float = 0.0
    """Fraction (0..1) of control-plane calls refused as throttling."""
    error_rate: float = 0.0
    """Fraction (0..1) of control-plane calls answered with a 5xx."""
    latency: float = 0.0
    """Seconds added to every control-plane call."""
    refuse_create: Literal["quota", "capacity"] | None = None
    """Every job creation is refused for lack of quota, or fails at start for lack of capacity."""
    stuck_in_queue: bool = False
    """Jobs never leave the queued/starting state while this is set."""
    seed: int = 0
    """Seed of the deterministic throttle/error decisions."""

    def __post_init__(self) -> None:
        for name in ("throttle_rate", "error_rate"):
            rate = getattr(self, name)
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise ValueError(f"{name} must be a number, got {rate!r}")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate!r}")
        if self.throttle_rate + self.error_rate > 1.0:
            raise ValueError("throttle_rate + error_rate must not exceed 1")
        if isinstance(self.latency, bool) or not isinstance(self.latency, int | float):
            raise ValueError(f"latency must be a number of seconds, got {self.latency!r}")
        if not (math.isfinite(self.latency) and 0.0 <= self.latency <= 60.0):
            raise ValueError(f"latency must be between 0 and 60 seconds, got {self.latency!r}")
        if self.refuse_create not in (None, "quota", "capacity"):
            raise ValueError(
                f"refuse_create must be None, 'quota' or 'capacity', got {self.refuse_create!r}"
            )
        if not isinstance(self.stuck_in_queue, bool):
            raise ValueError(f"stuck_in_queue must be a boolean, got {self.stuck_in_queue!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """Build from JSON-like data; unknown keys are refused (ValueError naming them)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the inverse of `from_dict`."""
        return dataclasses.asdict(self)


class FaultDecider:
    """Decides, call by call, whether a control-plane call is throttled or fails.

    Each operation draws from its own seeded stream, so the n-th call of an operation gets the
    same answer whatever other operations were called in between.
    """

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def decide(self, operation: str) -> FaultKind | None:
        """Return None (serve the call), "throttle" or "error" for this call of `operation`."""
        faults = self.faults
        if faults.throttle_rate == 0.0 and faults.error_rate == 0.0:
            return None
        with self._lock:
            count = self._counts.get(operation, 0)
            self._counts[operation] = count + 1
        draw = random.Random(f"{faults.seed}:{operation}:{count}").random()
        if draw < faults.throttle_rate:
            return "throttle"
        if draw < faults.throttle_rate + faults.error_rate:
            return "error"
        return None
