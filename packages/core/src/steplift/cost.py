"""What a step costs: estimates before it runs, the time a budget buys, and what it cost.

A node-hour's price comes from the operator's ``price_per_hour`` when set, else from the
flavor's price catalog (:mod:`steplift.prices`) through the operator's
:meth:`~steplift.operator.StepOperator.price_key`: a SageMaker or Azure ML instance type, a
Vertex machine plus its accelerators, in the operator's region. A step costs that price ×
its nodes × its hours. Spot capacity uses the spot price, which the cloud may change; a
catalog older than :data:`STALE_AFTER_DAYS` is said to be stale in every estimate. Where no
price is known the estimate says so and gives none: nothing is guessed.

A budget (``max_cost``) becomes a max runtime (:func:`budget_for`): the seconds it buys at
that price for every node, so the cloud's own stopping condition enforces it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from steplift.errors import ConfigError

if TYPE_CHECKING:
    from steplift.models import StepRunInfo
    from steplift.operator import StepOperator

STALE_AFTER_DAYS = 180
"""A catalog older than this many days is called stale: cloud prices change a few times a year."""


@dataclass(frozen=True)
class PriceKey:
    """What a flavor's catalog prices one node of a step by."""

    catalog: str
    """The package whose ``prices.toml`` holds the prices (``steplift_sagemaker``...)."""
    region: str | None
    parts: tuple[tuple[str, int], ...]
    """(instance, machine or accelerator name, how many per node): a Vertex node is its
    machine plus its GPUs, priced apart; SageMaker and Azure ML nodes are one instance."""
    spot: bool = False


@dataclass(frozen=True)
class NodePrice:
    """The hourly price of one node of a step, where it comes from, and what to know."""

    usd_per_hour: float | None
    source: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CostEstimate:
    """What a step attempt would cost: per hour for all its nodes, and at its max runtime."""

    usd_per_node_hour: float | None
    nodes: int
    max_runtime: float | None
    source: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def usd_per_hour(self) -> float | None:
        """The hourly price of every node together (None: no price known)."""
        return None if self.usd_per_node_hour is None else self.usd_per_node_hour * self.nodes

    @property
    def at_most(self) -> float | None:
        """The cost if the job runs its whole max runtime (None: no price or no limit)."""
        return self.cost_of(self.max_runtime) if self.max_runtime else None

    def cost_of(self, seconds: float) -> float | None:
        """The cost of ``seconds`` of the job on all its nodes."""
        hourly = self.usd_per_hour
        return None if hourly is None else hourly * seconds / 3600

    def describe(self) -> str:
        """One line for people: the price, the cost at the max runtime, the notes."""
        if self.usd_per_hour is None:
            text = "no price"
        else:
            text = f"${self.usd_per_hour:.4g}/h for {self.nodes} node(s)"
            at_most = self.at_most
            if at_most is not None:
                text += f", at most ${at_most:.2f} in {self.max_runtime:g} s"
        text += f" ({self.source})"
        return "; ".join([text, *self.notes])

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "usd_per_node_hour": self.usd_per_node_hour,
            "usd_per_hour": self.usd_per_hour,
            "nodes": self.nodes,
            "max_runtime": self.max_runtime,
            "at_most": self.at_most,
            "source": self.source,
            "notes": list(self.notes),
        }


def node_price(
    operator: StepOperator, info: StepRunInfo, *, today: dt.date | None = None
) -> NodePrice:
    """The hourly price of one node of the step: the config's ``price_per_hour``, else the
    catalog's (no call is made; the catalog is a file in the provider package)."""
    from steplift.prices import CatalogError, load_catalog

    configured = operator.config.price_per_hour
    if configured is not None:
        return NodePrice(configured, "price_per_hour of the operator config")
    key = operator.price_key(info)
    if key is None:
        return NodePrice(None, f"the {operator.flavor} flavor has no price catalog")
    try:
        catalog = load_catalog(key.catalog)
    except (ImportError, FileNotFoundError, CatalogError) as error:
        return NodePrice(None, f"no price catalog: {error}")
    source = f"{key.catalog} price catalog of {catalog.catalog_date.isoformat()}"
    notes: list[str] = []
    if not key.parts:
        notes.append("the step's machine is not known before it runs (a compute cluster)")
        return NodePrice(None, source, tuple(notes))
    if key.region is None:
        notes.append("the operator config names no region to price in")
        return NodePrice(None, source, tuple(notes))
    total = 0.0
    for name, count in key.parts:
        price = catalog.hourly(name, key.region, spot=key.spot)
        if price is None:
            row = catalog.row(name, key.region)
            kind = "spot price" if key.spot else "price"
            why = row.note if row is not None and row.note else "no row in the catalog"
            notes.append(f"no {kind} for {name} in {key.region}: {why}")
            continue
        total += price.usd_per_hour * count
    today = today or dt.date.today()
    if catalog.is_stale(today, STALE_AFTER_DAYS):
        notes.append(
            f"the price catalog is stale: {catalog.age_days(today)} days old (prices may "
            "have changed)"
        )
    if any(note.startswith("no ") for note in notes):
        return NodePrice(None, source, tuple(notes))
    if key.spot:
        notes.append("spot price: the cloud may change it while the job runs")
    return NodePrice(total, source, tuple(notes))


