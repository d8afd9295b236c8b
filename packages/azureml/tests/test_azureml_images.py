"""Emulated images: a job runs as a container of its environment's image would, seeing
nothing of the launcher (its variables, interpreter, working directory)."""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from azureml_helpers import STOCK_IMAGE, make_operator

from steplift.models import StepRunInfo
from steplift.polling import PollPolicy
from steplift.testing.emulation import wait_until
from steplift_azureml.emulator import AzureMLEmulator
from steplift_azureml.emulator.cli import main
from steplift_azureml.operator import AzureMLStepOperator

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

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
FAST_POLICY = replace(
    AzureMLStepOperator.launch_policy, poll=PollPolicy(initial=0.05, factor=1.5, maximum=0.2)
)
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def shared(execute_emulator: AzureMLEmulator) -> AzureMLStepOperator:
    operator = make_operator(execute_emulator)
    operator.share_clients()
    return operator


def _run(
    emulator: AzureMLEmulator, shared: AzureMLStepOperator, code: str, **fields: Any
) -> tuple[str, list[str]]:
    operator = make_operator(emulator, shared, name="azure", policy=FAST_POLICY, **fields)
    info = StepRunInfo(
        pipeline="images",
        run=f"images-{int(time.time())}-{next(_numbers)}",
        step="probe",
        artifact_uri="azureblob://devstoreaccount1/steplift-tests/images",
    )
    handle = operator.submit(info, ["python", "-c", code], {})
    assert wait_until(lambda: operator.get_status(handle).state.is_terminal, timeout=60)
    job = emulator.jobs[handle.job_id]
    logs = b"".join(job.log_bytes(name) or b"" for name in sorted(job.logs))
    return job.status, logs.decode().splitlines()


def test_a_job_sees_only_its_container(
    execute_emulator: AzureMLEmulator,
    shared: AzureMLStepOperator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(MARKER, "the launcher's")
    seen = []
    for _ in range(2):
        status, lines = _run(execute_emulator, shared, PROBE)
        assert status == "Completed", lines
        seen.append(json.loads(lines[0]))
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
    execute_emulator: AzureMLEmulator, shared: AzureMLStepOperator
) -> None:
    status, lines = _run(execute_emulator, shared, PROBE + "import steplift\n", image=STOCK_IMAGE)
    assert status == "Failed"
    report = json.loads(lines[0])
    assert report["prefix"] != sys.prefix and "stock-python" in report["prefix"]
    assert "ModuleNotFoundError: No module named 'steplift'" in lines


def test_the_cli_takes_images_as_uri_equals_path() -> None:
    with pytest.raises(SystemExit) as leaving:
        main(["--no-azurite", "--image", "python:3.11"])
    assert leaving.value.code == 2
