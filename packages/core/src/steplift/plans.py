"""A step's plan: what a launch would send, made without sending anything.

:meth:`steplift.launcher.StepLauncher.plan` fills a :class:`StepPlan` with everything a launch
does up to the provider's create call (operator, machines, the exact request body, the code
package, the max runtime, the cost estimate and budget) and nothing after: no provider call,
no upload, nothing written. ``steplift plan`` prints it; ``steplift.plan(...)`` returns it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from steplift.cost import Budget, CostEstimate, PriceKey


@dataclass(frozen=True)
class CodeSummary:
    """The code package a launch would ship."""

    sha256: str
    files: int
    size: int
    """Bytes of the files before compression."""
    compressed_size: int
    uri: str
    """Where it is stored: a launch uploads it there unless a package of the same digest
    already is (a plan makes no call, so it does not look)."""


@dataclass(frozen=True)
class StepPlan:
    """What a launch of a step's first attempt would do, up to the create call."""

    operator: str
    flavor: str
    run: str
    step: str
    nodes: int
    price_key: PriceKey | None
    """The instance type (Vertex: machine and accelerators) per node and the region."""
    max_runtime: float | None
    """The effective max runtime: the step's or operator's, or what the budget buys if less."""
    budget: Budget | None
    estimate: CostEstimate
    code: CodeSummary | None
    requirements: str | None
    command: list[str]
    """The job's entrypoint command."""
    request: dict[str, Any] | None
    """The provider's create request body (secret references only); None when the flavor
    cannot describe it."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (``steplift plan --json``)."""
        key = self.price_key
        return {
            "operator": self.operator,
            "flavor": self.flavor,
            "run": self.run,
            "step": self.step,
            "nodes": self.nodes,
            "machine": None
            if key is None
            else {"region": key.region, "per_node": dict(key.parts), "spot": key.spot},
            "max_runtime": self.max_runtime,
            "budget": None
            if self.budget is None
            else {
                "max_cost": self.budget.max_cost,
                "owner": self.budget.owner,
                "seconds": self.budget.seconds,
                "binding": self.budget.binding,
            },
            "estimate": self.estimate.as_dict(),
            "code": None
            if self.code is None
            else {
                "sha256": self.code.sha256,
                "files": self.code.files,
                "size": self.code.size,
                "compressed_size": self.code.compressed_size,
                "uri": self.code.uri,
                "uploaded": "unless already stored (not checked: a plan makes no call)",
            },
            "requirements": self.requirements,
            "command": self.command,
            "request": self.request,
        }

    def describe(self) -> str:
        """The plan for people: a few lines, then the request body as JSON."""
        key = self.price_key
        machine = "-"
        if key is not None:
            parts = " + ".join(f"{count} × {name}" for name, count in key.parts)
            machine = f"{parts} per node in {key.region or 'an unnamed region'}"
            machine += " (spot)" if key.spot else ""
        runtime = f"{self.max_runtime:g} s" if self.max_runtime else "none (the cloud's default)"
        if self.budget is not None and self.budget.binding:
            runtime += (
                f", bought by the {self.budget.owner}'s max_cost (${self.budget.max_cost:.4g})"
            )
        lines = [
            f"operator:    {self.operator} (flavor {self.flavor})",
            f"step:        {self.step} of run {self.run}, {self.nodes} node(s)",
            f"machine:     {machine}",
            f"max runtime: {runtime}",
            f"estimate:    {self.estimate.describe()}",
        ]
        if self.code is not None:
            lines.append(
                f"code:        {self.code.files} files, {self.code.compressed_size} bytes packed, "
                f"sha256 {self.code.sha256[:12]}; uploaded to {self.code.uri} unless already "
                "there (not checked)"
            )
        else:
            lines.append("code:        none shipped (the image holds it)")
        lines.append("nothing was sent: no provider call, no upload")
        if self.request is None:
            lines.append(f"request:     the {self.flavor} flavor cannot describe its request")
        else:
            lines.append("request:")
            lines.append(json.dumps(self.request, indent=2, sort_keys=True, default=str))
        return "\n".join(lines)
