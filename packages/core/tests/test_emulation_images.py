"""Emulated images and the sandbox that starts a job's node as a container of its image."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from steplift.emulation import images as images_module
from steplift.emulation.images import (
    ImageRegistry,
    build_stock_environment,
    find_interpreter,
    parse_image_option,
)
from steplift.emulation.sandbox import SYSTEM_PATH, Sandbox

BASE = Path(getattr(sys, "_base_executable", sys.executable))


def test_an_image_is_an_interpreter_or_an_environment_folder(tmp_path: Path) -> None:
    assert find_interpreter(sys.prefix) == Path(sys.prefix, "bin", "python3")
    assert find_interpreter(sys.executable) == Path(sys.executable).absolute()
    for bad in (tmp_path, tmp_path / "missing"):
        with pytest.raises(ValueError, match="not a Python environment|neither"):
            find_interpreter(bad)


def test_the_image_option_is_uri_equals_path() -> None:
    assert parse_image_option("repo/img:1=/opt/env") == ("repo/img:1", "/opt/env")
    for bad in ("repo/img:1", "=/opt/env", "repo/img:1="):
        with pytest.raises(ValueError, match="URI=PATH"):
            parse_image_option(bad)


def test_registered_images_resolve_to_their_python_and_others_to_the_stock_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = _fake_venv_builds(monkeypatch)
    registry = ImageRegistry(cache_dir=tmp_path, base_python=BASE)
    registry.register("framework:1", sys.prefix)
    assert "framework:1" in registry and "other:1" not in registry
    image = registry.resolve("framework:1")
    assert (image.python, image.stock) == (Path(sys.prefix, "bin", "python3"), False)
    assert builds == []  # registered images never build the stock one
    stock = registry.resolve("other:1")
    assert stock.stock and stock.python.is_relative_to(tmp_path)
    registry.unregister("framework:1")
    assert registry.resolve("framework:1").python == stock.python
    assert len(builds) == 1


def test_the_stock_environment_is_built_once_by_concurrent_builders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = _fake_venv_builds(monkeypatch)
    found: list[Path] = []
    start = threading.Barrier(4)

    def build() -> None:
        start.wait(5)
        found.append(ImageRegistry(cache_dir=tmp_path, base_python=BASE).stock_python())

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(builds) == 1 and len(set(found)) == 1 and len(found) == 4
    assert build_stock_environment(tmp_path, BASE) == found[0]  # reused: no new build
    assert len(builds) == 1


def test_an_interrupted_build_is_redone_and_a_failed_one_is_an_os_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = _fake_venv_builds(monkeypatch)
    python = build_stock_environment(tmp_path, BASE)
    (python.parents[1] / ".steplift-image-ready").unlink()  # as if the build had died
    assert build_stock_environment(tmp_path, BASE) == python
    assert len(builds) == 2

    def fail(command: list[str], **_: Any) -> None:
        raise subprocess.CalledProcessError(1, command, "", "ensurepip: no space left")

    monkeypatch.setattr(images_module.subprocess, "run", fail)
    with pytest.raises(OSError, match="no space left"):
        build_stock_environment(tmp_path / "other", BASE)


def test_a_container_starts_with_its_image_and_only_the_variables_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPLIFT_LAUNCHER_ONLY_MARKER", "1")
    registry = ImageRegistry(cache_dir=tmp_path / "cache")
    registry.register("framework:1", sys.prefix)
    sandbox = Sandbox(tmp_path / "containers", registry)
    container = sandbox.container("job-1/node-0", "framework:1", hostname="node-0")
    (container.workdir / "left-over").touch()
    again = sandbox.container("job-1/node-0", "framework:1")
    assert again.workdir == container.workdir and list(again.workdir.iterdir()) == []
    assert again.command(["python3", "-V"])[0] == str(Path(sys.prefix, "bin", "python3"))
    code = (
        "import json, os, sys; print(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd(),"
        " 'prefix': sys.prefix}))"
    )
    lines: list[str] = []
    process = again.process(["python", "-c", code], {"JOB": "yes"}, on_line=lines.append)
    assert process.start().wait(30) == 0
    seen = json.loads(lines[0])
    assert seen["cwd"] == str(again.workdir) and seen["prefix"] == sys.prefix
    env = dict(seen["env"])
    env.pop("LC_CTYPE", None)  # Python's C-locale coercion may add it
    assert env == {
        "PATH": f"{Path(sys.prefix, 'bin')}:{SYSTEM_PATH}",
        "HOME": str(again.home),
        "HOSTNAME": "node-0",
        "LANG": "C.UTF-8",
        "JOB": "yes",
    }


def _fake_venv_builds(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Make ``python -m venv TARGET`` only create TARGET/bin/python3; the calls made."""
    builds: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        builds.append(command)
        target = Path(command[-1])
        (target / "bin").mkdir(parents=True)
        (target / "bin" / "python3").write_text("")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(images_module.subprocess, "run", run)
    return builds
