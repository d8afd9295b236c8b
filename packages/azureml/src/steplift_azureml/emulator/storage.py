"""Azurite, the Azure Storage emulator (npm ``azurite``), as a child process on 127.0.0.1.

Found through ``STEPLIFT_AZURITE`` (the ``azurite-blob`` executable, or the folder npm
installed it into with ``npm install --prefix FOLDER azurite``) or ``azurite-blob`` on PATH.
Started in memory, on a free loopback port, with ``--skipApiVersionCheck
--disableTelemetry``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Self

AZURITE_ENV = "STEPLIFT_AZURITE"
INSTALL_HINT = (
    "install it with `npm install --prefix ~/.steplift/azurite azurite@3.35.0` and set "
    "STEPLIFT_AZURITE=~/.steplift/azurite"
)
# Azurite's documented development account (the same in every installation; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"listens on (http://127\.0\.0\.1:(\d+))")


def find_azurite(environ: dict[str, str] | None = None) -> Path | None:
    """The ``azurite-blob`` executable, or None when it is not installed."""
    environ = dict(os.environ) if environ is None else environ
    configured = environ.get(AZURITE_ENV)
    if configured:
        path = Path(configured).expanduser()
        for candidate in (
            path,
            path / "azurite-blob",
            path / "node_modules" / ".bin" / "azurite-blob",
        ):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        return None
    found = shutil.which("azurite-blob")
    return Path(found) if found else None


class Azurite:
    """An Azurite blob service run for the lifetime of this object."""

    def __init__(self, executable: Path | None = None, startup_timeout: float = 30.0) -> None:
        found = executable or find_azurite()
        if found is None:
            raise FileNotFoundError(f"Azurite (azurite-blob) was not found; {INSTALL_HINT}")
        self.executable = found
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._drain: threading.Thread | None = None
        self.endpoint = ""

    @property
    def blob_endpoint(self) -> str:
        """The dev account's blob endpoint, e.g. http://127.0.0.1:PORT/devstoreaccount1."""
        return f"{self.endpoint}/{DEV_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        """Connection string of the development account on this instance."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    @property
    def pid(self) -> int | None:
        """The Azurite process id while it runs."""
        return self._process.pid if self._process else None

    def start(self) -> Self:
        """Start Azurite and wait (bounded) until it listens."""
        self._workdir = tempfile.TemporaryDirectory(prefix="steplift-azurite-")
        self._process = subprocess.Popen(
            [
                str(self.executable),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                "0",
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--silent",
            ],
            cwd=self._workdir.name,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self._process.stdout is not None
        found = threading.Event()
        seen: list[str] = []

        def read(stream: IO[str]) -> None:
            for line in stream:
                seen.append(line.rstrip())
                match = _LISTENING.search(line)
                if match and not found.is_set():
                    self.endpoint = match.group(1)
                    found.set()
            found.set()

        self._drain = threading.Thread(
            target=read, args=(self._process.stdout,), name="azurite-output", daemon=True
        )
        self._drain.start()
        found.wait(self.startup_timeout)
        if not self.endpoint:
            self.stop()
            raise RuntimeError("Azurite did not start: " + " | ".join(seen[-5:]))
        return self

    def stop(self) -> None:
        """Stop Azurite (SIGTERM, then SIGKILL) and remove its folder."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._drain is not None:
            self._drain.join(5)
            self._drain = None
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
