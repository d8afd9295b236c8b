"""The price catalogs the provider packages ship: every row names its source and date, no
price is negative or unsourced, the catalogs cover the types the packages' resource tables use,
and steplift.prices reads them."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from steplift.prices import CatalogError, load_catalog, parse_catalog
from steplift.testing.processes import modules_loaded_by

ROOT = Path(__file__).resolve().parents[1]
PROVIDERS = sorted(
    p.name
    for p in (ROOT / "packages").iterdir()
    if p.name != "core" and (p / "pyproject.toml").is_file()
)
NAME_KEYS = ("instance", "machine", "accelerator")


def catalog_file(provider: str) -> Path:
    return ROOT / "packages" / provider / "src" / f"steplift_{provider}" / "prices.toml"


def raw_rows(provider: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = tomllib.loads(catalog_file(provider).read_text())["price"]
    return rows


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_ships_a_dated_catalog(provider: str) -> None:
    data = tomllib.loads(catalog_file(provider).read_text())
    assert isinstance(data["catalog_date"], dt.date)
    assert data["price"], f"{provider}: no rows"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_row_names_its_source_and_date(provider: str) -> None:
    for i, row in enumerate(raw_rows(provider)):
        where = f"{provider} price[{i}] {row}"
        assert sum(key in row for key in NAME_KEYS) == 1, where
        assert isinstance(row.get("region"), str) and row["region"], where
        assert isinstance(row.get("source"), str) and row["source"].strip(), where
        assert isinstance(row.get("date"), dt.date), where


@pytest.mark.parametrize("provider", PROVIDERS)
def test_prices_are_non_negative_numbers_and_missing_ones_are_explained(provider: str) -> None:
    for i, row in enumerate(raw_rows(provider)):
        where = f"{provider} price[{i}] {row}"
        for key in ("on_demand", "spot"):
            if key in row:
                assert isinstance(row[key], int | float) and not isinstance(row[key], bool), where
                assert row[key] >= 0, where
                assert row.get("source"), where
        if "on_demand" not in row:
            assert row.get("note"), f"{where}: a row without a price says why"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rows_are_unique_and_not_dated_after_the_catalog(provider: str) -> None:
    catalog = load_catalog(provider)
    keys = [(row.kind, row.name, row.region) for row in catalog.rows]
    assert len(keys) == len(set(keys))
    assert all(row.date <= catalog.catalog_date for row in catalog.rows)


def test_catalogs_cover_the_types_the_resource_tables_use() -> None:
    from steplift_azureml.resources import VM_SIZES
    from steplift_sagemaker.resources import DEFAULT_CPU_INSTANCE_TYPE, GPU_INSTANCE_TYPES
    from steplift_vertex.resources import _BUILT_IN, ACCELERATOR_ENUM, DEFAULT_CPU_MACHINE

    def named(provider: str, region: str) -> set[str]:
        return {row.name for row in load_catalog(provider).rows if row.region == region}

    sagemaker = {DEFAULT_CPU_INSTANCE_TYPE}
    sagemaker |= {t for counts in GPU_INSTANCE_TYPES.values() for t in counts.values()}
    assert sagemaker <= named("sagemaker", "us-east-1")
    vertex = {DEFAULT_CPU_MACHINE, *_BUILT_IN}
    vertex |= {name for name in ACCELERATOR_ENUM if name != "NVIDIA_TESLA_K80"}
    assert vertex <= named("vertex", "us-central1")
    assert {size.name for size in VM_SIZES} <= named("azureml", "eastus")


def test_loader_reads_the_real_catalogs() -> None:
    azure = load_catalog("azureml")
    price = azure.hourly("Standard_NC4as_T4_v3", "eastus")
    assert price is not None and price.usd_per_hour > 0 and not price.spot
    assert price.source.startswith("skypilot-org/skypilot-catalog")
    assert azure.hourly("Standard_NC4as_T4_v3", "eastus", spot=True) is None
    assert azure.hourly("Standard_NC4as_T4_v3", "antarctica") is None

    vertex = load_catalog("steplift_vertex")
    machine = vertex.hourly("n1-standard-4", "us-central1")
    assert machine is not None and machine.usd_per_hour > 0
    assert vertex.hourly("NVIDIA_TESLA_T4", "us-central1") is None
    row = vertex.row("NVIDIA_TESLA_T4", "us-central1")
    assert row is not None and row.kind == "accelerator" and row.note

    sagemaker = load_catalog("sagemaker")
    assert sagemaker.hourly("ml.g5.xlarge", "us-east-1") is None
    missing = sagemaker.row("ml.g5.xlarge", "us-east-1")
    assert missing is not None and missing.note and "not available" in missing.note


def test_staleness_counts_days_from_the_catalog_date() -> None:
    catalog = load_catalog("azureml")
    born = catalog.catalog_date
    assert not catalog.is_stale(born, max_age_days=0)
    assert not catalog.is_stale(born + dt.timedelta(days=90), max_age_days=90)
    assert catalog.is_stale(born + dt.timedelta(days=91), max_age_days=90)
    assert catalog.age_days(born + dt.timedelta(days=3)) == 3


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            'catalog_date = 2026-01-01\n[[price]]\ninstance = "x"\nregion = "r"\ndate = 2026-01-01',
            "source",
        ),
        (
            'catalog_date = 2026-01-01\n[[price]]\ninstance = "x"\nregion = "r"\nsource = "s"',
            "date",
        ),
        (
            'catalog_date = 2026-01-01\n[[price]]\ninstance = "x"\nregion = "r"\n'
            "on_demand = 1.0\ndate = 2026-01-01",
            "source",
        ),
        (
            'catalog_date = 2026-01-01\n[[price]]\ninstance = "x"\nregion = "r"\nsource = "s"\n'
            "date = 2026-01-01\non_demand = -1.0",
            "negative",
        ),
        (
            'catalog_date = 2026-01-01\n[[price]]\ninstance = "x"\nregion = "r"\nsource = "s"\n'
            'date = 2026-01-01\non_demand = "1.0"',
            "not a number",
        ),
        (
            '[[price]]\ninstance = "x"\nregion = "r"\nsource = "s"\ndate = 2026-01-01',
            "catalog_date",
        ),
    ],
)
def test_the_loader_refuses_unsourced_undated_or_negative_rows(text: str, fragment: str) -> None:
    with pytest.raises(CatalogError, match=fragment):
        parse_catalog(text)


def test_the_price_module_is_not_imported_by_steplift_and_imports_no_cloud_sdk() -> None:
    probe = "import steplift, sys; print('steplift.prices' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert (
        modules_loaded_by("import steplift.prices; steplift.prices.load_catalog('azureml')") == []
    )
