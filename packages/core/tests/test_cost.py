"""Cost estimates from the price catalogs and budgets turned into time (steplift.cost)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from budget_helpers import MemoryOperator
from steplift.cost import (
    STALE_AFTER_DAYS,
    CostEstimate,
    JobUsage,
    PriceKey,
    attempt_cost,
    budget_for,
    check_budget,
    estimate,
    node_price,
)
from steplift.errors import ConfigError
from steplift.models import Resources, StepRunInfo
from steplift.operator import StepOperatorConfig
from steplift.prices import load_catalog


def _info(nodes: int = 1, max_runtime: float | None = 3600.0, spot: bool | None = None) -> Any:
    return StepRunInfo(
        pipeline="p",
        run="r",
        step="s",
        resources=Resources(nodes=nodes, spot=spot),
        max_runtime=max_runtime,
        artifact_uri="memory://p/r/s/1",
    )


def CatalogOperator(key: PriceKey | None, **config: Any) -> MemoryOperator:  # noqa: N802
    """An in-memory operator priced from a provider package's catalog."""
    return MemoryOperator(StepOperatorConfig(**config), key=key)


AZURE_T4 = PriceKey("steplift_azureml", "eastus", (("Standard_NC4as_T4_v3", 1),))


def test_catalog_price_times_nodes_and_hours() -> None:
    operator = CatalogOperator(AZURE_T4)
    hourly = load_catalog("azureml").hourly("Standard_NC4as_T4_v3", "eastus")
    assert hourly is not None
    cost = estimate(operator, _info(nodes=2, max_runtime=1800), today=dt.date(2026, 12, 6))
    assert cost.usd_per_hour == pytest.approx(hourly.usd_per_hour * 2)
    assert cost.at_most == pytest.approx(hourly.usd_per_hour * 2 * 0.5)
    assert "steplift_azureml price catalog of" in cost.describe()
    assert not any("stale" in note for note in cost.notes)


def test_a_stale_catalog_is_said_to_be_stale() -> None:
    operator = CatalogOperator(AZURE_T4)
    catalog = load_catalog("azureml")
    later = catalog.catalog_date + dt.timedelta(days=STALE_AFTER_DAYS + 1)
    cost = estimate(operator, _info(), today=later)
    assert cost.usd_per_hour is not None
    assert any("stale" in note for note in cost.notes)
    assert "stale" in cost.describe()


def test_no_price_is_said_and_never_guessed() -> None:
    key = PriceKey("steplift_sagemaker", "us-east-1", (("ml.g5.xlarge", 1),))
    cost = estimate(CatalogOperator(key), _info())
    assert cost.usd_per_hour is None and cost.at_most is None
    assert cost.describe().startswith("no price")
    assert any("ml.g5.xlarge" in note and "not available" in note for note in cost.notes)


def test_a_vertex_node_is_its_machine_plus_its_accelerators() -> None:
    key = PriceKey("steplift_vertex", "us-central1", (("n1-standard-4", 1),))
    machine = load_catalog("vertex").hourly("n1-standard-4", "us-central1")
    assert machine is not None
    assert node_price(CatalogOperator(key), _info()).usd_per_hour == machine.usd_per_hour
    with_gpu = PriceKey("steplift_vertex", "us-central1", (*key.parts, ("NVIDIA_TESLA_T4", 1)))
    price = node_price(CatalogOperator(with_gpu), _info())
    assert price.usd_per_hour is None  # the T4's price is not in the catalog: no partial sum
    assert any("NVIDIA_TESLA_T4" in note for note in price.notes)


def test_spot_uses_the_spot_price_and_says_it_may_change() -> None:
    spot_key = PriceKey("steplift_azureml", "eastus", AZURE_T4.parts, spot=True)
    price = node_price(CatalogOperator(spot_key), _info(spot=True))
    assert price.usd_per_hour is None  # the catalog gives no spot price for Azure ML
    assert any("no spot price" in note for note in price.notes)
    configured = node_price(CatalogOperator(spot_key, price_per_hour=0.2), _info(spot=True))
    assert configured.usd_per_hour == 0.2


