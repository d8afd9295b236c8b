"""The job's cache folder (runs on the job's Python, 3.10 to 3.13).

``$STEPLIFT_CACHE`` (default ``~/.cache/steplift``) holds::

    code/<sha256>/            an unpacked code package
    requirements/<sha256>/    requirements installed by pip (``--target``)
    locks/                    one lock file per entry being made

An entry is made in a temporary folder beside it and renamed into place, so an entry that
exists is complete; a lock keeps several processes of one machine from making it twice.
Where a cloud keeps a folder between jobs (a warm pool), pointing ``STEPLIFT_CACHE`` there
makes a second start download nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

CACHE_ENV = "STEPLIFT_CACHE"


def cache_root() -> Path:
    """The cache folder of this machine (``$STEPLIFT_CACHE``, else ``~/.cache/steplift``)."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "steplift"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (made if missing) while in the block.

    ``flock`` locks an open file description, so threads of one process exclude each other
    as well as processes of one machine."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_folder(kind: str, key: str, make: Callable[[Path], None]) -> tuple[Path, bool]:
    """The folder ``<cache>/<kind>/<key>``, made by ``make(temporary folder)`` if missing.

    Returns the folder and whether it was already there.
    """
    root = cache_root()
    final = root / kind / key
    if final.is_dir():
        return final, True
    with file_lock(root / "locks" / f"{kind}-{key}.lock"):
        if final.is_dir():
            return final, True
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key}."))
        try:
            make(staging)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return final, False
