"""Artifact stores: where execution info, inputs, results and receipts live.

A store is addressed by URIs. Core ships the local filesystem store (``file://`` URIs and
plain paths); each provider package registers its own scheme (``s3``, ``gs``, ...) in the
``steplift.stores`` entry-point group, so the entrypoint inside a container can open any
URI it is handed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

from steplift.errors import ConfigError
from steplift.interrupts import deferred_interrupts

STORE_GROUP = "steplift.stores"


@runtime_checkable
class ArtifactStore(Protocol):
    """Put, get, test and list blobs by URI."""

    def put(self, uri: str, data: bytes) -> None:
        """Store ``data`` at ``uri``, replacing what was there (readers never see half of it)."""

    def get(self, uri: str) -> bytes:
        """Return the bytes at ``uri``; FileNotFoundError if there are none."""

    def exists(self, uri: str) -> bool:
        """True if a blob is stored at ``uri``."""

    def list(self, prefix: str) -> list[str]:
        """URIs of every blob under ``prefix``, sorted."""


def join_uri(base: str, *parts: str) -> str:
    """Join path parts onto a store URI with single slashes."""
    uri = base.rstrip("/")
    for part in parts:
        uri += "/" + part.strip("/")
    return uri


class LocalArtifactStore:
    """An artifact store on the local filesystem (``file://`` URIs or plain paths)."""

    @staticmethod
    def path_of(uri: str) -> Path:
        """The filesystem path a ``file://`` URI or plain path names."""
        if uri.startswith("file://"):
            parsed = urlparse(uri)
            if parsed.netloc not in ("", "localhost"):
                raise ConfigError(
                    f"file URIs must be local, not on host '{parsed.netloc}'", value=uri
                )
            return Path(unquote(parsed.path))
        if "://" in uri:
            raise ConfigError(
                "the local artifact store only takes file:// URIs", value=uri, has_value=True
            )
        return Path(uri)

    def put(self, uri: str, data: bytes) -> None:
        path = self.path_of(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, uri: str) -> bytes:
        return self.path_of(uri).read_bytes()

    def exists(self, uri: str) -> bool:
        return self.path_of(uri).is_file()

    def list(self, prefix: str) -> list[str]:
        root = self.path_of(prefix)
        if not root.is_dir():
            return []
        base = prefix.rstrip("/")
        return sorted(
            f"{base}/{path.relative_to(root).as_posix()}"
            for path in root.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )


def store_for_uri(uri: str) -> ArtifactStore:
    """Open the artifact store that serves ``uri``, by its scheme."""
    scheme = urlparse(uri).scheme if "://" in uri else "file"
    if scheme == "file":
        return LocalArtifactStore()
    from importlib.metadata import entry_points

    for entry in entry_points(group=STORE_GROUP):
        if entry.name == scheme:
            with deferred_interrupts():  # an import cut in half leaves broken models behind
                store = entry.load()()
            if not isinstance(store, ArtifactStore):
                raise ConfigError(f"entry point {entry.value} is not an artifact store")
            return store
    raise ConfigError(
        f"no artifact store is installed for '{scheme}://' URIs; install the provider "
        "package that serves it",
        value=uri,
        has_value=True,
    )
