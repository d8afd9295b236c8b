"""Emulated container images: an image URI stands for a local Python environment.

A cloud runs a job in a container of the image its request names; an emulator runs it as
local processes with the Python of the environment that image's URI is registered to
(:meth:`ImageRegistry.register`). An image nobody registered is a *stock* image: Python with
the standard library and what ``python -m venv`` installs (pip; setuptools too on Python
before 3.12, as ``ensurepip`` bundles it), nothing else — no steplift, no pydantic, no numpy.

The stock environment is built once per machine and base interpreter, lazily (only when a job
runs on an unregistered image), into ``$STEPLIFT_CACHE/emulator-images/`` (default
``~/.cache/steplift``); building takes a few seconds, reusing it takes a stat. Concurrent
builders (threads, emulators in other processes) wait on one file lock and build it once.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from steplift.packaging.cache import CACHE_ENV, cache_root, file_lock

__all__ = ["CACHE_ENV", "Image", "ImageRegistry", "find_interpreter", "parse_image_option"]


_READY = ".steplift-image-ready"
"""Written last into a stock environment: without it, a build was interrupted."""

BUILD_TIMEOUT = 300.0
"""Seconds one ``python -m venv`` may take before the build counts as failed."""


@dataclass(frozen=True)
class Image:
    """One emulated image: the Python a container of it runs."""

    uri: str
    python: Path
    """The interpreter a leading ``python``/``python3`` of a job's command becomes."""
    stock: bool = False
    """True for the stock image (an unregistered URI)."""

    @property
    def bin_dir(self) -> Path:
        """The folder holding the interpreter: first on the container's PATH."""
        return self.python.parent


def find_interpreter(path: str | os.PathLike[str]) -> Path:
    """The interpreter ``path`` names: itself, or an environment folder's ``bin/python3``.

    Symlinks are kept as they are: a virtual environment's ``bin/python`` is a link to its
    base interpreter, and only the link makes Python read the environment's ``pyvenv.cfg``.
    ValueError when there is no such interpreter.
    """
    candidate = Path(path).expanduser().absolute()
    if candidate.is_dir():
        for name in ("python3", "python"):
            if (candidate / "bin" / name).is_file():
                return candidate / "bin" / name
        raise ValueError(
            f"{candidate} holds no bin/python3 or bin/python: not a Python environment"
        )
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    raise ValueError(f"{candidate} is neither a Python interpreter nor an environment folder")


def parse_image_option(option: str) -> tuple[str, str]:
    """``URI=PATH`` (the emulators' ``--image`` option) as (uri, path); ValueError otherwise."""
    uri, sep, path = option.partition("=")
    if not sep or not uri or not path:
        raise ValueError(f"--image takes URI=PATH (an interpreter or environment), not {option!r}")
    return uri, path


def add_image_option(parser: argparse.ArgumentParser) -> None:
    """The emulators' repeatable ``--image URI=PATH`` command-line option."""
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="URI=PATH",
        help="run jobs on image URI with the Python environment or interpreter at PATH "
        "(other images: the stock image, standard library and pip only)",
    )


def register_image_options(
    parser: argparse.ArgumentParser, registry: ImageRegistry, options: list[str]
) -> None:
    """Register every ``--image`` the command line gave; a malformed one is the parser's
    usage error (exit 2)."""
    try:
        for option in options:
            registry.register(*parse_image_option(option))
    except ValueError as error:
        parser.error(str(error))


def default_cache_dir() -> Path:
    """``$STEPLIFT_CACHE/emulator-images`` (``~/.cache/steplift/emulator-images`` unset)."""
    return cache_root() / "emulator-images"


