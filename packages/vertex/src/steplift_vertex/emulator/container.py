"""How an emulated CustomJob's replicas run: their command, environment and folders.

Each replica of each worker pool is one local process in a container of its pool's
``imageUri`` (:mod:`steplift.emulation.sandbox`: a fresh empty working directory, the image's
Python) with Vertex AI's container environment and nothing else: its pool's container
command and env, ``CLOUD_ML_JOB_ID``, the ``AIP_*`` output folders, a ``CLUSTER_SPEC`` that
lists every replica at ``127.0.0.1:<port>`` and names this one as its ``task``, and the
emulated project's storage endpoint (on Vertex the job's service account reaches Cloud
Storage). Cloud Storage FUSE's ``/gcs`` mount is a local folder shared by every job.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steplift.emulation.images import ImageRegistry
from steplift.emulation.sandbox import Container, Sandbox

CHIEF_TASK = "workerpool0-0"


@dataclass(frozen=True)
class Replica:
    """One replica of a worker pool: a machine of the job."""

    pool: int
    index: int

    @property
    def task(self) -> str:
        """Its task name (``workerpool1-0``), as in CLUSTER_SPEC and the log entries."""
        return f"workerpool{self.pool}-{self.index}"


def job_replicas(pools: Sequence[Any]) -> list[Replica]:
    """The replicas of ``workerPoolSpecs`` in order; an empty pool (skipped) has none."""
    return [
        Replica(pool, index)
        for pool, spec in enumerate(pools)
        if isinstance(spec, dict) and spec
        for index in range(int(spec.get("replicaCount", 1)))
    ]


class Containers:
    """The folders of one emulator's jobs (created on first use) and their replicas' launch.

    ``images`` maps the pools' image URIs to local Python environments.
    """

    def __init__(self, images: ImageRegistry) -> None:
        self._lock = threading.Lock()
        self._workdir: Path | None = None
        # A replica's container folders: <job number>/<task>/{work,home}.
        self.sandbox = Sandbox(self._root, images)

    def _root(self) -> Path:
        with self._lock:
            if self._workdir is None:
                self._workdir = Path(tempfile.mkdtemp(prefix="steplift-vertex-"))
            return self._workdir

    def job_folder(self, number: str) -> Path:
        """The working folder of job ``number``."""
        folder = self._root() / number
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def container(self, resource: dict[str, Any], number: str, replica: Replica) -> Container:
        """A fresh container of the replica's pool image (OSError: the image cannot be made)."""
        spec = resource["jobSpec"]["workerPoolSpecs"][replica.pool]["containerSpec"]
        return self.sandbox.container(
            f"{number}/{replica.task}",
            str(spec.get("imageUri", "")),
            hostname=replica.task,
            mounts={"/gcs": self.fuse_root()},
        )

    def fuse_root(self) -> Path:
        """The local folder standing in for Cloud Storage FUSE's ``/gcs`` mount."""
        root = self._root() / "gcs"
        root.mkdir(exist_ok=True)
        return root

    def fuse_path(self, value: str) -> str:
        """``value`` with a leading ``/gcs`` pointed at :meth:`fuse_root`."""
        # Vertex mounts buckets at /gcs/<bucket>/; the emulator mounts a local folder there,
        # shared by every job it runs (not synchronised with the GCS emulator).
        if value == "/gcs" or value.startswith("/gcs/"):
            return str(self.fuse_root()) + value[len("/gcs") :]
        return value

    def command(self, resource: dict[str, Any], replica: Replica) -> list[str]:
        """The replica's command line: its pool's container command and args."""
        container = resource["jobSpec"]["workerPoolSpecs"][replica.pool]["containerSpec"]
        return [
            self.fuse_path(str(word))
            for word in [*container.get("command", []), *container.get("args", [])]
        ]

    def environment(
        self,
        resource: dict[str, Any],
        project: str,
        number: str,
        replica: Replica,
        addresses: Mapping[Replica, str],
        cloud_env: Mapping[str, str],
    ) -> dict[str, str]:
        """The variables Vertex gives the replica's container: ``cloud_env`` (the emulated
        project's endpoints), its pool's container env, then Vertex's own. Nothing of the
        emulator's environment (the container adds its image's PATH and HOME)."""
        spec = resource["jobSpec"]
        pools = spec["workerPoolSpecs"]
        container = pools[replica.pool]["containerSpec"]
        cluster: dict[str, list[str]] = {}
        for other, address in addresses.items():
            cluster.setdefault(f"workerpool{other.pool}", []).append(address)
        env = dict(cloud_env)
        env.update(
            {
                item["name"]: self.fuse_path(str(item.get("value", "")))
                for item in container.get("env", [])
            }
        )
        env.update(
            {
                "CLOUD_ML_JOB_ID": number,
                "CLOUD_ML_PROJECT_ID": project,
                # As Vertex writes it: the pools' addresses, this replica's task, and the
                # job spec as a JSON string.
                "CLUSTER_SPEC": json.dumps(
                    {
                        "cluster": cluster,
                        "environment": "cloud",
                        "task": {"type": f"workerpool{replica.pool}", "index": replica.index},
                        "job": json.dumps({"worker_pool_specs": pools}),
                    }
                ),
            }
        )
        prefix = spec.get("baseOutputDirectory", {}).get("outputUriPrefix")
        if prefix:
            base = str(prefix).rstrip("/")
            env["AIP_MODEL_DIR"] = f"{base}/model/"
            env["AIP_CHECKPOINT_DIR"] = f"{base}/checkpoints/"
            env["AIP_TENSORBOARD_LOG_DIR"] = f"{base}/logs/"
        return env

    def remove(self) -> None:
        """Delete every job folder."""
        with self._lock:
            workdir, self._workdir = self._workdir, None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
