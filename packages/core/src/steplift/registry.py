"""Flavors found through the ``steplift.flavors`` entry-point group, imported only when used."""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from steplift.errors import FlavorNotFound
from steplift.interrupts import deferred_interrupts
from steplift.operator import Flavor

FLAVOR_GROUP = "steplift.flavors"

# The extra of the meta distribution that brings each cloud flavor.
FLAVOR_EXTRAS = {"sagemaker": "sagemaker", "vertex": "vertex", "azureml": "azureml"}


def install_hint(flavor: str) -> str | None:
    """The pip command that installs a known flavor."""
    extra = FLAVOR_EXTRAS.get(flavor)
    return f'install it with: pip install "steplift[{extra}]"' if extra else None


def installed_flavors() -> dict[str, EntryPoint]:
    """Entry points of every installed flavor, by name (nothing is imported)."""
    return {entry.name: entry for entry in entry_points(group=FLAVOR_GROUP)}


@cache
def get_flavor(name: str) -> Flavor:
    """Load a flavor by name; FlavorNotFound names the installed ones and the fix."""
    installed = installed_flavors()
    entry = installed.get(name)
    if entry is None:
        raise FlavorNotFound(name, list(installed), install_hint(name))
    try:
        with deferred_interrupts():  # an import cut in half leaves broken models behind
            flavor = entry.load()
    except ImportError as error:
        hint = install_hint(name) or f"its package failed to import: {error}"
        raise FlavorNotFound(name, [other for other in installed if other != name], hint) from error
    if not isinstance(flavor, Flavor):
        raise FlavorNotFound(name, list(installed), f"{entry.value} is not a steplift Flavor")
    return flavor
