"""Records written to the artifact store for one step attempt.

``<artifact root>/<pipeline>/<run>/<step>/<attempt>/`` holds:

- ``inputs.json`` or ``inputs.pkl`` — the step's arguments (a payload with a digest);
- ``execution_info.json`` — what to run, with the inputs' digest (its own digest travels on
  the entrypoint command line);
- ``function.pkl`` — a step function pickled by value (one defined in ``__main__``);
- ``output.json``, ``output.bin`` or ``output.pkl`` and ``result.json`` — written by the
  entrypoint when the step ends: the value, or the exception's type, message and traceback.
  In a multi-node step rank 0 writes them; any other rank that fails writes
  ``failures/rank-<R>.json``.

Code packages are shared by every attempt: ``<artifact root>/code/<sha256>.tar.gz``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from steplift.payloads import PayloadRef
from steplift.store import join_uri


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CodeRef(_Record):
    """The code package a job unpacks and runs from."""

    uri: str
    sha256: str
    import_path: str = Field(
        default=".", description="Folder in the package put first on sys.path (posix)."
    )
    workdir: str = Field(default=".", description="Folder in the package the job runs in.")


class RequirementsRef(_Record):
    """Requirements pip installs in the job, as the text of a requirements file."""

    text: str
    sha256: str


class ExecutionInfo(_Record):
    """What the entrypoint runs inside the job.

    The job gets its code only from ``code`` (and what its image holds): nothing names a
    folder of the launcher's machine.
    """

    version: Literal[2] = 2
    pipeline: str
    run: str
    step: str
    attempt: int
    kind: Literal["function", "command"]
    step_ref: str | None = Field(default=None, description="module:qualname of the function.")
    function: PayloadRef | None = Field(
        default=None, description="The function pickled by value (defined in __main__)."
    )
    function_python: str | None = Field(
        default=None, description="major.minor of the Python that pickled ``function``."
    )
    code: CodeRef | None = None
    requirements: RequirementsRef | None = None
    inputs: PayloadRef | None = None
    command: list[str] | None = None
    result_uri: str
    nodes: int = Field(default=1, ge=1)
    processes_per_node: int = Field(default=1, ge=1)
    gpus_per_node: int = Field(default=0, ge=0)

    @property
    def distributed(self) -> bool:
        """Whether the step runs as more than one process."""
        return self.nodes * self.processes_per_node > 1


class ResultRecord(_Record):
    """How the step ended, written by the entrypoint."""

    version: Literal[1] = 1
    status: Literal["succeeded", "failed"]
    output: PayloadRef | None = None
    exception_type: str | None = None
    exception_message: str | None = None
    traceback: str | None = None
    exit_code: int | None = None
    failure_kind: str | None = Field(
        default=None,
        description="A FailureKind value when the failure is not the step's code "
        "(e.g. 'image': its requirements did not install).",
    )
    rank: int | None = Field(default=None, description="Global rank, in a multi-process step.")
    node_rank: int | None = None
    finished_at: float | None = Field(default=None, description="Unix time the step ended.")


def attempt_uri(root: str, pipeline: str, run: str, step: str, attempt: int) -> str:
    """The store folder of one step attempt."""
    return join_uri(root, pipeline, run, step, str(attempt))


def execution_info_uri(attempt: str) -> str:
    """Where the execution info of an attempt lives."""
    return join_uri(attempt, "execution_info.json")


def result_uri(attempt: str) -> str:
    """Where the result record of an attempt lives."""
    return join_uri(attempt, "result.json")


def failure_uri(attempt: str, rank: int) -> str:
    """Where rank ``rank`` (not 0) of a multi-process step records that it failed."""
    return join_uri(attempt, "failures", f"rank-{rank}.json")
