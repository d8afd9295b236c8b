"""The one error taxonomy of steplift.

Every error a user can meet is a :class:`StepliftError`. Usage and configuration problems
(:class:`ConfigError`, :class:`FlavorNotFound`) are raised before any API call; step outcomes
(:class:`StepFailed`, :class:`StepTimeout`, :class:`StepCancelled`) carry the job they concern.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from steplift.states import FailureKind

if TYPE_CHECKING:
    from steplift.models import JobHandle


class StepliftError(Exception):
    """Base class of every steplift error."""


class ConfigError(StepliftError, ValueError):
    """Bad configuration or input, refused before anything is submitted.

    The message names where the problem is (file, operator, field) and the bad value.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        operator: str | None = None,
        field: str | None = None,
        value: Any = None,
        has_value: bool = False,
    ) -> None:
        self.problem = problem
        self.file = file
        self.operator = operator
        self.field = field
        self.value = value
        parts = []
        if file:
            parts.append(file)
        if operator:
            parts.append(f"operator {operator!r}")
        if field:
            parts.append(f"field {field!r}")
        where = ": ".join(parts)
        text = f"{where}: {problem}" if where else problem
        if has_value:
            text += f" (got {value!r})"
        super().__init__(text)


class FlavorNotFound(ConfigError):
    """A configured flavor is not installed."""

    def __init__(self, flavor: str, installed: list[str], hint: str | None = None) -> None:
        listed = ", ".join(sorted(installed)) or "none"
        problem = f"flavor '{flavor}' is not installed (installed flavors: {listed})"
        if hint:
            problem += f"; {hint}"
        super().__init__(problem)
        self.flavor = flavor
        self.installed = installed


class IntegrityError(StepliftError):
    """A stored payload does not match the SHA-256 digest recorded for it."""


class StepError(StepliftError):
    """A step attempt did not produce a result."""

    def __init__(self, message: str, *, handle: JobHandle | None = None) -> None:
        super().__init__(message)
        self.handle = handle


class LostContact(StepError):
    """The provider kept failing transiently past the transient budget while a job ran.

    The job may still be running: it is named, and how to check or cancel it is said. Not a
    StepFailed, so it is never retried as a new attempt beside a job that may still run.
    """


class StepFailed(StepError):
    """The job failed; for user-code failures the remote exception comes along."""

    def __init__(
        self,
        message: str,
        *,
        handle: JobHandle | None = None,
        failure_kind: FailureKind = FailureKind.USER_CODE,
        remote_type: str | None = None,
        remote_message: str | None = None,
        remote_traceback: str | None = None,
        provider_state: str | None = None,
    ) -> None:
        super().__init__(message, handle=handle)
        self.failure_kind = failure_kind
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        self.provider_state = provider_state

    def __str__(self) -> str:
        text = super().__str__()
        if self.remote_traceback:
            text += "\n\nRemote traceback:\n" + self.remote_traceback.rstrip()
        return text


class StepTimeout(StepError):
    """The job ran past its max runtime and was stopped."""

    def __init__(
        self, message: str, *, handle: JobHandle | None = None, max_runtime: float | None = None
    ) -> None:
        super().__init__(message, handle=handle)
        self.max_runtime = max_runtime


class BudgetExceeded(StepTimeout):
    """The job was stopped by its budget: the max runtime its ``max_cost`` bought ran out.

    A kind of :class:`StepTimeout`, because the cloud stopped it the same way (its own
    stopping condition), so code that handles timeouts handles budgets too.
    """

    def __init__(
        self,
        message: str,
        *,
        handle: JobHandle | None = None,
        max_runtime: float | None = None,
        max_cost: float,
        budget_owner: str = "step",
        cost: float | None = None,
    ) -> None:
        super().__init__(message, handle=handle, max_runtime=max_runtime)
        self.max_cost = max_cost
        """USD the attempt was allowed to spend."""
        self.budget_owner = budget_owner
        """Whose ``max_cost`` stopped it: the ``step``'s, the ``operator``'s or the ``run``'s."""
        self.cost = cost
        """What the attempt cost, where known."""


class StepCancelled(StepError):
    """The job was cancelled, by a signal in this process or from elsewhere."""

    def __init__(
        self,
        message: str,
        *,
        handle: JobHandle | None = None,
        signal_number: int | None = None,
        confirmed: bool = True,
    ) -> None:
        super().__init__(message, handle=handle)
        self.signal_number = signal_number
        self.confirmed = confirmed

    @property
    def exit_code(self) -> int:
        """The shell convention: 128 + signal number (130 Ctrl-C, 143 SIGTERM); else 1."""
        return 128 + self.signal_number if self.signal_number else 1


__all__ = [
    "BudgetExceeded",
    "ConfigError",
    "FlavorNotFound",
    "IntegrityError",
    "LostContact",
    "StepCancelled",
    "StepError",
    "StepFailed",
    "StepTimeout",
    "StepliftError",
]
