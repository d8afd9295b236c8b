"""A step's code, requirements and __main__ functions reach a local job only through the store."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from steplift.errors import ConfigError, StepFailed
from steplift.flavors.local import FLAVOR, LocalStepOperator
from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.runs import Run, RunIndex
from steplift.states import FailureKind
from steplift.testing.wheels import make_wheel

STEP = """
from pathlib import Path

import helper


def read_data() -> str:
    return helper.shout(Path("data.txt").read_text())


def needs_tinyreq() -> str:
    import tinyreq

    return tinyreq.VALUE
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway project (not a git work tree): a step module, its helper, a data file."""
    root = tmp_path / "throwaway"
    root.mkdir()
    (root / "projstep.py").write_text(STEP)
    (root / "helper.py").write_text("def shout(text):\n    return text.strip().upper()\n")
    (root / "data.txt").write_text("found me\n")
    monkeypatch.syspath_prepend(str(root))
    for name in ("projstep", "helper"):
        sys.modules.pop(name, None)
    return root


@pytest.fixture
def launcher(tmp_path: Path) -> StepLauncher:
    operator = FLAVOR.create(FLAVOR.validate_config({"root": str(tmp_path / "local")}))
    assert isinstance(operator, LocalStepOperator)
    return StepLauncher(operator, index=RunIndex(tmp_path / "runs"))


def code_puts(launcher: StepLauncher, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every store put of a code package, from now on."""
    puts: list[str] = []
    store = launcher.store
    original = store.put

    def counting(uri: str, data: bytes) -> None:
        if "/code/" in uri:
            puts.append(uri)
        original(uri, data)

    monkeypatch.setattr(store, "put", counting)
    return puts


def run(launcher: StepLauncher, function: Any, name: str, **options: Any) -> Any:
    spec = StepSpec.for_function(function, (), {})
    return launcher.run(spec, run=Run(name), step="s", options=StepOptions(**options))


def test_the_step_finds_its_helper_and_data_only_in_the_package(
    project: Path, launcher: StepLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    projstep = importlib.import_module("projstep")
    puts = code_puts(launcher, monkeypatch)
    assert run(launcher, projstep.read_data, "first") == "FOUND ME"
    assert len(puts) == 1
    # Unchanged code: a relaunch (a new run) uploads no code.
    assert run(launcher, projstep.read_data, "again") == "FOUND ME"
    assert len(puts) == 1
    # One changed line: one new package.
    (project / "helper.py").write_text("def shout(text):\n    return text.strip().title()\n")
    assert run(launcher, projstep.read_data, "changed") == "Found Me"
    assert len(puts) == 2
    # The data file left out of the package: the job cannot see the launcher's copy.
    (project / ".stepliftignore").write_text("data.txt\n")
    with pytest.raises(StepFailed, match="FileNotFoundError") as caught:
        run(launcher, projstep.read_data, "no-data")
    assert caught.value.failure_kind is FailureKind.USER_CODE


def test_without_a_package_the_job_cannot_import_the_step(
    project: Path, launcher: StepLauncher
) -> None:
    projstep = importlib.import_module("projstep")
    with pytest.raises(StepFailed, match="ModuleNotFoundError"):
        run(launcher, projstep.read_data, "no-code", code=False)


def test_bad_code_and_requirements_are_refused_before_anything_is_stored(
    project: Path, launcher: StepLauncher, tmp_path: Path
) -> None:
    projstep = importlib.import_module("projstep")
    (project / "weights.bin").write_bytes(b"w" * 300_000)
    cases: list[dict[str, Any]] = [
        {"requirements": str(tmp_path / "missing-requirements.txt")},
        {"requirements": "auto"},  # the project has no pyproject.toml
    ]
    for options in cases:
        with pytest.raises(ConfigError, match="field 'requirements'"):
            run(launcher, projstep.read_data, "bad", **options)
    with pytest.raises(ConfigError, match=r"names no folder"):
        run(launcher, projstep.read_data, "bad", code=str(tmp_path / "nowhere"))
    small = FLAVOR.create(
        FLAVOR.validate_config({"root": str(tmp_path / "local"), "max_code_size_mb": 0.1})
    )
    with pytest.raises(ConfigError, match=r"Largest: weights.bin \(300.0 KB\)"):
        StepLauncher(small).run(
            StepSpec.for_function(projstep.read_data, (), {}),
            run=Run("bad"),
            step="s",
            options=StepOptions(),
        )
    assert not (tmp_path / "local").exists()  # nothing stored, nothing submitted


def job_log(launcher: StepLauncher, run_name: str) -> str:
    operator = launcher.operator
    assert isinstance(operator, LocalStepOperator)
    logs = sorted(operator.jobs_dir.glob(f"*{run_name}*/output.log"))
    return "".join(log.read_text() for log in logs)


def test_requirements_install_once_into_the_job_and_a_failure_is_an_image_failure(
    project: Path, launcher: StepLauncher, tmp_path: Path
) -> None:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinyreq", "1.0", "VALUE = 'installed'\n")
    requirements = ("--no-index", f"--find-links {wheels}", "tinyreq==1.0")
    projstep = importlib.import_module("projstep")
    assert run(launcher, projstep.needs_tinyreq, "reqs", requirements=requirements) == "installed"
    assert "Successfully installed tinyreq-1.0" in job_log(launcher, "reqs")
    assert run(launcher, projstep.needs_tinyreq, "warm", requirements=requirements) == "installed"
    warm = job_log(launcher, "warm")
    assert "requirements already installed" in warm and "Successfully" not in warm

    broken = ("--no-index", "no-such-package-anywhere==9.9")
    with pytest.raises(StepFailed) as caught:
        run(launcher, projstep.needs_tinyreq, "broken", requirements=broken)
    failure = caught.value
    assert failure.failure_kind is FailureKind.IMAGE
    assert "no-such-package-anywhere" in str(failure) and "pip exited" in str(failure)


MAIN_SCRIPT = """
import steplift
import helper

@steplift.step(name="shout")
def shout(word):
    return helper.shout(word) + "!"

print("result:", shout("from main"))
"""


def test_a_step_defined_in_a_script_run_as_main_runs(project: Path, tmp_path: Path) -> None:
    (project / "train.py").write_text(MAIN_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(project / "train.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path / "work",
    )
    assert done.returncode == 0, done.stderr
    assert "result: FROM MAIN!" in done.stdout


def test_a_step_defined_in_python_dash_c_runs(project: Path, tmp_path: Path) -> None:
    code = textwrap.dedent(MAIN_SCRIPT).replace('"from main"', '"from dash c"')
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=project
    )
    assert done.returncode == 0, done.stderr
    assert "result: FROM DASH C!" in done.stdout
