"""A plain ``pytest`` at the repository root runs every package's tests."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_testpaths_cover_every_packages_tests() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    covered = {
        path for pattern in options["ini_options"]["testpaths"] for path in ROOT.glob(pattern)
    }
    packages = {path.parent for path in ROOT.glob("packages/*/pyproject.toml")}
    missing = sorted(str(p.relative_to(ROOT)) for p in packages if (p / "tests") not in covered)
    assert not missing, f"a plain pytest would skip the tests of {missing}"
    assert ROOT / "tests" in covered


def test_test_modules_have_names_of_their_own() -> None:
    # Test folders are not packages: two test modules (or helpers) of one name would clash.
    seen: dict[str, Path] = {}
    for path in sorted(ROOT.glob("packages/*/tests/*.py")) + sorted(ROOT.glob("tests/*.py")):
        if path.name == "conftest.py":
            continue
        assert path.name not in seen, f"{path} and {seen[path.name]} share a module name"
        seen[path.name] = path
