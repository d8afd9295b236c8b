"""The filter expressions of ``customJobs.list`` and ``entries:list`` (the common subset).

    labels.team="ml" AND state="JOB_STATE_RUNNING"
    resource.type="ml_job" AND resource.labels.job_id="123" AND timestamp>="2026-..."

Comparisons ``= != < <= > >= :`` (``:`` is "has": ``labels.k:*`` or a prefix with ``*``),
joined by ``AND`` (binding tighter) and ``OR``; ``NOT`` before a comparison. Values are quoted
strings or bare words. Anything else is refused as INVALID_ARGUMENT, as the service does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from steplift_vertex.emulator.wire import ApiError, parse_rfc3339

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op><=|>=|!=|=|<|>|:)|(?P<paren>[()])'
    r"|(?P<word>[A-Za-z0-9_.*@/+-]+))"
)


@dataclass(frozen=True)
class Comparison:
    """``field op value``; ``negated`` for a leading NOT."""

    field: str
    op: str
    value: str
    negated: bool = False


Clause = list[Comparison]
"""Comparisons that must all hold (AND)."""


def parse_filter(text: str) -> list[Clause]:
    """Parse into OR-ed clauses of AND-ed comparisons; ApiError for anything else."""
    tokens = _tokenize(text)
    clauses: list[Clause] = [[]]
    position = 0
    expect_comparison = True
    while position < len(tokens):
        kind, value = tokens[position]
        if not expect_comparison:
            if kind == "word" and value.upper() == "AND":
                expect_comparison, position = True, position + 1
                continue
            if kind == "word" and value.upper() == "OR":
                clauses.append([])
                expect_comparison, position = True, position + 1
                continue
            # Adjacent comparisons mean AND in Google's filter language.
            expect_comparison = True
            continue
        negated = False
        if kind == "word" and value.upper() == "NOT":
            negated, position = True, position + 1
        if position + 2 >= len(tokens):
            raise _invalid(text, "incomplete comparison")
        field_kind, field = tokens[position]
        op_kind, op = tokens[position + 1]
        value_kind, raw = tokens[position + 2]
        if field_kind != "word" or op_kind != "op" or value_kind not in ("word", "string"):
            raise _invalid(text, f"expected FIELD OP VALUE near {field!r}")
        if value_kind == "string":
            raw = bytes(raw[1:-1], "utf-8").decode("unicode_escape")
        clauses[-1].append(Comparison(field, op, raw, negated))
        position += 3
        expect_comparison = False
    if expect_comparison and tokens:
        raise _invalid(text, "dangling AND/OR")
    return [clause for clause in clauses if clause]


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise _invalid(text, f"unexpected character at {position}")
        kind = match.lastgroup or ""
        if kind == "paren":
            raise _invalid(text, "parentheses are not supported by this emulator")
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _invalid(text: str, why: str) -> ApiError:
    return ApiError("INVALID_ARGUMENT", f"Provided filter is not valid: {text!r} ({why})")


def matches(
    clauses: list[Clause], lookup: Callable[[str], Any], timestamps: frozenset[str] = frozenset()
) -> bool:
    """True if the item whose fields ``lookup`` answers passes the filter."""
    if not clauses:
        return True
    return any(
        all(_holds(comparison, lookup, timestamps) for comparison in clause) for clause in clauses
    )


def _holds(
    comparison: Comparison, lookup: Callable[[str], Any], timestamps: frozenset[str]
) -> bool:
    actual = lookup(comparison.field)
    wanted = comparison.value
    op = comparison.op
    if op == ":":
        if wanted == "*":
            result = actual is not None
        elif wanted.endswith("*"):
            result = actual is not None and str(actual).startswith(wanted[:-1])
        else:
            result = actual is not None and wanted in str(actual)
    elif actual is None:
        result = op == "!="
    else:
        left: Any = str(actual)
        right: Any = wanted
        if comparison.field in timestamps:
            try:
                left, right = parse_rfc3339(left), parse_rfc3339(right)
            except ValueError:
                raise ApiError("INVALID_ARGUMENT", f"invalid timestamp {wanted!r}") from None
        result = {
            "=": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]
    return not result if comparison.negated else result
