"""The short chaos run CI makes: a few steps per flavor under throttling, 5xx, launcher
SIGKILLs and SIGINTs and spot preemptions (``nox -s chaos`` runs 200 per flavor)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_short_chaos_run_loses_nothing_duplicates_nothing_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "steplift.emulation.chaos", "--steps", "4", "--seed", "7"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    table = done.stdout
    assert done.returncode == 0, table + done.stderr[-3000:]
    assert "every step accounted for, nothing lost, nothing left running" in table
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line[:1].isalpha()}
    for flavor in ("local", "sagemaker", "vertex", "azureml"):
        assert flavor in rows, table
        assert rows[flavor][1] == "4", table  # every step accounted for
