"""The job side of the code package (runs on the job's Python, 3.10 to 3.13).

Fetch the package, verify its SHA-256 (IntegrityError otherwise, before anything is
unpacked), unpack it into ``<cache>/code/<sha256>/`` unless that folder exists, and put it to
use: its import folder first on ``sys.path`` and its working folder as the current directory.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path, PurePosixPath

from steplift.packaging.cache import cached_folder
from steplift.payloads import read_verified
from steplift.store import ArtifactStore


class UnsafeArchive(Exception):
    """A code package holds a member that would land outside its folder, or is not a file."""


def _extract(data: bytes, target: Path) -> None:
    """Unpack regular files and folders only, each strictly inside ``target``."""
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive:
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts or not name.parts:
                raise UnsafeArchive(f"member {member.name!r} would land outside the package")
            path = target.joinpath(*name.parts)
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise UnsafeArchive(f"member {member.name!r} is not a regular file")
            path.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None  # a regular file always has content
            with open(path, "wb") as handle:
                handle.write(source.read())
            os.chmod(path, 0o755 if member.mode & 0o100 else 0o644)


def unpack_code(store: ArtifactStore, uri: str, sha256: str) -> Path:
    """The folder holding the verified, unpacked package (made once per digest)."""

    def make(folder: Path) -> None:
        _extract(read_verified(store, uri, sha256), folder)

    folder, _ = cached_folder("code", sha256, make)
    return folder


def use_code(folder: Path, import_path: str, workdir: str) -> Path:
    """Put the package's import folder first on ``sys.path`` and run from its workdir.

    Returns the import folder (a command's ``PYTHONPATH`` starts with it).
    """
    importable = folder.joinpath(*PurePosixPath(import_path).parts)
    sys.path.insert(0, str(importable))
    os.chdir(folder.joinpath(*PurePosixPath(workdir).parts))
    return importable
