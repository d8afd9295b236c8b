"""Code shipping end to end, as a user runs it: a throwaway project folder (not this
repository) with its own helper module, a data file and a requirement, launched with
``python train.py`` on every flavor — the local one and each cloud's executing emulator.

The job's image is the launcher's own environment (a "framework image with steplift": a stock
image cannot run steplift until jobs install it themselves). Nothing else of the launcher's
disk reaches the job: the project arrives as a code package through the store, the
requirement is installed by pip in the job from a wheel (``PIP_NO_INDEX=1``: no index is
ever reached), and planted secrets never travel. A step defined in a real IPython kernel
(jupyter_client and ipykernel) runs the same way.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from steplift.emulation import Emulator, emulated_operator, operator_table
from steplift.operator import StepOperator
from steplift.store import join_uri
from steplift.testing.wheels import make_wheel

FLAVORS = ("local", "sagemaker", "vertex", "azureml")
LAUNCH_TIMEOUT = 240.0
"""Seconds one ``python train.py`` may take (it waits for its jobs)."""
PLANTED = (".env", "id_rsa", "credentials")
"""Secrets planted in the project (``credentials`` under ``.aws/``)."""


# -- the throwaway project --------------------------------------------------------------------

HELPER = '''\
"""The project's own helper module."""

from pathlib import Path


def shout(text):
    return text.strip().upper()


def beside():
    """The data file next to this module, found through ``__file__``."""
    return (Path(__file__).parent / "data.txt").read_text().strip()
'''

STEPS = '''\
"""The project's step module."""

import os
from pathlib import Path

import helper
import steplift

PLANTED = {planted!r}


def look_around():
    """What the job can see: the names of every file under its working directory and under
    the folder its helper module came from, and whether a planted secret is among them."""
    here = Path(helper.__file__).resolve().parent
    names = set()
    for folder in (Path.cwd(), here):
        names.update(path.name for path in folder.rglob("*"))
    return {{
        "helper_file": str(Path(helper.__file__).resolve()),
        "cwd": os.getcwd(),
        "seen": sorted(names),
        "planted": sorted(name for name in PLANTED if name in names),
        "secret_in_environment": "PLANTED_SECRET" in os.environ,
    }}


@steplift.step(name="shipped")
def shipped():
    import tinyreq

    value = " | ".join(
        [helper.shout(Path("data.txt").read_text()), helper.beside(), tinyreq.VALUE]
    )
    return {{"value": value, "tinyreq_file": tinyreq.__file__, **look_around()}}
'''

TRAIN = '''\
"""The project's script: ``python train.py [--main]``."""

import json
import sys

import helper
import steplift
from steps import look_around, shipped


@steplift.step(name="from-main")
def from_main(word):
    import tinyreq

    return {"value": helper.shout(word) + " " + tinyreq.VALUE, **look_around()}


if __name__ == "__main__":
    results = {"module": shipped()}
    if "--main" in sys.argv:
        results["main"] = from_main("defined in main")
    print("RESULT " + json.dumps(results), flush=True)
