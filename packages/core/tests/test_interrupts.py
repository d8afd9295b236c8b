"""Ctrl-C held around work that must not be cut in half (imports, model building)."""

from __future__ import annotations

import os
import signal

import pytest

from steplift import registry
from steplift.flavors.local import FLAVOR
from steplift.interrupts import Terminated, deferred_interrupts
from steplift.operator import Flavor


def test_nested_blocks_deliver_once_when_the_outermost_ends() -> None:
    reached = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupts():
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("inner body")
        reached.append("after inner")  # the inner block must not deliver it
    assert reached == ["inner body", "after inner"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_is_delivered_as_terminated() -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with pytest.raises(Terminated) as caught, deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
        assert caught.value.signal_number == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_flavor_interrupted_while_it_loads_is_loaded_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The chaos run's Ctrl-C landed while the azureml flavor's config module was being
    # imported: pydantic swallowed it mid-build and left a validator whose patterns matched
    # nothing, so a valid workspace name was refused and the Ctrl-C was lost.
    loaded = []

    class Entry:
        name = "mine"
        value = "tests:Mine"

        def load(self) -> Flavor:
            if not loaded:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C lands mid-import
            loaded.append("the rest of the module")
            return FLAVOR

    monkeypatch.setattr(registry, "installed_flavors", lambda: {"mine": Entry()})
    registry.get_flavor.cache_clear()
    try:
        with pytest.raises(KeyboardInterrupt):
            registry.get_flavor("mine")
        assert loaded == ["the rest of the module"]  # held until the load ended
        assert registry.get_flavor("mine") is FLAVOR  # the next load is fine
    finally:
        registry.get_flavor.cache_clear()
