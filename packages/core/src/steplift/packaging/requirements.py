"""The ``requirements`` option: what pip installs in the job before the step is imported.

A list of requirement strings, the path of a requirements file, or ``"auto"`` (the
``[project] dependencies`` of the project's ``pyproject.toml``). The job receives the text and
its SHA-256, which names the folder the requirements are installed into (so a second start
with the same requirements downloads nothing).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from steplift.errors import ConfigError

RequirementsSetting = str | Sequence[str] | None


@dataclass(frozen=True)
class RequirementsText:
    """Requirements as the text of a requirements file, with its digest."""

    text: str
    sha256: str


def _from_lines(lines: Sequence[str]) -> RequirementsText | None:
    kept = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not kept:
        return None
    text = "\n".join(kept) + "\n"
    return RequirementsText(text, hashlib.sha256(text.encode()).hexdigest())


def _project_dependencies(project_root: Path | None) -> list[str]:
    if project_root is None:
        raise ConfigError(
            'requirements = "auto" reads the project\'s pyproject.toml, but this step ships no '
            "project (code = false, or its code comes from an installed package)",
            field="requirements",
        )
    path = project_root / "pyproject.toml"
    if not path.is_file():
        raise ConfigError(
            'requirements = "auto" reads [project] dependencies, but the project has no '
            "pyproject.toml",
            file=str(path),
            field="requirements",
        )
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"not valid TOML: {error}", file=str(path)) from None
    dependencies = document.get("project", {}).get("dependencies")
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ConfigError(
            'requirements = "auto" needs a list of strings in [project] dependencies',
            file=str(path),
            field="requirements",
        )
    return dependencies


def resolve_requirements(
    setting: RequirementsSetting, *, project_root: Path | None
) -> RequirementsText | None:
    """The requirements' text, or None; ConfigError for a missing file or a bad value."""
    if setting is None:
        return None
    if setting == "auto":
        return _from_lines(_project_dependencies(project_root))
    if isinstance(setting, str):
        path = Path(setting).expanduser()
        if not path.is_file():
            raise ConfigError(
                'names no file (give a requirements file, a list of requirements or "auto")',
                field="requirements",
                value=setting,
                has_value=True,
            )
        return _from_lines(path.read_text(encoding="utf-8").splitlines())
    if not all(isinstance(line, str) for line in setting):
        raise ConfigError(
            "must be a list of strings", field="requirements", value=setting, has_value=True
        )
    return _from_lines(list(setting))
