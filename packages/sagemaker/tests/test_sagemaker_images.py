"""Emulated images: a job runs as a container of its TrainingImage would, seeing nothing of
the launcher (its variables, interpreter, working directory)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sagemaker_helpers import STOCK_IMAGE, EmulatorClients, training_job_request

from steplift_sagemaker.emulator.cli import main

BUCKET = "steplift-emulator-tests"  # created by the `execute` fixture's emulator
MARKER = "STEPLIFT_LAUNCHER_ONLY_MARKER"
PROBE = f"""
import json, os, sys
print(json.dumps({{
    "marker": os.environ.get({MARKER!r}),
    "leaked": sorted(k for k in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_CURRENT_TEST")
                     if k in os.environ),
    "cwd": os.getcwd(), "cwd_entries": os.listdir("."),
    "home": os.environ["HOME"], "home_entries": os.listdir(os.environ["HOME"]),
    "prefix": sys.prefix, "path": os.environ["PATH"].split(os.pathsep),
}}), flush=True)
"""


def _run(execute: EmulatorClients, name: str, command: list[str], image: str | None = None) -> Any:
    request = training_job_request(name, command, bucket=BUCKET)
    if image is not None:
        request["AlgorithmSpecification"]["TrainingImage"] = image
    execute.sagemaker.create_training_job(**request)
    return execute.wait_for(name, timeout=60)


def test_a_job_sees_only_its_container(
    execute: EmulatorClients,
    script: Callable[[str], list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(MARKER, "the launcher's")
    seen = []
    for name in ("isolated-a", "isolated-b"):
        done = _run(execute, name, script(PROBE))
        assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
        [line] = execute.log_lines(name)
        seen.append(json.loads(line))
    for report in seen:
        assert report["marker"] is None
        assert report["leaked"] == []
        assert report["cwd_entries"] == [] and report["home_entries"] == []
        assert report["home"] != os.environ.get("HOME")
        assert Path(report["cwd"]) != Path.cwd()
        # The framework image the tests register: the suite's own environment, first on PATH.
        assert report["prefix"] == sys.prefix
        assert report["path"][0] == str(Path(sys.prefix, "bin"))
    assert seen[0]["cwd"] != seen[1]["cwd"]  # a fresh folder for every job


def test_a_job_on_the_stock_image_has_no_steplift(
    execute: EmulatorClients, script: Callable[[str], list[str]]
) -> None:
    name = "stock-image"
    done = _run(execute, name, script(PROBE + "import steplift\n"), image=STOCK_IMAGE)
    assert done["TrainingJobStatus"] == "Failed"
    assert done["FailureReason"].startswith("AlgorithmError")
    lines = execute.log_lines(name)
    report = json.loads(lines[0])
    assert report["prefix"] != sys.prefix and "stock-python" in report["prefix"]
    assert "ModuleNotFoundError: No module named 'steplift'" in lines


def test_the_cli_takes_images_as_uri_equals_path() -> None:
    with pytest.raises(SystemExit) as leaving:
        main(["--image", STOCK_IMAGE])
    assert leaving.value.code == 2
