"""Which files of a project may travel in its code package.

Some paths never do, whatever the ignore files say: version control, virtual environments,
caches, and anything that looks like a secret (``.env`` files, private keys, cloud
credentials). A ``.stepliftignore`` at the project root (gitignore syntax) drops more; outside
a git work tree the project's ``.gitignore`` files count too.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from pathlib import Path

IGNORE_FILE = ".stepliftignore"

ALWAYS_EXCLUDED_DIRS = frozenset(
    {".git", "__pycache__", ".steplift", ".nox", ".tox", ".azure", ".venv"}
)
"""Folder names never packaged, at any depth."""

ALWAYS_EXCLUDED_NAMES: tuple[str, ...] = (
    *("*.pyc", ".env", ".env.*"),
    *("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "*.pem", "*.key", "*.p12", "*.pfx"),
    "application_default_credentials.json",
)
"""File name patterns never packaged, in any folder."""

_EXCLUDED_NAME = re.compile("|".join(fnmatch.translate(name) for name in ALWAYS_EXCLUDED_NAMES))

ALWAYS_EXCLUDED_PATHS = (".aws/credentials", ".aws/config", ".config/gcloud/")
"""Path endings never packaged (a folder ending excludes everything under it)."""

VENV_MARKER = "pyvenv.cfg"


def always_excluded(relative: str) -> bool:
    """Whether the project path ``relative`` (posix, relative to the root) never travels."""
    parts = relative.split("/")
    if any(part in ALWAYS_EXCLUDED_DIRS for part in parts[:-1]):
        return True
    name = parts[-1]
    if name in ALWAYS_EXCLUDED_DIRS or _EXCLUDED_NAME.match(name):
        return True
    padded = "/" + relative
    for ending in ALWAYS_EXCLUDED_PATHS:
        if ending.endswith("/"):
            if f"/{ending}" in padded + "/":
                return True
        elif padded.endswith("/" + ending):
            return True
    return False


def venv_folders(root: Path, relatives: Iterable[str]) -> set[str]:
    """The folders (relative) among the files' ancestors that hold a virtual environment."""
    seen: set[str] = set()
    found: set[str] = set()
    for relative in relatives:
        parts = relative.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder in seen:
                continue
            seen.add(folder)
            if (root / folder / VENV_MARKER).is_file():
                found.add(folder)
    return found


def ignore_matcher(root: Path, *, gitignore: bool) -> Callable[[str], bool] | None:
    """A test for ``.stepliftignore`` (and, if asked, ``.gitignore``) patterns, or None."""
    lines: list[str] = []
    sources = [root / IGNORE_FILE]
    if gitignore:
        sources.insert(0, root / ".gitignore")
    for source in sources:
        if source.is_file():
            lines += source.read_text(encoding="utf-8", errors="replace").splitlines()
    if not any(line.strip() and not line.startswith("#") for line in lines):
        return None
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    return spec.match_file


def keep(root: Path, relatives: Iterable[str], *, gitignore: bool) -> list[str]:
    """The files among ``relatives`` that may travel, sorted."""
    candidates = [relative for relative in relatives if not always_excluded(relative)]
    venvs = venv_folders(root, candidates)
    ignored = ignore_matcher(root, gitignore=gitignore)
    kept = []
    for relative in candidates:
        if venvs and any(relative.startswith(folder + "/") for folder in venvs):
            continue
        if ignored is not None and ignored(relative):
            continue
        kept.append(relative)
    return sorted(kept)
