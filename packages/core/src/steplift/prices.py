"""Price catalogs: the hourly prices each provider package ships for its managed service.

Each provider package carries a ``prices.toml`` beside its code: a header with the date the
catalog was put together (``catalog_date``) and rows ``[[price]]``, one per instance type (or
Vertex machine type or accelerator) and region, each naming its ``source`` and ``date``. A row
may have no price: the catalog then says that the managed-service price was not available
(``note``) rather than guessing one.

This module reads those files with the standard library only (``importlib.resources`` and
``tomllib``); it imports no cloud SDK and ``import steplift`` does not import it.

    >>> catalog = load_catalog("azureml")  # doctest: +SKIP
    >>> catalog.hourly("Standard_NC4as_T4_v3", "eastus")  # doctest: +SKIP
    Price(usd_per_hour=0.526, spot=False, ...)
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import tomllib
from dataclasses import dataclass
from typing import Any

CATALOG_FILE = "prices.toml"
"""The catalog's file name inside a provider package."""

NAME_KEYS = ("instance", "machine", "accelerator")
"""The keys a row names its priced thing by: SageMaker and Azure ML instance types, Vertex
machine types and Vertex accelerators (Vertex prices a machine and its GPUs apart)."""


class CatalogError(ValueError):
    """A catalog file that does not have the shape this module reads."""


@dataclass(frozen=True)
class Price:
    """One hourly price from a catalog row, with where it comes from."""

    usd_per_hour: float
    spot: bool
    source: str
    date: dt.date
    note: str | None = None


@dataclass(frozen=True)
class Row:
    """One ``[[price]]`` row: a priced thing in one region (prices may be absent)."""

    kind: str
    """Which key named it: ``instance``, ``machine`` or ``accelerator``."""
    name: str
    region: str
    on_demand: float | None
    spot: float | None
    source: str
    date: dt.date
    note: str | None = None

    def price(self, spot: bool = False) -> Price | None:
        """The on-demand (or spot) price of this row, None when the catalog has none."""
        value = self.spot if spot else self.on_demand
        if value is None:
            return None
        return Price(value, spot, self.source, self.date, self.note)


@dataclass(frozen=True)
class Catalog:
    """A provider package's price catalog."""

    package: str
    catalog_date: dt.date
    rows: tuple[Row, ...]
    header: dict[str, Any]
    """Every other header key of the file (service, currency, notes...), as read."""

    def row(self, name: str, region: str) -> Row | None:
        """The row for ``name`` (instance, machine or accelerator) in ``region``, if any."""
        for row in self.rows:
            if row.name == name and row.region == region:
                return row
        return None

    def hourly(self, instance: str, region: str, spot: bool = False) -> Price | None:
        """The hourly price of ``instance`` in ``region`` (spot or on-demand).

        None when the catalog has no row for it or its row has no such price; the row's
        ``note`` (see :meth:`row`) says why a price is missing.
        """
        row = self.row(instance, region)
        return None if row is None else row.price(spot)

    def age_days(self, today: dt.date) -> int:
        """Days from ``catalog_date`` to ``today``."""
        return (today - self.catalog_date).days

    def is_stale(self, today: dt.date, max_age_days: int) -> bool:
        """Whether the catalog is older than ``max_age_days`` on ``today``."""
        return self.age_days(today) > max_age_days


def _package_name(package: str) -> str:
    return package if package.startswith("steplift") else f"steplift_{package}"


def _date(value: object, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise CatalogError(f"{where}: not a date: {value!r}")


def _price(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CatalogError(f"{where}: not a number: {value!r}")
    if value < 0:
        raise CatalogError(f"{where}: negative price {value!r}")
    return float(value)


def _row(entry: dict[str, Any], where: str) -> Row:
    kinds = [key for key in NAME_KEYS if key in entry]
    if len(kinds) != 1:
        raise CatalogError(f"{where}: needs exactly one of {', '.join(NAME_KEYS)}")
    for key in ("region", "source"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise CatalogError(f"{where}: needs a {key}")
    if "date" not in entry:
        raise CatalogError(f"{where}: needs a date")
    note = entry.get("note")
    return Row(
        kind=kinds[0],
        name=str(entry[kinds[0]]),
        region=entry["region"],
        on_demand=_price(entry.get("on_demand"), f"{where}.on_demand"),
        spot=_price(entry.get("spot"), f"{where}.spot"),
        source=entry["source"],
        date=_date(entry["date"], f"{where}.date"),
        note=None if note is None else str(note),
    )


def parse_catalog(text: str, package: str = "<text>") -> Catalog:
    """A catalog from the text of a ``prices.toml`` (CatalogError when it is malformed)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(f"{package}: {error}") from None
    if "catalog_date" not in data:
        raise CatalogError(f"{package}: needs a catalog_date")
    entries = data.get("price", [])
    if not isinstance(entries, list):
        raise CatalogError(f"{package}: price must be an array of tables ([[price]])")
    rows = tuple(_row(entry, f"{package}: price[{i}]") for i, entry in enumerate(entries))
    header = {key: value for key, value in data.items() if key not in ("catalog_date", "price")}
    return Catalog(package, _date(data["catalog_date"], f"{package}: catalog_date"), rows, header)


def load_catalog(package: str) -> Catalog:
    """The catalog shipped with a provider package.

    ``package`` is the import name (``steplift_sagemaker``) or the flavor's short name
    (``sagemaker``). ModuleNotFoundError when that package is not installed,
    FileNotFoundError when it ships no catalog, CatalogError when the file is malformed.
    """
    name = _package_name(package)
    resource = importlib.resources.files(name).joinpath(CATALOG_FILE)
    if not resource.is_file():
        raise FileNotFoundError(f"{name} ships no {CATALOG_FILE}")
    return parse_catalog(resource.read_text(encoding="utf-8"), name)
