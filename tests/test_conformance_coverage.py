"""Every installed flavor has a conformance subclass in the repository's tests."""

from __future__ import annotations

import ast
from pathlib import Path

from steplift.registry import installed_flavors

ROOT = Path(__file__).resolve().parents[1]


def conformance_flavors() -> dict[str, str]:
    """flavor name -> test file, for each StepOperatorConformance subclass found."""
    found: dict[str, str] = {}
    files = [*ROOT.glob("packages/*/tests/**/test_*.py"), *ROOT.glob("tests/**/test_*.py")]
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases}
            if "StepOperatorConformance" not in bases:
                continue
            for statement in node.body:
                targets = (
                    [statement.target]
                    if isinstance(statement, ast.AnnAssign)
                    else statement.targets
                    if isinstance(statement, ast.Assign)
                    else []
                )
                value = getattr(statement, "value", None)
                for target in targets:
                    if (
                        isinstance(target, ast.Name)
                        and target.id == "flavor"
                        and isinstance(value, ast.Constant)
                    ):
                        found[str(value.value)] = str(path.relative_to(ROOT))
    return found


def test_every_installed_flavor_has_a_conformance_subclass() -> None:
    covered = conformance_flavors()
    missing = sorted(set(installed_flavors()) - set(covered))
    assert not missing, f"installed flavors without a StepOperatorConformance subclass: {missing}"


def test_the_scanner_sees_the_local_subclass() -> None:
    assert conformance_flavors()["local"] == "packages/core/tests/test_local_conformance.py"
