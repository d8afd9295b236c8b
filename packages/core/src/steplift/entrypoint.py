"""The container side: ``python -m steplift.entrypoint --execution-info-uri URI ...``.

Loads the execution info from the artifact store, verifies every SHA-256 digest before
anything is decoded, unpacks the step's code package into the job's cache (first on
``sys.path``, and the job runs from it), installs its requirements, imports the step by
``module:qualname`` (or loads it, pickled by value), loads its inputs, runs it and writes the
result record (the value, or the exception's type, message and traceback). Exits non-zero
when the step failed. Runs on Python 3.10 to 3.13: the image's Python, not the launcher's.

In a multi-node step the entrypoint runs on every node. It reads the cloud's cluster
description (:mod:`steplift.distributed`), exports the torch ``env://`` variables, and when
the step asks for several processes per node starts them (torchrun-style) and waits for all.
Rank 0 writes the result; any other rank that fails records its own failure, so the launcher
can name the node whose code failed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from types import FrameType
from typing import Any

from steplift.cluster import Cluster, ClusterError, Distributed, process_view, read_cluster
from steplift.errors import ConfigError, IntegrityError
from steplift.execution import ExecutionInfo, ResultRecord, failure_uri
from steplift.packaging.install import RequirementsFailed, install_requirements
from steplift.packaging.unpack import unpack_code, use_code
from steplift.payloads import PayloadRef, read_payload, read_verified, write_payload
from steplift.secrets import resolve_into
from steplift.states import FailureKind
from steplift.store import ArtifactStore, store_for_uri

EXECUTION_INFO_URI_OPTION = "execution_info_uri"
EXECUTION_INFO_SHA256_OPTION = "execution_info_sha256"

EXIT_STEP_FAILED = 1
EXIT_CANNOT_START = 2


class StepEntrypointConfiguration:
    """Builds the command that runs a step in a job, and runs it there."""

    @classmethod
    def get_entrypoint_command(cls) -> list[str]:
        """The command that starts the entrypoint; arguments follow it."""
        return ["python", "-m", "steplift.entrypoint"]

    @classmethod
    def get_entrypoint_options(cls) -> set[str]:
        """The options :meth:`get_entrypoint_arguments` needs."""
        return {EXECUTION_INFO_URI_OPTION, EXECUTION_INFO_SHA256_OPTION}

    @classmethod
    def get_entrypoint_arguments(cls, **kwargs: Any) -> list[str]:
        """The arguments for the command, from the options by name."""
        missing = cls.get_entrypoint_options() - kwargs.keys()
        if missing:
            raise ConfigError(f"entrypoint arguments missing: {', '.join(sorted(missing))}")
        unknown = kwargs.keys() - cls.get_entrypoint_options()
        if unknown:
            raise ConfigError(f"unknown entrypoint arguments: {', '.join(sorted(unknown))}")
        arguments: list[str] = []
        for option in sorted(cls.get_entrypoint_options()):
            arguments += ["--" + option.replace("_", "-"), str(kwargs[option])]
        return arguments

    @classmethod
    def parse_arguments(cls, argv: list[str]) -> argparse.Namespace:
        """Parse the arguments built by :meth:`get_entrypoint_arguments`."""
        parser = argparse.ArgumentParser(prog="python -m steplift.entrypoint")
        for option in sorted(cls.get_entrypoint_options()):
            parser.add_argument("--" + option.replace("_", "-"), dest=option, required=True)
        return parser.parse_args(argv)

    def run(self, argv: list[str]) -> int:
        """Run the step described by the arguments; return the process exit code."""
        options = self.parse_arguments(argv)
        uri = getattr(options, EXECUTION_INFO_URI_OPTION)
        store = store_for_uri(uri)
        data = read_verified(store, uri, getattr(options, EXECUTION_INFO_SHA256_OPTION))
        info = ExecutionInfo.model_validate_json(data)
        if info.code is not None:
            # Before the processes of a node start: they find the package unpacked.
            folder = unpack_code(store, info.code.uri, info.code.sha256)
            importable = use_code(folder, info.code.import_path, info.code.workdir)
            _prepend_env_path("PYTHONPATH", str(importable))  # for a command's Python too
        place = None
        if info.distributed:
            cluster = read_cluster()
            if cluster.nodes != info.nodes:
                raise ClusterError(
                    f"the step asked for {info.nodes} nodes but the job's {cluster.source} "
                    f"cluster description has {cluster.nodes}"
                )
            if info.processes_per_node > 1 and cluster.process is None:
                return _run_local_processes(argv, _local_places(info, cluster))
            local_rank = cluster.process[1] if cluster.process else 0
            place = process_view(
                cluster,
                local_rank=local_rank,
                processes_per_node=info.processes_per_node,
                gpus=info.gpus_per_node,
            )
            os.environ.update(place.torch_env())
        writer = _ResultWriter(store, info, place)
        if info.requirements is not None:
            try:
                folder = install_requirements(info.requirements.text, info.requirements.sha256)
            except RequirementsFailed as error:
                message = f"the step's requirements did not install: {error}"
                print(f"steplift: {message}", file=sys.stderr, flush=True)
                kind = type(error)
                writer.write(
                    ResultRecord(
                        status="failed",
                        exception_type=f"{kind.__module__}.{kind.__qualname__}",
                        exception_message=message,
                        failure_kind=FailureKind.IMAGE.value,
                    )
                )
                return EXIT_STEP_FAILED
            _prepend_env_path("PYTHONPATH", str(folder))
        if info.kind == "command":
            resolve_into()  # the command inherits the values
            return self._run_command(writer, info)
        return self._run_function(writer, store, info)

    @staticmethod
    def _run_command(writer: _ResultWriter, info: ExecutionInfo) -> int:
        command = list(info.command or [])
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable
        try:
            code = _run_forwarding_signals(command)
        except OSError as error:
            print(f"steplift: could not start {command[0]!r}: {error}", file=sys.stderr, flush=True)
            writer.write(
                ResultRecord(
                    status="failed",
                    exception_type=type(error).__name__,
                    exception_message=str(error),
                    exit_code=127,
                )
            )
            return 127
        writer.write(
            ResultRecord(
                status="succeeded" if code == 0 else "failed",
                exit_code=code,
                exception_message=None if code == 0 else f"command exited with code {code}",
            )
        )
        return code if code >= 0 else 128 - code

    def _run_function(
        self, writer: _ResultWriter, store: ArtifactStore, info: ExecutionInfo
    ) -> int:
        try:
            resolve_into()
            function = (
                load_function(store, info.function, info.function_python)
                if info.function
                else resolve_step(info.step_ref or "")
            )
            inputs = read_payload(store, info.inputs) if info.inputs else {"args": [], "kwargs": {}}
            value = function(*inputs["args"], **inputs["kwargs"])
        except Exception as error:
            # Drop this frame: the user wants their own code's traceback.
            text = "".join(
                traceback.format_exception(
                    type(error), error, error.__traceback__.tb_next if error.__traceback__ else None
                )
            )
            print(text, file=sys.stderr, end="", flush=True)
            kind = type(error)
            writer.write(
                ResultRecord(
                    status="failed",
                    exception_type=f"{kind.__module__}.{kind.__qualname__}",
                    exception_message=str(error),
                    traceback=text,
                )
            )
            return EXIT_STEP_FAILED
        output = None
        if writer.keeps_value:
            stem = info.result_uri.rsplit("/", 1)[0] + "/output"
            output = write_payload(store, stem, value)
        writer.write(ResultRecord(status="succeeded", output=output))
        return 0


class _ResultWriter:
    """Writes how the step ended: rank 0 the result, any other rank only its failure."""

    def __init__(self, store: ArtifactStore, info: ExecutionInfo, place: Distributed | None):
        self.store = store
        self.info = info
        self.place = place

    @property
    def keeps_value(self) -> bool:
        """Whether this process's return value is the step's result (rank 0's is)."""
        return self.place is None or self.place.rank == 0

    def write(self, record: ResultRecord) -> None:
        if self.place is not None:
            record = record.model_copy(
                update={
                    "rank": self.place.rank,
                    "node_rank": self.place.node_rank,
                    "finished_at": time.time(),
                }
            )
        if self.keeps_value:
            self.store.put(self.info.result_uri, record.model_dump_json().encode())
        elif record.status == "failed" and self.place is not None:
            folder = self.info.result_uri.rsplit("/", 1)[0]
            uri = failure_uri(folder, self.place.rank)
            self.store.put(uri, record.model_dump_json().encode())


def _local_places(info: ExecutionInfo, cluster: Cluster) -> list[Distributed]:
    """The views of the processes this node starts, one per local rank."""
    return [
        process_view(
            cluster,
            local_rank=local_rank,
            processes_per_node=info.processes_per_node,
            gpus=info.gpus_per_node,
        )
        for local_rank in range(info.processes_per_node)
    ]


STOP_GRACE = 10.0
"""Seconds the other processes of a node get between SIGTERM and SIGKILL after one failed."""


def _run_local_processes(argv: list[str], places: list[Distributed]) -> int:
    """Start one entrypoint per local rank (torchrun-style) and wait for all of them.

    The first process to fail stops the others (SIGTERM, then SIGKILL after a grace), as a
    node of a cloud job ends when its work fails; a SIGTERM or SIGINT to this process goes to
    every child. Returns the first failing exit code, else 0.
    """
    command = [sys.executable, "-m", "steplift.entrypoint", *argv]
    children = {
        process.pid: process
        for process in (
            subprocess.Popen(command, env={**os.environ, **place.torch_env()}) for place in places
        )
    }

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signum)

    def stop_all() -> None:
        forward(signal.SIGTERM, None)
        killer = threading.Timer(STOP_GRACE, forward, (signal.SIGKILL, None))
        killer.daemon = True
        killer.start()

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    first_failure = 0
    try:
        remaining = set(children)
        while remaining:
            pid, status = os.wait()
            if pid not in remaining:
                continue
            remaining.discard(pid)
            children[pid].returncode = os.waitstatus_to_exitcode(status)
            code = children[pid].returncode
            if code != 0 and not first_failure:
                first_failure = code if code > 0 else 128 - code
                stop_all()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return first_failure


