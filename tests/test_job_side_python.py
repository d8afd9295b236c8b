"""The job side runs on the image's Python, 3.10 to 3.13 (stock PyTorch images ship 3.10-3.12),
though only 3.11 is installable here: vermin checks every steplift module a job loads."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

JOB_SIDE = """
import sys
import steplift.entrypoint, steplift.cluster, steplift.secrets
import steplift.packaging.cache, steplift.packaging.unpack, steplift.packaging.install
from steplift.cluster import read_cluster
read_cluster({})  # loads every registered cluster reader
for name, module in sorted(sys.modules.items()):
    if name.startswith("steplift") and getattr(module, "__file__", None):
        print(module.__file__)
"""


def _job_side_files() -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", JOB_SIDE], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.split()


def test_the_job_side_loads_the_entrypoint_the_code_package_and_the_cluster_readers() -> None:
    files = {Path(file).name for file in _job_side_files()}
    assert {"entrypoint.py", "unpack.py", "install.py", "cluster.py"} <= files


def test_every_module_a_job_loads_runs_on_python_3_10() -> None:
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent))
    if vermin is None:
        pytest.fail("vermin is part of the dev extra; install it to check the job side")
    done = subprocess.run(
        [vermin, "-q", "--no-tips", "-t=3.10-", "--violations", *_job_side_files()],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
