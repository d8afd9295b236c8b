"""Virtual environments for peers too heavy for the product's venv (the SageMaker SDK is ~1 GB).

They live under ``benchmarks/.venvs/`` (ignored by git), are built once and then reused.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .benchlib import BENCH_DIR, progress

VENVS = BENCH_DIR / ".venvs"
PEER_REQUIREMENTS = {"sagemaker": ["sagemaker>=3,<4"]}
PROBES = {"sagemaker": "import sagemaker.train, sagemaker.core.remote_function"}


def peer_python(name: str, *, install: bool, timeout: float = 1800) -> str | None:
    """The interpreter of peer venv ``name``; built first when missing and ``install`` is set.

    Returns None (and says why) when the venv is missing or its install failed: the peer's
    figures are then left out and the report says so.
    """
    folder = VENVS / name
    python = folder / "bin" / "python"
    if _works(python, name):
        return str(python)
    if not install:
        progress(f"peer venv {name}: not built (run without --quick to build it)")
        return None
    VENVS.mkdir(exist_ok=True)
    # Ignored by git (and so by ruff) without touching the repository's own .gitignore.
    (VENVS / ".gitignore").write_text("*\n")
    progress(f"peer venv {name}: installing {PEER_REQUIREMENTS[name]} (once; can take minutes)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=120)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS[name]],
            check=True,
            timeout=timeout,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        progress(f"peer venv {name}: install failed ({error}); measuring without it")
        return None
    return str(python) if _works(python, name) else None


def _works(python: Path, name: str) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", PROBES[name]],
        capture_output=True,
        timeout=120,
        check=False,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    return probe.returncode == 0
