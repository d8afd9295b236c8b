"""What is installed, from entry points; flavors are imported only when used.

Three entry-point groups, none of which core fills for a cloud:

- ``steplift.flavors``: ``NAME = "module:FLAVOR"``, each provider package's flavor;
- ``steplift.emulators``: ``NAME = "module:Class"``, a provider package's local stand-in for
  its cloud (a :class:`steplift.emulation.Emulator`): chaos runs and tests start it, and
  ``steplift emulator NAME`` runs its ``main(argv) -> int``;
- ``steplift.flavor_extras``: ``NAME = "package [EXTRA]"``, declared by the meta distribution
  ``steplift`` (always installed with the command) for every flavor it can bring: the flavor's
  top-level package and the extra that installs it, so that a flavor that is *not* installed
  gets an install hint.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from steplift.errors import FlavorNotFound
from steplift.interrupts import deferred_interrupts

if TYPE_CHECKING:
    from steplift.operator import Flavor

FLAVOR_GROUP = "steplift.flavors"
EMULATOR_GROUP = "steplift.emulators"
EXTRAS_GROUP = "steplift.flavor_extras"


def installed_flavors() -> dict[str, EntryPoint]:
    """Entry points of every installed flavor, by name (nothing is imported)."""
    return {entry.name: entry for entry in entry_points(group=FLAVOR_GROUP)}


def installed_emulators() -> dict[str, EntryPoint]:
    """Entry points of every installed emulator class, by name (nothing is imported)."""
    return {entry.name: entry for entry in entry_points(group=EMULATOR_GROUP)}


def known_flavors() -> dict[str, EntryPoint]:
    """Every flavor an extra of an installed distribution brings, by name, installed or not."""
    return {entry.name: entry for entry in entry_points(group=EXTRAS_GROUP)}


def emulator_names() -> list[str]:
    """What ``steplift emulator`` serves: every installed emulator, and every known flavor that
    is not installed (to say how to install it); the known ones first, in their order."""
    emulators = installed_emulators()
    flavors = installed_flavors()
    known = [name for name in known_flavors() if name in emulators or name not in flavors]
    return known + sorted(set(emulators) - set(known))


def install_command(flavor: str) -> str | None:
    """The pip command that installs a known flavor (None for one no extra brings)."""
    entry = known_flavors().get(flavor)
    if entry is None or not entry.extras:
        return None
    distribution = entry.dist.name if entry.dist is not None else "steplift"
    return f'pip install "{distribution}[{",".join(entry.extras)}]"'


def install_hint(flavor: str) -> str | None:
    """How to install a known flavor, as FlavorNotFound words it."""
    command = install_command(flavor)
    return f"install it with: {command}" if command else None


@cache
def get_flavor(name: str) -> Flavor:
    """Load a flavor by name; FlavorNotFound names the installed ones and the fix."""
    from steplift.operator import Flavor

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
