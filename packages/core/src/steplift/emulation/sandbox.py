"""Starting an emulated job's processes the way a container of its image would start them.

A cloud runs each node of a job in a fresh container of the job's image: an empty working
directory, the image's Python and the variables the cloud sets, nothing of the machine that
launched it. An emulator runs the node as a local process, so it has to build that
isolation itself: :class:`Sandbox` gives every node a :class:`Container` with

- a fresh, empty working directory and a fresh HOME (folders under the sandbox's root),
- the image's Python (:mod:`~steplift.emulation.images`): a leading ``python``/``python3``
  becomes its interpreter, and its ``bin`` folder comes first on a minimal system PATH,
- exactly the variables the emulator gives: the cloud's container variables, the job
  definition's, and what the job needs to reach the emulated cloud's storage (on the cloud
  its role or metadata server gives it that). Never the emulator's or launcher's own
  environment: no PYTHONPATH, no VIRTUAL_ENV, no PATH entries of theirs.

Files: the emulators today point container paths (SageMaker's ``/opt/ml``, Vertex's
``/gcs``) at host folders by rewriting them in the command and variables; ``mounts`` says
which host folder stands for which container path. A :class:`ContainerRuntime` decides how a
container's process is started (:meth:`ContainerRuntime.prepare` turns the container's view
of it into the host's): :class:`HostRuntime` (the only one yet) starts it as is; one starting
each container in its own mount namespace (bubblewrap, ``unshare``) would wrap the command,
bind ``mounts``, the image, the working directory and HOME at their container paths and
point the variables there.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from steplift.emulation.images import Image, ImageRegistry
from steplift.emulation.processes import JobProcess, resolve_command

__all__ = ["SYSTEM_PATH", "Container", "ContainerRuntime", "HostRuntime", "Launch", "Sandbox"]

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The PATH a container starts from (Docker's default), after its image's ``bin`` folder."""

IMAGE_VARIABLES = {"LANG": "C.UTF-8"}
"""What the official Python images set besides PATH; the emulated images set it too."""


@dataclass(frozen=True)
class Launch:
    """How the host starts a container's main process: its argv, environment and cwd."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


class ContainerRuntime(Protocol):
    """How a container's process is started on this machine."""

    def prepare(self, container: Container, launch: Launch) -> Launch:
        """The host's :class:`Launch` of ``launch`` (the container's view: its command with
        the image's python, its environment, its working directory) in ``container``."""
        ...


class HostRuntime:
    """Runs a container's command as a plain process of this machine, in its working
    directory (no namespace: paths inside the container are the host's)."""

    def prepare(self, container: Container, launch: Launch) -> Launch:
        """``launch`` itself."""
        return launch


@dataclass(frozen=True)
class Container:
    """One node of one job, as a container of its image."""

    name: str
    image: Image
    workdir: Path
    """Its working directory: fresh and empty when the container is made."""
    home: Path
    """Its HOME: fresh and empty too."""
    hostname: str
    mounts: Mapping[str, Path] = field(default_factory=dict)
    """Container path → the host folder standing for it."""
    runtime: ContainerRuntime = field(default_factory=HostRuntime)

    def command(self, command: Sequence[str]) -> list[str]:
        """``command`` with a leading ``python``/``python3`` as the image's interpreter."""
        return resolve_command(command, self.image.python)

    def environment(self, variables: Mapping[str, str]) -> dict[str, str]:
        """The container's environment: its image's (PATH, HOME, HOSTNAME, LANG) and then
        ``variables`` (the cloud's and the job definition's, which may override them)."""
        env = {
            "PATH": f"{self.image.bin_dir}{os.pathsep}{SYSTEM_PATH}",
            "HOME": str(self.home),
            "HOSTNAME": self.hostname,
            **IMAGE_VARIABLES,
        }
        env.update(variables)
        return env

    def process(
        self,
        command: Sequence[str],
        variables: Mapping[str, str],
        *,
        on_line: Callable[[str], None] | None = None,
        max_runtime: float | None = None,
        grace: float = 5.0,
        on_exit: Callable[[JobProcess], None] | None = None,
    ) -> JobProcess:
        """The container's main process (not started): ``command`` in the working
        directory with :meth:`environment` of ``variables``."""
        launch = self.runtime.prepare(
            self, Launch(self.command(command), self.environment(variables), self.workdir)
        )
        return JobProcess(
            launch.argv,
            env=launch.env,
            cwd=launch.cwd,
            on_line=on_line,
            max_runtime=max_runtime,
            grace=grace,
            on_exit=on_exit,
            python=self.image.python,
        )


class Sandbox:
    """Where one emulator's containers live: a folder per container under ``root``.

    ``root`` is a folder or a callable giving it (an emulator that makes its working folder
    on start passes a callable); ``images`` resolves image URIs.
    """

    def __init__(
        self,
        root: Path | Callable[[], Path],
        images: ImageRegistry,
        *,
        runtime: ContainerRuntime | None = None,
    ) -> None:
        self._root = root
        self.images = images
        self.runtime: ContainerRuntime = runtime or HostRuntime()
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        """The folder holding every container's folders."""
        return self._root() if callable(self._root) else self._root

    def container(
        self,
        name: str,
        image_uri: str,
        *,
        hostname: str | None = None,
        mounts: Mapping[str, Path] | None = None,
    ) -> Container:
        """A new container ``name`` (unique per node and attempt, e.g. ``job/algo-1/1``) of
        image ``image_uri``: its folders made fresh (any left from before are removed).

        Resolving an unregistered image may build the stock environment first (once per
        machine, a few seconds).
        """
        image = self.images.resolve(image_uri)
        folder = self.root.joinpath(*(_safe(part) for part in name.split("/") if part))
        with self._lock:
            shutil.rmtree(folder, ignore_errors=True)
            workdir, home = folder / "work", folder / "home"
            workdir.mkdir(parents=True)
            home.mkdir()
        return Container(
            name=name,
            image=image,
            workdir=workdir,
            home=home,
            hostname=hostname or _safe(name.split("/")[-1] or "container"),
            mounts=dict(mounts or {}),
            runtime=self.runtime,
        )


def _safe(part: str) -> str:
    """A path component from a name part (no separators, no dot names)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", part)
    return cleaned if cleaned.strip(".") else "_"