def estimate(
    operator: StepOperator, info: StepRunInfo, *, today: dt.date | None = None
) -> CostEstimate:
    """The cost estimate of a step attempt at its max runtime."""
    price = node_price(operator, info, today=today)
    return CostEstimate(
        usd_per_node_hour=price.usd_per_hour,
        nodes=info.resources.nodes,
        max_runtime=info.max_runtime or operator.config.max_runtime,
        source=price.source,
        notes=price.notes,
    )


@dataclass(frozen=True)
class Budget:
    """A budget turned into time: what is left of it for an attempt and the seconds it buys."""

    max_cost: float
    """USD this attempt may spend (what is left of the tightest budget)."""
    owner: str
    """Whose ``max_cost`` it is: the ``step``'s, the ``operator``'s or the ``run``'s."""
    seconds: float | None
    """The runtime it buys on every node of the step (None: the step's price is zero)."""
    binding: bool = False
    """Whether it is shorter than the step's own max runtime (then it stops the job)."""


def check_budget(value: object, field: str) -> float | None:
    """A budget given in code: None, or a positive number (ConfigError naming ``field``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(
            "must be a positive number of US dollars", field=field, value=value, has_value=True
        )
    if not math.isfinite(value):
        raise ConfigError("must be a finite number", field=field, value=value, has_value=True)
    return float(value)


def budget_for(
    budgets: list[tuple[float, str]],
    cost: CostEstimate,
    *,
    shortest_run: float = 60.0,
    what: str = "the step",
) -> Budget | None:
    """The tightest of ``budgets`` (USD left, whose ``max_cost``: ``step``, ``operator`` or
    ``run``) turned into the time it buys.

    ConfigError before any call when a budget is set but no price is known (naming
    ``price_per_hour``), or when what is left buys less than ``shortest_run`` seconds (the
    operator's ``LaunchPolicy.shortest_run``).
    """
    if not budgets:
        return None
    left, owner = min(budgets)
    hourly = cost.usd_per_hour
    if hourly is None:
        reasons = "; ".join(cost.notes) or cost.source
        raise ConfigError(
            f"the {owner}'s max_cost is set but {what} has no price ({reasons}); give the "
            "operator a "
            "price_per_hour",
            field="price_per_hour",
        )
    if hourly == 0:
        return Budget(left, owner, None)
    seconds = math.floor(round(left / hourly * 3600, 6))  # 0.6 / 6 * 3600 is 359.99...
    if seconds < shortest_run:
        raise ConfigError(
            f"the {owner}'s max_cost{' leaves' if owner == 'run' else ' is'} "
            f"${max(left, 0):.4g}, which buys {max(seconds, 0)} s of {what} at "
            f"${hourly:.4g}/h for {cost.nodes} node(s); the shortest useful run is "
            f"{shortest_run:g} s",
            field="max_cost",
            value=round(left, 6),
            has_value=True,
        )
    limit = cost.max_runtime
    return Budget(left, owner, float(seconds), binding=limit is None or seconds < limit)


@dataclass(frozen=True)
class JobUsage:
    """What a provider says a finished job used: its run times, and its billable time."""

    started: float | None = None
    """Epoch seconds (or the launcher's clock) when the job started running."""
    ended: float | None = None
    billable_seconds: float | None = None
    """Seconds billed per instance, where the provider reports it (SageMaker)."""
    instances: int | None = None
    """Instances billed (None: the step's nodes)."""
    source: str = "provider"


def attempt_cost(usage: JobUsage, cost: CostEstimate) -> tuple[float | None, str]:
    """What an attempt cost in USD and how that was worked out (None: no price known)."""
    nodes = usage.instances or cost.nodes
    if usage.billable_seconds is not None:
        seconds, basis = usage.billable_seconds, f"{usage.billable_seconds:g} billable s"
    elif usage.started is not None and usage.ended is not None:
        seconds = max(0.0, usage.ended - usage.started)
        basis = f"{seconds:g} s from {usage.source} start and end times"
    else:
        return None, "no run time reported"
    if cost.usd_per_node_hour is None:
        return None, f"{basis}; no price"
    usd = cost.usd_per_node_hour * nodes * seconds / 3600
    return usd, f"{basis} × {nodes} node(s) × ${cost.usd_per_node_hour:.4g}/h ({cost.source})"