def test_spot_note_when_the_catalog_has_a_spot_price(monkeypatch: pytest.MonkeyPatch) -> None:
    from steplift import prices

    text = """
catalog_date = 2026-12-01
[[price]]
instance = "gpu.big"
region = "r1"
on_demand = 4.0
spot = 1.5
source = "test"
date = 2026-12-01
"""
    monkeypatch.setattr(prices, "load_catalog", lambda package: prices.parse_catalog(text))
    key = PriceKey("steplift_test", "r1", (("gpu.big", 2),), spot=True)
    price = node_price(CatalogOperator(key), _info(spot=True), today=dt.date(2026, 12, 6))
    assert price.usd_per_hour == 3.0
    assert any("spot price" in note and "change" in note for note in price.notes)


def test_price_per_hour_overrides_or_adds_a_price() -> None:
    operator = CatalogOperator(AZURE_T4, price_per_hour=2.5)
    assert node_price(operator, _info()).usd_per_hour == 2.5
    unknown = PriceKey("steplift_sagemaker", "us-east-1", (("ml.g5.xlarge", 1),))
    cost = estimate(CatalogOperator(unknown, price_per_hour=1.0), _info(nodes=3))
    assert cost.usd_per_hour == 3.0
    assert "price_per_hour" in cost.source


def test_a_budget_buys_the_time_its_price_allows_for_every_node() -> None:
    cost = CostEstimate(usd_per_node_hour=3.0, nodes=2, max_runtime=3600.0, source="test")
    budget = budget_for([(1.5, "max_cost")], cost)
    assert budget is not None
    assert budget.seconds == 900  # $1.50 at $6/h
    assert budget.binding
    roomy = budget_for([(100.0, "max_cost")], cost)
    assert roomy is not None and not roomy.binding  # the max runtime is the smaller: it wins
    tightest = budget_for([(100.0, "max_cost"), (0.6, "max_cost")], cost)
    assert tightest is not None and tightest.seconds == 360


def test_a_budget_below_the_shortest_useful_run_is_refused() -> None:
    cost = CostEstimate(usd_per_node_hour=36.0, nodes=1, max_runtime=None, source="test")
    with pytest.raises(ConfigError, match="field 'max_cost'.*buys 50 s.*shortest useful run"):
        budget_for([(0.5, "max_cost")], cost)
    small = budget_for([(0.5, "max_cost")], cost, shortest_run=1.0)
    assert small is not None and small.seconds == 50


def test_a_budget_without_a_price_names_price_per_hour() -> None:
    cost = CostEstimate(None, 1, None, "catalog", notes=("no price for ml.g5.xlarge",))
    with pytest.raises(ConfigError, match="field 'price_per_hour'.*max_cost is set"):
        budget_for([(10.0, "max_cost")], cost)


@pytest.mark.parametrize("value", [-1, 0, "ten", True, float("nan"), float("inf")])
def test_bad_budgets_are_refused_naming_the_field(value: object) -> None:
    with pytest.raises(ConfigError, match="field 'max_cost'"):
        check_budget(value, "max_cost")


def test_attempt_cost_prefers_billable_time() -> None:
    cost = CostEstimate(usd_per_node_hour=3.6, nodes=2, max_runtime=None, source="test")
    usd, basis = attempt_cost(JobUsage(started=0, ended=200, billable_seconds=100), cost)
    assert usd == pytest.approx(0.2)  # 100 s × 2 instances × $3.6/h
    assert "billable" in basis
    usd, basis = attempt_cost(JobUsage(started=10, ended=110, instances=1), cost)
    assert usd == pytest.approx(0.1)
    assert attempt_cost(JobUsage(), cost)[0] is None