def _run_forwarding_signals(command: list[str]) -> int:
    """Run ``command``; a SIGTERM or SIGINT to this process is passed on to it.

    On a cloud, stopping a job signals the container's first process only: this one.
    """
    process = subprocess.Popen(command)

    def forward(signum: int, _frame: FrameType | None) -> None:
        process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _prepend_env_path(name: str, folder: str) -> None:
    """Put ``folder`` first in the path-list variable ``name`` (children inherit it)."""
    current = os.environ.get(name)
    os.environ[name] = folder + (os.pathsep + current if current else "")


def load_function(store: ArtifactStore, ref: PayloadRef, python: str | None) -> Any:
    """A step function pickled by value, verified; a clear error on another Python."""
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        function = read_payload(store, ref)
    except IntegrityError:
        raise
    except Exception as error:
        if python and python != here:
            raise ImportError(
                f"the step function was pickled by value on Python {python} and this job runs "
                f"Python {here}: use an image with Python {python}, or define the step in a "
                f"module ({type(error).__name__}: {error})"
            ) from error
        raise
    return getattr(function, "__steplift_function__", function)


def resolve_step(reference: str) -> Any:
    """Import ``module:qualname`` and return the plain function (unwrapping a step)."""
    module_name, _, qualname = reference.partition(":")
    if not module_name or not qualname:
        raise ImportError(f"step reference must be 'module:qualname', not {reference!r}")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return getattr(target, "__steplift_function__", target)


def main(argv: list[str] | None = None) -> int:
    """Console entry: run the entrypoint and turn setup errors into a clear exit."""
    try:
        return StepEntrypointConfiguration().run(sys.argv[1:] if argv is None else argv)
    except Exception as error:  # the step did not start: say why, in the job's log
        print(f"steplift entrypoint: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return EXIT_CANNOT_START


if __name__ == "__main__":
    sys.exit(main())
