"""Finding a step's project and listing its files.

In a git work tree the project is the whole work tree, and its files are the tracked ones plus
the untracked ones git does not ignore (``git ls-files -co --exclude-standard``). Elsewhere it
is the folder given (the one holding the step's top-level package or script, or the working
directory for a command), walked on disk.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from steplift.packaging.filters import ALWAYS_EXCLUDED_DIRS, VENV_MARKER, keep


@dataclass(frozen=True)
class Project:
    """A project's root folder and the files (posix, relative to it) that may travel."""

    root: Path
    files: tuple[str, ...]
    in_git: bool


def git_root(folder: Path) -> Path | None:
    """The top of the git work tree holding ``folder``, or None (also when git is missing)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    if done.returncode != 0 or not done.stdout.strip():
        return None
    return Path(done.stdout.strip()).resolve()


def git_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files under ``root``, relative to it."""
    done = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
    )
    names = done.stdout.decode("utf-8", errors="surrogateescape").split("\0")
    return sorted({name for name in names if name})


def walk_files(root: Path) -> list[str]:
    """Every file under ``root``, relative to it, not descending into excluded folders."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        # Pruned here so a walk never enters .git/, a cache or a virtual environment.
        dirs[:] = sorted(
            name
            for name in dirs
            if name not in ALWAYS_EXCLUDED_DIRS
            and not os.path.isfile(os.path.join(folder, name, VENV_MARKER))
        )
        base = os.path.relpath(folder, root)
        prefix = "" if base == "." else base.replace(os.sep, "/") + "/"
        found += [prefix + name for name in files]
    return sorted(found)


def discover(anchor: Path, *, whole_work_tree: bool = True) -> Project:
    """The project around ``anchor``: its git work tree (if ``whole_work_tree``), else itself.

    With ``whole_work_tree=False`` only the files under ``anchor`` are listed, still with git's
    view of them when ``anchor`` is in a work tree.
    """
    anchor = anchor.resolve()
    top = git_root(anchor)
    if top is not None:
        root = top if whole_work_tree else anchor
        files = git_files(root)
        return Project(root, tuple(keep(root, files, gitignore=False)), in_git=True)
    return Project(anchor, tuple(keep(anchor, walk_files(anchor), gitignore=True)), in_git=False)
