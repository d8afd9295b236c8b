"""The bad-input property pieces' old home: they live in the conformance suite's
`bad_input` mixin now (`steplift.testing.conformance.bad_input`), which every flavor runs."""

from __future__ import annotations

from steplift.testing.conformance.bad_input import (
    SCALARS,
    VALUES,
    Build,
    check_operator_table,
)

__all__ = ["SCALARS", "VALUES", "Build", "check_operator_table"]
