"""Check built wheels: every package ships py.typed, its price catalog (prices.toml) if it has
one, and the entry points it declares.

python tests/wheelcheck.py dist/
"""

from __future__ import annotations

import configparser
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def declared(project: Path) -> tuple[str, dict[str, dict[str, str]]]:
    """The distribution name and entry points a pyproject.toml declares."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    groups: dict[str, dict[str, str]] = {
        group: dict(entries) for group, entries in meta.get("entry-points", {}).items()
    }
    if meta.get("scripts"):
        groups["console_scripts"] = dict(meta["scripts"])
    return meta["name"], groups


def check_wheel(wheel: Path, project: Path) -> list[str]:
    """Problems with one wheel (empty when it is fine)."""
    name, groups = declared(project)
    problems = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        has_code = (project / "src").is_dir()
        if has_code and not any(item.endswith("/py.typed") for item in names):
            problems.append(f"{wheel.name}: no py.typed")
        for catalog in sorted((project / "src").glob("*/prices.toml")) if has_code else []:
            inside = catalog.relative_to(project / "src").as_posix()
            if inside not in names:
                problems.append(f"{wheel.name}: no {inside}")
        found = [item for item in names if item.endswith(".dist-info/entry_points.txt")]
        parser = configparser.ConfigParser(delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        if found:
            parser.read_string(archive.read(found[0]).decode())
        for group, entries in groups.items():
            for entry, target in entries.items():
                if (
                    not parser.has_option(group, entry)
                    or parser.get(group, entry).strip() != target
                ):
                    problems.append(
                        f"{wheel.name}: entry point [{group}] {entry} = {target} missing"
                    )
    return problems


def main(dist: Path) -> int:
    projects = [p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file()]
    problems: list[str] = []
    for project in [*projects, ROOT]:
        name, _ = declared(project)
        wheels = list(dist.glob(f"{name.replace('-', '_')}-*.whl"))
        if len(wheels) != 1:
            problems.append(f"{name}: expected one wheel in {dist}, found {len(wheels)}")
            continue
        problems += check_wheel(wheels[0], project)
    for problem in problems:
        print(problem)
    print("wheels ok" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