class ImageRegistry:
    """Image URIs → local Python environments; any other URI is the stock image.

    ``cache_dir`` is where the stock environment is built (default :func:`default_cache_dir`);
    ``base_python`` the interpreter it is made from (default: this one's base interpreter,
    never a virtual environment's, so the stock image holds nothing installed here).
    """

    def __init__(self, *, cache_dir: Path | None = None, base_python: Path | None = None) -> None:
        self._images: dict[str, Image] = {}
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()  # a build must not hold up registered images
        self._cache_dir = cache_dir
        self._base_python = base_python or Path(getattr(sys, "_base_executable", sys.executable))
        self._stock_python: Path | None = None

    def register(self, uri: str, python: str | os.PathLike[str]) -> Image:
        """Make ``uri`` run with ``python`` (an interpreter, or an environment folder)."""
        if not uri:
            raise ValueError("an image URI must not be empty")
        image = Image(uri, find_interpreter(python))
        with self._lock:
            self._images[uri] = image
        return image

    def unregister(self, uri: str) -> None:
        """Make ``uri`` a stock image again (nothing happens for an unregistered one)."""
        with self._lock:
            self._images.pop(uri, None)

    def registered(self) -> dict[str, Image]:
        """The registered images by URI."""
        with self._lock:
            return dict(self._images)

    def __contains__(self, uri: object) -> bool:
        with self._lock:
            return uri in self._images

    def resolve(self, uri: str) -> Image:
        """The image ``uri`` stands for: its registration, else the stock image (built on
        first use, which may take a few seconds; OSError if it cannot be built)."""
        with self._lock:
            image = self._images.get(uri)
        if image is not None:
            return image
        return Image(uri, self.stock_python(), stock=True)

    def stock_python(self) -> Path:
        """The stock environment's interpreter, building the environment if needed (OSError
        when that fails)."""
        with self._build_lock:
            if self._stock_python is None:
                cache = self._cache_dir or default_cache_dir()
                self._stock_python = build_stock_environment(cache, self._base_python)
            return self._stock_python


def stock_key(base_python: Path) -> str:
    """The stock environment's folder name: the base interpreter's version, and a digest of
    its real location (two installs of one version never share an environment)."""
    digest = hashlib.sha256(str(base_python.resolve()).encode()).hexdigest()[:12]
    return f"stock-python{_version_of(base_python)}-{digest}"


def _version_of(base_python: Path) -> str:
    """``base_python``'s version (``3.11.7``): this interpreter's when it is our own base,
    else asked of it."""
    if base_python.absolute() == Path(getattr(sys, "_base_executable", sys.executable)).absolute():
        return ".".join(map(str, sys.version_info[:3]))
    probe = subprocess.run(
        [str(base_python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=_build_env(),
    )
    return probe.stdout.strip()


def build_stock_environment(cache_dir: Path, base_python: Path) -> Path:
    """Build (once) the stock environment of ``base_python`` under ``cache_dir``; its python.

    A ready environment is reused without a lock. Otherwise the builder holds an exclusive
    lock on ``<key>.lock`` (other threads and processes wait), removes what an interrupted
    build left and runs ``python -m venv`` with a clean environment, so nothing of the
    caller's (PYTHONPATH, pip configuration) reaches it.
    """
    base_python = base_python.absolute()
    try:
        key = stock_key(base_python)
    except subprocess.SubprocessError as error:
        raise OSError(f"{base_python} did not say its version: {error}") from error
    target = cache_dir / key
    python = target / "bin" / "python3"
    if (target / _READY).is_file():
        return python
    cache_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir / f"{key}.lock"):
        if (target / _READY).is_file():
            return python  # another builder finished while we waited
        shutil.rmtree(target, ignore_errors=True)
        try:
            subprocess.run(
                [str(base_python), "-m", "venv", str(target)],
                check=True,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                env=_build_env(),
            )
        except subprocess.CalledProcessError as error:
            detail = (error.stderr or error.stdout or "").strip()[-2000:]
            raise OSError(f"building the stock image failed: {detail}") from error
        except subprocess.TimeoutExpired as error:
            raise OSError(
                f"building the stock image's environment took over {error.timeout} s"
            ) from error
        (target / _READY).write_text(f"built from {base_python}\n")
    return python


def _build_env() -> dict[str, str]:
    """The caller's environment without what would change what a venv build installs."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV", "CONDA"))
    }
