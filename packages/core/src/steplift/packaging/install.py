"""The job side of ``requirements`` (runs on the job's Python, 3.10 to 3.13).

pip installs the requirements into ``<cache>/requirements/<sha256>/`` (``--target``) before
the step is imported; that folder goes first on ``sys.path``. pip's output goes to the job's
log. A folder already there is reused, so a warm start downloads nothing. When pip fails,
:class:`RequirementsFailed` carries its last error lines: the step fails as an image problem,
not as user code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from steplift.packaging.cache import cached_folder

SHOWN_LINES = 12


class RequirementsFailed(Exception):
    """pip could not install the step's requirements."""


def _run_pip(text: str, target: Path) -> None:
    listing = target.parent / f"{target.name}.txt"
    listing.write_text(text, encoding="utf-8")
    command = [sys.executable, "-m", "pip", "install", "--target", str(target)]
    command += ["--no-input", "--disable-pip-version-check", "-r", str(listing)]
    print(f"steplift: installing requirements: {' '.join(text.split())}", flush=True)
    tail: list[str] = []
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as error:
        raise RequirementsFailed(f"could not start pip: {error}") from None
    assert process.stdout is not None
    with process.stdout:
        for line in process.stdout:
            print(line, end="", flush=True)  # into the job's log
            tail = [*tail[-(SHOWN_LINES * 4) :], line.rstrip()]
    code = process.wait()
    listing.unlink()
    if code != 0:
        errors = [line for line in tail if line.startswith("ERROR")] or tail
        raise RequirementsFailed(
            f"pip exited with code {code}: " + " | ".join(errors[-SHOWN_LINES:])
        )


def install_requirements(text: str, sha256: str) -> Path:
    """The folder holding the installed requirements, put first on ``sys.path``."""
    folder, reused = cached_folder("requirements", sha256, lambda target: _run_pip(text, target))
    if reused:
        print(f"steplift: requirements already installed in {folder}", flush=True)
    sys.path.insert(0, str(folder))
    return folder
