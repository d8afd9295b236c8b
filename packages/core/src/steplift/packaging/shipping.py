"""Deciding what code a step ships, and storing its package once.

``code = "auto"`` ships the step's project (see :mod:`.discovery`) when the step's code is
not part of an installed distribution; ``code = "<path>"`` ships that folder; ``code = false``
ships nothing (the image must hold the step's code). The package goes to
``<artifact root>/code/<sha256>.tar.gz`` unless it is already there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from steplift.errors import ConfigError
from steplift.packaging.archive import DEFAULT_LIMIT_MB, CodePackage, pack
from steplift.packaging.discovery import Project, discover
from steplift.store import ArtifactStore, join_uri

CodeSetting = bool | str


@dataclass(frozen=True)
class CodePlan:
    """A packed project and where, inside it, the job imports from and runs."""

    project: Project
    package: CodePackage
    import_path: str
    """Folder (posix, relative to the package root) put first on the job's ``sys.path``."""
    workdir: str
    """Folder (posix, relative to the package root) the job runs in."""


def _inside(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` (posix, ``.`` for the root itself), or None if outside."""
    try:
        relative = path.resolve().relative_to(root)
    except ValueError:
        return None
    return relative.as_posix() or "."


def check_code_setting(setting: CodeSetting) -> CodeSetting:
    """ConfigError unless ``setting`` is ``"auto"``, a boolean or an existing folder."""
    if isinstance(setting, bool) or setting == "auto":
        return setting
    if not isinstance(setting, str) or not setting:
        raise ConfigError(
            'must be "auto", false or the path of a folder',
            field="code",
            value=setting,
            has_value=True,
        )
    if not Path(setting).expanduser().is_dir():
        raise ConfigError(
            "names no folder: the code package is made of a folder of this machine",
            field="code",
            value=setting,
            has_value=True,
        )
    return setting


def plan_code(
    setting: CodeSetting,
    *,
    source_root: str | None,
    cwd: Path | None = None,
    limit_mb: float = DEFAULT_LIMIT_MB,
) -> CodePlan | None:
    """The code a step ships, packed; None when it ships none.

    ``source_root`` is the folder the step's code imports from (None: its code comes with the
    image, e.g. an installed package). The job runs in the launcher's working directory's
    place in the package, or else in ``source_root``'s.
    """
    setting = check_code_setting(setting)
    if setting is False or (setting in (True, "auto") and source_root is None):
        return None
    cwd = (cwd or Path(os.getcwd())).resolve()
    if setting in (True, "auto"):
        project = discover(Path(source_root or cwd))
    else:
        project = discover(Path(str(setting)).expanduser(), whole_work_tree=False)
    if not project.files:
        return None
    import_path = _inside(Path(source_root), project.root) if source_root else None
    import_path = import_path or "."
    workdir = _inside(cwd, project.root) or import_path
    return CodePlan(project, pack(project, limit_mb=limit_mb), import_path, workdir)


def code_uri(artifact_root: str, sha256: str) -> str:
    """Where the package with digest ``sha256`` is stored."""
    return join_uri(artifact_root, "code", f"{sha256}.tar.gz")


def store_package(store: ArtifactStore, artifact_root: str, package: CodePackage) -> str:
    """Store the package unless a package with its digest already is; return its URI."""
    uri = code_uri(artifact_root, package.sha256)
    if not store.exists(uri):
        store.put(uri, package.data)
    return uri
