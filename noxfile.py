"""Developer sessions: tests, lint, typecheck, demo, build, bench, chaos, docs.

python3 -m pip install nox && python3 -m nox -s tests
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True


def _package_extras(package: Path) -> str:
    """A provider's emulator extra (its local stand-in for the cloud), if it declares one."""
    meta = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    return "[emulator]" if "emulator" in meta.get("optional-dependencies", {}) else ""


def _install_workspace(session: nox.Session, *extras: str) -> None:
    """Every workspace package, editable, plus the meta distribution with ``extras``."""
    editable: list[str] = []
    for package in PACKAGES:
        editable += ["-e", f"{package}{_package_extras(package)}"]
    suffix = f"[{','.join(extras)}]" if extras else ""
    session.install(*editable, "-e", f"{ROOT}{suffix}")


AZURITE = "azurite@3.35.0"  # 3.36+ needs Node 21; this machine and CI have Node 20


def _azurite(session: nox.Session) -> dict[str, str]:
    """Azurite (the Azure Storage emulator, from npm) for the azureml package, installed once."""
    if not (ROOT / "packages" / "azureml").is_dir() or os.environ.get("STEPLIFT_AZURITE"):
        return {}
    prefix = ROOT / ".nox" / "azurite"
    if not (prefix / "node_modules" / ".bin" / "azurite-blob").exists():
        session.run(
            "npm",
            "install",
            "--prefix",
            str(prefix),
            AZURITE,
            "--no-fund",
            "--no-audit",
            external=True,
        )
    return {"STEPLIFT_AZURITE": str(prefix)}


def _test_dirs() -> list[str]:
    return [str(p / "tests") for p in PACKAGES if (p / "tests").is_dir()] + ["tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (conformance, end to end, packaging)."""
    _install_workspace(session, "dev")
    session.run("pytest", *_test_dirs(), *session.posargs, env=_azurite(session))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over everything: the lint rules and the formatting (one pinned ruff version)."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's sources."""
    _install_workspace(session, "dev")
    sources = [str(module) for p in PACKAGES for module in sorted((p / "src").iterdir())]
    session.run("mypy", "--strict", *sources)


@nox.session
def demo(session: nox.Session) -> None:
    """The example training step through the default operator, then on each cloud emulator."""
    _install_workspace(session)
    session.install("numpy>=1.26")
    session.run("python", "examples/train.py", *session.posargs)
    for package in PACKAGES:
        if _package_extras(package):
            session.run("python", "examples/on_emulator.py", package.name, env=_azurite(session))


@nox.session
def bench(session: nox.Session) -> None:
    """Speed and memory against the targets and the official SDKs; writes BENCHMARKS.md.

    ``nox -s bench -- --quick`` is a 2-minute smoke run; the full run takes about 30 minutes
    (plus a one-time ~1 GB install of the SageMaker Python SDK into benchmarks/.venvs/).
    """
    _install_workspace(session)
    # benchmarks/ is a package run from the repository root (nox's working directory).
    session.run("python", "-m", "benchmarks.run", *session.posargs, env=_azurite(session))


@nox.session
def chaos(session: nox.Session) -> None:
    """Steps under throttling, 5xx, launcher kills, interrupts and preemptions, per flavor.

    ``nox -s chaos -- 50`` runs 50 steps per flavor (default 200).
    """
    _install_workspace(session)
    steps = session.posargs[0] if session.posargs else "200"
    # local and every installed emulator's flavor
    session.run("python", "-m", "steplift.emulation.chaos", "--steps", steps, env=_azurite(session))


@nox.session
def build(session: nox.Session) -> None:
    """Every wheel into dist/, each checked for py.typed and its entry points."""
    session.install("build>=1.2")
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    for project in [*PACKAGES, ROOT]:
        session.run("python", "-m", "build", "--wheel", "--outdir", str(dist), str(project))
    session.run("python", str(ROOT / "tests" / "wheelcheck.py"), str(dist))


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (docs/, mkdocs.yml) into site/, strictly: a broken link, a missing
    page or an API reference that names nothing fails the build.

    The workspace packages go in without their dependencies: mkdocstrings reads their sources,
    so the cloud SDKs are not installed and the session stays light (and they are built with
    the pinned hatchling, not one isolated build environment each).
    """
    session.install("-r", str(ROOT / "docs" / "requirements.txt"))
    editable: list[str] = []
    for package in PACKAGES:
        editable += ["-e", str(package)]
    session.install("--no-deps", "--no-build-isolation", *editable)
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--config-file",
        str(ROOT / "mkdocs.yml"),
        env={"NO_MKDOCS_2_WARNING": "1"},  # the theme's end-of-life banner, not a problem here
    )
