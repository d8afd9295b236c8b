"""The code package: a deterministic tar.gz of a project's files, named by its SHA-256.

The same files with the same contents give the same bytes, whoever packs them and when:
members are sorted, every time is 0, owners are 0 with no names, modes are 0644 (0755 for
executables), and the gzip header carries no time or name. So the digest names the content
and a relaunch with unchanged code finds its package already stored.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from steplift.errors import ConfigError
from steplift.packaging.discovery import Project

DEFAULT_LIMIT_MB = 100.0
LARGEST_SHOWN = 10
COMPRESSION = 1
"""gzip level: source code compresses well at 1 already (about 15% larger than at 6, measured
on 5,000 Python files), three times faster."""


@dataclass(frozen=True)
class CodePackage:
    """A packed project: the archive's bytes, its digest and how many files it holds."""

    data: bytes
    sha256: str
    files: int
    size: int
    """Bytes of the files before compression."""


def _size_text(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _member_files(project: Project) -> list[tuple[str, Path, os.stat_result]]:
    """The regular files to pack, with their stat; symlinks only when they stay inside."""
    members = []
    for relative in project.files:
        path = project.root / relative
        try:
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                target = path.resolve()
                if not target.is_relative_to(project.root):
                    continue  # a link out of the project could reach anything (~/.aws, ...)
                info = target.stat()
        except OSError:
            continue  # tracked but deleted, or a broken link: nothing to ship
        if stat.S_ISREG(info.st_mode):
            members.append((relative, path, info))
    return members


def check_size(
    project: Project, members: list[tuple[str, Path, os.stat_result]], limit_mb: float
) -> int:
    """The files' total size; ConfigError naming the largest files if it is over the limit."""
    total = sum(info.st_size for _, _, info in members)
    if total <= limit_mb * 1_000_000:
        return total
    largest = sorted(members, key=lambda member: (-member[2].st_size, member[0]))[:LARGEST_SHOWN]
    listing = "; ".join(f"{name} ({_size_text(info.st_size)})" for name, _, info in largest)
    raise ConfigError(
        f"the code package of {project.root} would hold {_size_text(total)} in "
        f"{len(members)} files, over the {_size_text(limit_mb * 1_000_000)} limit. Largest: "
        f"{listing}. Leave files out with a .stepliftignore, raise max_code_size_mb, or set "
        "code = false",
        field="code",
    )


_recent: dict[tuple[object, ...], CodePackage] = {}
_RECENT_KEPT = 8


def pack(project: Project, *, limit_mb: float = DEFAULT_LIMIT_MB) -> CodePackage:
    """Pack the project's files; ConfigError (before reading any) when they are too big.

    A process that launches many steps packs an unchanged project once: the last packages
    are kept, keyed by every file's name, size, modification time and mode.
    """
    members = _member_files(project)
    total = check_size(project, members, limit_mb)
    key = (project.root, *((name, s.st_size, s.st_mtime_ns, s.st_mode) for name, _, s in members))
    if key in _recent:
        return _recent[key]
    package = _pack(members, total)
    if len(_recent) >= _RECENT_KEPT:
        _recent.pop(next(iter(_recent)))
    _recent[key] = package
    return package


def _header(name: str, size: int, mode: int) -> bytes:
    """The tar header of a regular file with time 0 and owner 0 (no names)."""
    import tarfile

    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) > 100 or size >= 8**11:  # past ustar's fields: tarfile's GNU extensions
        entry = tarfile.TarInfo(name)
        entry.size, entry.mode, entry.mtime = size, mode, 0
        entry.uid = entry.gid = 0
        entry.uname = entry.gname = ""
        return entry.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    # Built by hand: tarfile's TarInfo.tobuf costs more than reading and compressing the file.
    header = b"".join(
        (
            encoded.ljust(100, b"\0"),
            b"%07o\0" % mode,
            b"0000000\0" * 2,  # uid, gid
            b"%011o\0" % size,
            b"00000000000\0",  # mtime
            b" " * 8,  # the checksum counts itself as spaces
            tarfile.REGTYPE,
            b"\0" * 100,  # link name
            b"ustar\x0000",
            b"\0" * 64,  # owner names
            b"0000000\0" * 2,  # device numbers
        )
    ).ljust(tarfile.BLOCKSIZE, b"\0")
    return header[:148] + b"%06o\0 " % sum(header) + header[156:]


def _pack(members: list[tuple[str, Path, os.stat_result]], total: int) -> CodePackage:
    # The tar stream is written block by block and compressed once: tarfile's own writer
    # through a GzipFile costs several times more for thousands of small files.
    import tarfile

    chunks: list[bytes] = []
    for relative, path, info in members:
        with open(path, "rb") as handle:
            data = handle.read()  # its size may have changed since the listing: this counts
        mode = 0o755 if info.st_mode & stat.S_IXUSR else 0o644
        chunks.append(_header(relative, len(data), mode))
        chunks.append(data)
        chunks.append(b"\0" * (-len(data) % tarfile.BLOCKSIZE))
    chunks.append(b"\0" * (2 * tarfile.BLOCKSIZE))  # end of archive
    stream = b"".join(chunks)
    stream += b"\0" * (-len(stream) % tarfile.RECORDSIZE)
    data = gzip.compress(stream, compresslevel=COMPRESSION, mtime=0)
    return CodePackage(data, hashlib.sha256(data).hexdigest(), len(members), total)
