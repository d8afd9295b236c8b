"""Steplift operators pointed at a running emulator: one helper for every consumer.

`emulated_operator` builds the operator in process (tests, benchmarks); `operator_table`
writes the same config as the body of a ``[operators.<name>]`` table of a ``steplift.toml``
(examples, chaos, anything that runs steplift as a user does).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from steplift.emulation.protocol import Emulator
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep

if TYPE_CHECKING:
    from steplift.launch.policy import LaunchPolicy
    from steplift.operator import StepOperator

__all__ = ["emulated_operator", "operator_table"]


def emulated_operator(
    emulator: Emulator,
    *,
    name: str = "emulated",
    clock: Clock = DEFAULT_CLOCK,
    sleep: Sleep = DEFAULT_SLEEP,
    policy: LaunchPolicy | None = None,
    **fields: Any,
) -> StepOperator:
    """An operator of the emulator's flavor pointed at it: `emulator.operator_config(**fields)`
    validated by the flavor from the registry (ConfigError as for a config file), then created
    with this name, clock, sleep and policy (None: the flavor's default). No API call is made.
    """
    from steplift.registry import get_flavor  # the flavor (and pydantic) only when used

    config = dict(emulator.operator_config(**fields))
    flavor = get_flavor(str(config.pop("flavor", emulator.flavor)))
    validated = flavor.validate_config(config, operator=name)
    return flavor.create(validated, name=name, clock=clock, sleep=sleep, policy=policy)


def operator_table(emulator: Emulator, **fields: Any) -> str:
    """`emulator.operator_config(**fields)` as TOML ``key = value`` lines, ``flavor`` first:
    the body of an ``[operators.<name>]`` table. A field set to None is left out (unset)."""
    config = dict(emulator.operator_config(**fields))
    config = {"flavor": config.pop("flavor", emulator.flavor), **config}
    return "".join(
        f"{_toml_key(key)} = {_toml_value(value)}\n"
        for key, value in config.items()
        if value is not None
    )


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    # A JSON string is a TOML basic string, but for DEL, which TOML wants escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{_toml_key(str(key))} = {_toml_value(item)}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    raise ValueError(f"an operator field cannot be written as TOML: {value!r}")
