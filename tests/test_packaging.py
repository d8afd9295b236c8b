"""The wheels: built from the workspace, each with py.typed and its entry points, and the
meta distribution's extras install exactly the provider asked for."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from wheelcheck import check_wheel, declared

ROOT = Path(__file__).resolve().parents[1]
PROVIDERS = sorted(
    p.name
    for p in (ROOT / "packages").iterdir()
    if p.name != "core" and (p / "pyproject.toml").is_file()
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    projects = [ROOT / "packages" / "core", *(ROOT / "packages" / p for p in PROVIDERS), ROOT]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out)]
        + [str(p) for p in projects],
        check=True,
    )
    return out


def installed_distributions(dist: Path, requirement: str, where: Path) -> set[str]:
    """Install ``requirement`` into a fresh venv from ``dist`` (+ the index for third parties)."""
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--find-links", str(dist), requirement],
        check=True,
    )
    listing = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {entry["name"].lower() for entry in json.loads(listing.stdout)}


def test_every_wheel_has_py_typed_and_its_entry_points(dist: Path) -> None:
    projects = [ROOT / "packages" / "core", *(ROOT / "packages" / p for p in PROVIDERS), ROOT]
    for project in projects:
        name, _ = declared(project)
        wheels = list(dist.glob(f"{name.replace('-', '_')}-0.1.0-*.whl"))
        assert len(wheels) == 1, f"{name}: {wheels}"
        assert check_wheel(wheels[0], project) == []


def test_plain_install_brings_core_only(dist: Path, tmp_path: Path) -> None:
    names = installed_distributions(dist, "steplift", tmp_path / "venv")
    ours = {name for name in names if name.startswith("steplift")}
    assert ours == {"steplift", "steplift-core"}
    assert not names & {"boto3", "google-cloud-aiplatform", "azure-ai-ml"}
    out = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "steplift"), "operators"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "local" in out


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_extra_brings_core_and_that_provider_only(
    dist: Path, tmp_path: Path, provider: str
) -> None:
    names = installed_distributions(dist, f"steplift[{provider}]", tmp_path / "venv")
    ours = {name for name in names if name.startswith("steplift")}
    assert ours == {"steplift", "steplift-core", f"steplift-{provider}"}
    probe = "from steplift.registry import installed_flavors; print(sorted(installed_flavors()))"
    python = tmp_path / "venv" / "bin" / "python"
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(sorted(["local", provider]))
    steplift = tmp_path / "venv" / "bin" / "steplift"
    assert (
        subprocess.run([str(steplift), "operators"], capture_output=True, check=True).returncode
        == 0
    )
