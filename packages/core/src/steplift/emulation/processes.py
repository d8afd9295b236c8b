"""A job's command run as a local process group, as a container would run it.

`JobProcess` streams the merged output line by line, enforces the max runtime and stops the
whole group (SIGTERM, then SIGKILL after a grace) as a container stop does; `group_alive`
tells whether anything of a process group still runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Self

__all__ = ["JobProcess", "group_alive", "resolve_command"]

logger = logging.getLogger(__name__)


def resolve_command(
    command: Sequence[str], python: str | os.PathLike[str] | None = None
) -> list[str]:
    """The command to run on the host: a leading ``python``/``python3`` becomes ``python``
    (default: this interpreter; an emulated container passes its image's, see `sandbox`)."""
    resolved = list(command)
    if resolved and resolved[0] in ("python", "python3"):
        resolved[0] = os.fspath(python) if python is not None else sys.executable
    return resolved


class JobProcess:
    """A job's command run as a local subprocess in its own process group.

    stdout and stderr are merged; each line goes to `on_line` as soon as it is produced.
    `max_runtime` (seconds) terminates the job and marks it `timed_out`. Termination sends
    SIGTERM to the whole group and SIGKILL after `grace` seconds, as a container stop does.
    The process gets exactly ``env`` and ``cwd``; a leading ``python``/``python3`` becomes
    ``python`` (default: this interpreter). Emulated jobs start through
    :class:`~steplift.emulation.sandbox.Container`, which gives all three as its image would.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | os.PathLike[str],
        on_line: Callable[[str], None] | None = None,
        max_runtime: float | None = None,
        grace: float = 5.0,
        on_exit: Callable[[JobProcess], None] | None = None,
        python: str | os.PathLike[str] | None = None,
    ) -> None:
        if not command:
            raise ValueError("command must not be empty")
        if max_runtime is not None and max_runtime <= 0:
            raise ValueError(f"max_runtime must be positive, got {max_runtime!r}")
        self.command = resolve_command(command, python)
        self.env = dict(env)
        self.cwd = Path(cwd)
        self.grace = grace
        self.max_runtime = max_runtime
        self._on_line = on_line
        self._on_exit = on_exit
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._done = threading.Event()
        self._kill_lock = threading.Lock()
        self._timed_out = False
        self._terminated = False

    # -- lifecycle

    def start(self) -> Self:
        """Start the process and its reader/watcher threads."""
        if self._proc is not None:
            raise RuntimeError("the process was already started")
        self._proc = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        self._reader = threading.Thread(
            target=self._read_lines, name=f"job-reader-{self._proc.pid}", daemon=True
        )
        self._watcher = threading.Thread(
            target=self._watch, name=f"job-watcher-{self._proc.pid}", daemon=True
        )
        self._reader.start()
        self._watcher.start()
        return self

    @property
    def pid(self) -> int | None:
        """Process id (also the process group id), None before start."""
        return self._proc.pid if self._proc else None

    @property
    def exit_code(self) -> int | None:
        """Exit code once finished (negative: killed by that signal), else None."""
        return self._proc.returncode if self._proc and self._done.is_set() else None

    @property
    def timed_out(self) -> bool:
        """True when `max_runtime` ran out and the job was terminated for it."""
        return self._timed_out

    @property
    def terminated(self) -> bool:
        """True when the job was terminated (by `terminate` or by its timeout)."""
        return self._terminated

    def poll(self) -> int | None:
        """Exit code if the job has finished and its output was delivered, else None."""
        return self.exit_code

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait until the job finished and all its output was delivered; None on timeout."""
        if self._proc is None:
            raise RuntimeError("the process was not started")
        self._done.wait(timeout)
        return self.exit_code

    def terminate(self, grace: float | None = None) -> int | None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds; returns the exit code."""
        if self._proc is None:
            return None
        if not self._done.is_set():
            self._stop_group(self.grace if grace is None else grace)
        # Bounded: the watcher only needs to drain the pipe once the group is dead.
        self._done.wait(10.0)
        return self.exit_code

    # -- internals

    def _stop_group(self, grace: float) -> None:
        assert self._proc is not None
        with self._kill_lock:
            if self._proc.poll() is not None:
                return
            self._terminated = True
            self._signal_group(signal.SIGTERM)
            try:
                self._proc.wait(max(grace, 0.0))
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._proc.wait(10.0)

    def _signal_group(self, signum: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signum)

    def _read_lines(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stream: IO[bytes] = self._proc.stdout
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if self._on_line is None:
                continue
            try:
                self._on_line(line)
            except Exception:  # a broken sink must not stop the job or lose later lines
                logger.exception("job output callback failed")
        stream.close()

    def _watch(self) -> None:
        assert self._proc is not None and self._reader is not None
        try:
            self._proc.wait(self.max_runtime)
        except subprocess.TimeoutExpired:
            self._timed_out = True
            self._stop_group(self.grace)
        self._proc.wait()
        # Children that outlive the main process keep the pipe open; a container would die
        # with its main process, so the rest of the group goes too.
        self._reader.join(0.5)
        if self._reader.is_alive():
            self._signal_group(signal.SIGKILL)
            self._reader.join(5.0)
        self._done.set()
        if self._on_exit is not None:
            try:
                self._on_exit(self)
            except Exception:
                logger.exception("job exit callback failed")


def group_alive(pgid: int) -> bool:
    """True while a process of group `pgid` still runs (zombies awaiting reaping do not count).

    Reads /proc where there is one; elsewhere any group member, zombie or not, counts.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False