'''


def make_project(root: Path) -> Path:
    """The throwaway project, with a `.env`, an `id_rsa` and `.aws/credentials` planted."""
    root.mkdir(parents=True)
    (root / "helper.py").write_text(HELPER)
    (root / "steps.py").write_text(STEPS.format(planted=PLANTED))
    (root / "train.py").write_text(TRAIN)
    (root / "data.txt").write_text("read by a relative path\n")
    (root / ".env").write_text("PLANTED_SECRET=do-not-ship\n")
    (root / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n")
    (root / ".aws").mkdir()
    (root / ".aws" / "credentials").write_text("[default]\naws_secret_access_key = nope\n")
    return root


# -- where the jobs run -----------------------------------------------------------------------


class LocalFlavor:
    """The ``local`` flavor has no emulator: this stands in for one, so that it gets its
    operator table and in-process operator the same way as the clouds."""

    flavor = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def operator_config(self, **fields: Any) -> dict[str, Any]:
        return {"flavor": "local", "root": str(self.root), **fields}


@dataclass
class Target:
    """A flavor ready to run jobs: its config file and the variables a launcher needs."""

    flavor: str
    emulator: Emulator
    fields: dict[str, Any]
    client_env: dict[str, str]
    wheel: Path
    folder: Path

    def write_config(self, folder: Path) -> Path:
        """A ``steplift.toml`` whose default operator points at this target."""
        config = folder / "steplift.toml"
        table = operator_table(self.emulator, **self.fields)
        config.write_text(f'default_operator = "e2e"\n\n[operators.e2e]\n{table}')
        return config

    def operator(self) -> StepOperator:
        """The same operator, in this process: to look into its store."""
        return emulated_operator(self.emulator, name="e2e", **self.fields)

    def code_packages(self) -> list[str]:
        """The URIs of every code package in the operator's store."""
        operator = self.operator()
        return operator.artifact_store.list(join_uri(operator.artifact_root, "code") + "/")

    def environment(self, config: Path, run: str) -> dict[str, str]:
        """The launcher's variables: this shell's, the target's client variables, the config
        file and a run of its own (a new run name is a new launch, not a read back)."""
        return {
            **os.environ,
            **self.client_env,
            "STEPLIFT_CONFIG": str(config),
            "STEPLIFT_HOME": str(self.folder / "home"),
            "STEPLIFT_RUN": run,
            "PYTHONUNBUFFERED": "1",
        }


@pytest.fixture(scope="module", params=FLAVORS)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """One flavor per parameter; each cloud's executing emulator starts once per module."""
    flavor = cast(str, request.param)
    folder = tmp_path_factory.mktemp(f"e2e-{flavor}")
    wheel = make_wheel(folder / "wheels", "tinyreq", "1.0", "VALUE = 'tinyreq 1.0'\n")
    fields: dict[str, Any] = {
        # The requirement installs from its wheel alone: pip never reaches an index.
        "requirements": [f"tinyreq @ {wheel.as_uri()}"],
        "environment": {"PIP_NO_INDEX": "1"},
    }
    if flavor == "local":
        emulator = cast(Emulator, LocalFlavor(folder / "local"))
        yield Target(flavor, emulator, fields, {}, wheel, folder)
        return
    from steplift.registry import installed_emulators

    with installed_emulators()[flavor].load()(mode="execute") as emulator:
        # The image the operator names is this environment: a framework image with steplift.
        emulator.images.register(emulator.operator_config()["image"], sys.prefix)
        client_env = dict(emulator.client_env())
        patch = pytest.MonkeyPatch()  # the in-process operator reaches the emulator too
        for name, value in client_env.items():
            patch.setenv(name, value)
        try:
            yield Target(flavor, emulator, fields, client_env, wheel, folder)
        finally:
            patch.undo()


def launch(target: Target, project: Path, run: str, *args: str) -> dict[str, Any]:
    """``python train.py ARGS`` in the project folder, as a user runs it; its results."""
    config = target.write_config(target.folder)
    done = subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=project,
        env=target.environment(config, run),
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (
        f"python train.py {' '.join(args)} on {target.flavor} exited {done.returncode}\n"
        f"--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-6000:]}"
    )
    return cast(dict[str, Any], json.loads(lines[-1].removeprefix("RESULT ")))


def assert_ran_from_the_package(result: dict[str, Any], project: Path) -> None:
    """The job imported the project's helper from its unpacked package, saw the package's
    files and none of the planted secrets."""
    helper_file = Path(result["helper_file"])
    assert helper_file.name == "helper.py"
    assert not helper_file.is_relative_to(project.resolve()), helper_file
    assert {"helper.py", "steps.py", "train.py", "data.txt"} <= set(result["seen"]), result
    assert result["planted"] == [], result
    assert result["secret_in_environment"] is False


def test_a_throwaway_project_ships_its_code_once_and_no_secret(
    target: Target, tmp_path: Path
) -> None:
    assert importlib.util.find_spec("tinyreq") is None  # only the job ever has it
    project = make_project(tmp_path / "throwaway")
    assert not project.is_relative_to(Path(__file__).resolve().parent.parent)

    first = launch(target, project, "first", "--main")
    shipped = first["module"]
    assert shipped["value"] == "READ BY A RELATIVE PATH | read by a relative path | tinyreq 1.0"
    assert "requirements" in Path(shipped["tinyreq_file"]).parts, shipped["tinyreq_file"]
    assert_ran_from_the_package(shipped, project)
    main = first["main"]  # a step defined in the script's __main__, pickled by value
    assert main["value"] == "DEFINED IN MAIN tinyreq 1.0"
    assert_ran_from_the_package(main, project)
    packages = target.code_packages()
    assert len(packages) == 1, packages  # both steps share the project's one package

    # A relaunch (a new run) with unchanged code uploads no code.
    stamps = local_stamps(target, packages)
    again = launch(target, project, "again")
    assert again["module"]["value"] == shipped["value"]
    assert target.code_packages() == packages
    assert local_stamps(target, packages) == stamps

    # A one-line change: the job runs the new line, from exactly one new package.
    helper = project / "helper.py"
    helper.write_text(helper.read_text().replace("text.strip().upper()", "text.strip().title()"))
    changed = launch(target, project, "changed")
    assert changed["module"]["value"].startswith("Read By A Relative Path | ")
    after = target.code_packages()
    assert len(after) == 2 and set(packages) < set(after), after


def local_stamps(target: Target, packages: list[str]) -> list[int]:
    """The modification times of the local flavor's stored packages (a rewrite changes
    them); the clouds' stores are compared by their listings only."""
    if target.flavor != "local":
        return []
    return [Path(uri).stat().st_mtime_ns for uri in packages]


COMMAND = (
    "import helper, json, os, pathlib, tinyreq; print('COMMAND ' + json.dumps(["
    "helper.shout(pathlib.Path('data.txt').read_text()), tinyreq.VALUE, sorted(os.listdir()), "
    "os.path.dirname(os.path.abspath(helper.__file__))]))"
)


def test_steplift_run_ships_the_working_directory(target: Target, tmp_path: Path) -> None:
    """``steplift run -- python -c ...`` in the project: the command imports the project's
    helper (the package is on its PYTHONPATH), reads its data file and has the requirement."""
    project = make_project(tmp_path / "command")
    config = target.write_config(target.folder)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "steplift"), "run", "--", "python", "-c", COMMAND],
        cwd=project,
        env=target.environment(config, "command"),
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("COMMAND ")]
    assert done.returncode == 0 and lines, f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    shouted, value, listing, helper_folder = json.loads(lines[-1].removeprefix("COMMAND "))
    assert (shouted, value) == ("READ BY A RELATIVE PATH", "tinyreq 1.0")
    assert {"helper.py", "data.txt", "train.py"} <= set(listing)
    assert not set(listing) & {".env", "id_rsa", ".aws"}, listing
    assert not Path(helper_folder).is_relative_to(project.resolve()), helper_folder


NOTEBOOK_CELLS = (
    "import steplift\nimport helper",
    '@steplift.step(name="from-a-notebook")\n'
    "def notebook_step(word):\n"
    "    import tinyreq\n"
    '    return helper.shout(word) + " " + tinyreq.VALUE',
    'print("RESULT", notebook_step("from a notebook"))',
)
"""A notebook's cells: the step lives in the kernel's namespace and uses the project's
helper module (shipped in the code package) and the requirement."""


@pytest.mark.parametrize("target", ["local", "sagemaker"], indirect=True)
def test_a_step_defined_in_an_ipython_kernel_runs(
    target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No skip: without a kernel this test fails with the reason.
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's paths, no warning
    from jupyter_client.manager import start_new_kernel

    project = make_project(tmp_path / "notebook")
    config = target.write_config(target.folder)
    env = {**target.environment(config, "notebook"), "JUPYTER_PLATFORM_DIRS": "1"}
    manager, client = start_new_kernel(
        kernel_name="python3", startup_timeout=60, env=env, cwd=str(project)
    )
    printed: list[str] = []

    def keep(message: dict[str, Any]) -> None:
        content = message["content"]
        if message["msg_type"] == "stream":
            printed.append(content["text"])
        elif message["msg_type"] == "error":
            printed.append("\n".join(content["traceback"]))

    try:
        for cell in NOTEBOOK_CELLS:
            reply = client.execute_interactive(cell, timeout=LAUNCH_TIMEOUT, output_hook=keep)
            assert reply["content"]["status"] == "ok", f"cell failed:\n{cell}\n{''.join(printed)}"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    # tinyreq exists only in the job (installed there from its wheel): the value came back
    # from a job that unpickled the notebook's function and imported the shipped helper.
    assert "RESULT FROM A NOTEBOOK tinyreq 1.0\n" in "".join(printed), printed
