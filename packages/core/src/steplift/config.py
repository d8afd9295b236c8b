"""The config file: which operators exist and which one runs a step.

Looked up in this order: the file named by ``STEPLIFT_CONFIG``, ``steplift.toml`` in the
working directory, ``[tool.steplift]`` in ``pyproject.toml`` there. ``STEPLIFT_OPERATOR``
overrides ``default_operator``. With no config at all, the ``local`` flavor runs steps.

    default_operator = "gpu"
    [operators.gpu]
    flavor = "sagemaker"
    region = "us-east-1"
    ...
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steplift.errors import ConfigError
from steplift.launch.policy import LaunchPolicy
from steplift.operator import StepOperator, StepOperatorConfig
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep

CONFIG_ENV = "STEPLIFT_CONFIG"
OPERATOR_ENV = "STEPLIFT_OPERATOR"
DEFAULT_FLAVOR = "local"
_OPERATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_TOP_LEVEL_KEYS = {"default_operator", "operators"}


@dataclass(frozen=True)
class OperatorEntry:
    """One ``[operators.<name>]`` table: the flavor and its raw fields."""

    name: str
    flavor: str
    fields: dict[str, Any]
    source: str


@dataclass(frozen=True)
class ProjectConfig:
    """The parsed config file (or the built-in default when there is none)."""

    path: str | None = None
    default_operator: str | None = None
    operators: dict[str, OperatorEntry] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """How errors name this config."""
        return self.path or "<no config file>"

    def entry(self, name: str) -> OperatorEntry:
        """The operator called ``name``; ``local`` always exists unless redefined."""
        if name in self.operators:
            return self.operators[name]
        if name == DEFAULT_FLAVOR:
            return OperatorEntry(DEFAULT_FLAVOR, DEFAULT_FLAVOR, {}, "<built-in>")
        known = ", ".join(sorted({*self.operators, DEFAULT_FLAVOR}))
        raise ConfigError(
            f"no operator named '{name}' (configured: {known})", file=self.path, operator=name
        )

    def choose(self, requested: str | None, environ: Mapping[str, str] | None = None) -> str:
        """Which operator runs a step: the argument, STEPLIFT_OPERATOR, the default, local."""
        environ = os.environ if environ is None else environ
        name = requested or environ.get(OPERATOR_ENV) or self.default_operator
        if name:
            self.entry(name)
            return name
        if len(self.operators) == 1:
            return next(iter(self.operators))
        if not self.operators:
            return DEFAULT_FLAVOR
        raise ConfigError(
            "several operators are configured and none is chosen: set default_operator, "
            f"{OPERATOR_ENV} or --operator",
            file=self.path,
        )


def find_config_file(
    cwd: Path | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The config file that applies, or None."""
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    explicit = environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_absolute():
            path = cwd / path
        if not path.is_file():
            raise ConfigError(
                f"{CONFIG_ENV} names a file that does not exist", value=str(path), has_value=True
            )
        return path
    for candidate in (cwd / "steplift.toml", cwd / "pyproject.toml"):
        if candidate.is_file():
            if (
                candidate.name == "pyproject.toml"
                and b"[tool.steplift" not in candidate.read_bytes()
            ):
                continue
            return candidate
    return None


def load_config(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> ProjectConfig:
    """Find and parse the config file; ConfigError names the file, operator, field and value."""
    path = find_config_file(cwd, environ)
    if path is None:
        return ProjectConfig()
    source = str(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"not valid TOML: {error}", file=source) from None
    tool = document.get("tool")
    if path.name == "pyproject.toml" or (isinstance(tool, dict) and "steplift" in tool):
        table = tool.get("steplift") if isinstance(tool, dict) else None
        if not isinstance(table, dict):
            raise ConfigError("has no [tool.steplift] table", file=source)
        return parse_config(table, source=source, prefix="tool.steplift.")
    return parse_config(document, source=source)


def parse_config(table: Mapping[str, Any], *, source: str, prefix: str = "") -> ProjectConfig:
    """Validate the steplift table of a config document."""
    for key in table:
        if key not in _TOP_LEVEL_KEYS:
            raise ConfigError(
                f"unknown key (expected one of: {', '.join(sorted(_TOP_LEVEL_KEYS))})",
                file=source,
                field=prefix + key,
            )
    default = table.get("default_operator")
    if default is not None and not isinstance(default, str):
        raise ConfigError(
            "must be a string",
            file=source,
            field=prefix + "default_operator",
            value=default,
            has_value=True,
        )
    raw_operators = table.get("operators", {})
    if not isinstance(raw_operators, dict):
        raise ConfigError("must be a table of operators", file=source, field=prefix + "operators")
    operators: dict[str, OperatorEntry] = {}
    for name, body in raw_operators.items():
        if not _OPERATOR_NAME.match(name):
            raise ConfigError(
                "operator names use letters, digits, '-' and '_' (at most 63)",
                file=source,
                field=f"{prefix}operators",
                value=name,
                has_value=True,
            )
        if not isinstance(body, dict):
            raise ConfigError("must be a table", file=source, operator=name)
        flavor = body.get("flavor")
        if not isinstance(flavor, str) or not flavor:
            raise ConfigError(
                'every operator needs flavor = "<name>" (e.g. local, sagemaker, vertex, azureml)',
                file=source,
                operator=name,
                field="flavor",
            )
        fields = {key: value for key, value in body.items() if key != "flavor"}
        operators[name] = OperatorEntry(name, flavor, fields, source)
    config = ProjectConfig(source, default, operators)
    if default is not None:
        config.entry(default)
    return config


def validate_operator(entry: OperatorEntry) -> StepOperatorConfig:
    """Validate an operator's fields with its flavor's config model (imports the flavor)."""
    from steplift.registry import get_flavor

    try:
        flavor = get_flavor(entry.flavor)  # loaded whole: Ctrl-C is held meanwhile
    except ConfigError as error:
        raise ConfigError(
            error.problem, file=entry.source, operator=entry.name, field="flavor"
        ) from None
    return flavor.validate_config(entry.fields, file=entry.source, operator=entry.name)


def create_operator(
    name: str | None = None,
    *,
    config: ProjectConfig | None = None,
    clock: Clock = DEFAULT_CLOCK,
    sleep: Sleep = DEFAULT_SLEEP,
    policy: LaunchPolicy | None = None,
) -> StepOperator:
    """The operator called ``name`` (or the chosen default), validated, ready to launch."""
    from steplift.registry import get_flavor

    config = config or load_config()
    entry = config.entry(config.choose(name))
    validated = validate_operator(entry)
    return get_flavor(entry.flavor).create(
        validated, name=entry.name, clock=clock, sleep=sleep, policy=policy
    )
