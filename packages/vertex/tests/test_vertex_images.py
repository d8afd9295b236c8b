"""Emulated images: a replica runs as a container of its pool's imageUri would, seeing
nothing of the launcher (its variables, interpreter, working directory)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from vertex_support import PARENT, STOCK_IMAGE, job_body, job_client

from steplift.testing.emulation import wait_until
from steplift_vertex.emulator import VertexEmulator
from steplift_vertex.emulator.cli import main

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
TERMINAL = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED")


def _run(emulator: VertexEmulator, code: str, image: str | None = None) -> tuple[Any, list[str]]:
    body = job_body(["python", "-c", code])
    if image is not None:
        body["job_spec"]["worker_pool_specs"][0]["container_spec"]["image_uri"] = image
    number = job_client(emulator).create_custom_job(parent=PARENT, custom_job=body).name
    number = number.rsplit("/", 1)[-1]
    job = emulator.jobs.get_job(number)
    assert wait_until(lambda: job.state in TERMINAL and not emulator.is_running(number), 60)
    answer = emulator.logbook.list(
        {
            "resourceNames": [f"projects/{emulator.project}"],
            "filter": f'resource.labels.job_id="{number}"',
            "pageSize": 1000,
        }
    )
    return job, [entry["textPayload"] for entry in answer.get("entries", [])]


def test_a_job_sees_only_its_container(
    emulator: VertexEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MARKER, "the launcher's")
    seen = []
    for _ in range(2):
        job, lines = _run(emulator, PROBE)
        assert job.state == "JOB_STATE_SUCCEEDED", lines
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


def test_a_job_on_the_stock_image_has_no_steplift(emulator: VertexEmulator) -> None:
    job, lines = _run(emulator, PROBE + "import steplift\n", image=STOCK_IMAGE)
    assert job.state == "JOB_STATE_FAILED"
    report = json.loads(lines[0])
    assert report["prefix"] != sys.prefix and "stock-python" in report["prefix"]
    assert "ModuleNotFoundError: No module named 'steplift'" in lines


def test_the_cli_takes_images_as_uri_equals_path() -> None:
    with pytest.raises(SystemExit) as leaving:
        main(["--image", "us-docker.pkg.dev/p/r/i:1"])
    assert leaving.value.code == 2
