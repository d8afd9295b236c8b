"""Flavors shipped with core (``local``); cloud flavors live in their own packages."""
