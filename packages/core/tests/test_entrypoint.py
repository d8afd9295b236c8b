"""The container side: round trip through the artifact store, and digest checks."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from steplift.entrypoint import StepEntrypointConfiguration, main
from steplift.errors import ConfigError, IntegrityError, StepFailed
from steplift.execution import ExecutionInfo, ResultRecord
from steplift.flavors.local import FLAVOR, LocalStepOperator
from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.runs import Run, RunIndex
from steplift.store import LocalArtifactStore
from steplift.testing import steps


class Planted:
    """Unpickling this creates a file: proof that a payload was (not) unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Path.touch, (Path(self.marker),))  # type: ignore[return-value]


@pytest.fixture
def launcher(tmp_path: Path) -> StepLauncher:
    flavor = FLAVOR
    operator = flavor.create(flavor.validate_config({"root": str(tmp_path / "local")}))
    assert isinstance(operator, LocalStepOperator)
    return StepLauncher(operator, index=RunIndex(tmp_path / "runs"))


def prepare(launcher: StepLauncher, function: Any, *args: Any, **kwargs: Any) -> list[str]:
    """Write inputs and execution info; return the entrypoint arguments."""
    spec = StepSpec.for_function(function, args, kwargs)
    info = launcher.step_info(run=Run("r"), step="s", attempt=1, options=StepOptions())
    uri, sha = launcher.prepare(spec, info)
    return StepEntrypointConfiguration.get_entrypoint_arguments(
        execution_info_uri=uri, execution_info_sha256=sha
    )


def option(arguments: list[str], name: str) -> str:
    return arguments[arguments.index(name) + 1]


def test_entrypoint_vocabulary() -> None:
    assert StepEntrypointConfiguration.get_entrypoint_command() == [
        "python",
        "-m",
        "steplift.entrypoint",
    ]
    assert StepEntrypointConfiguration.get_entrypoint_options() == {
        "execution_info_uri",
        "execution_info_sha256",
    }
    with pytest.raises(ConfigError, match="missing: execution_info_sha256"):
        StepEntrypointConfiguration.get_entrypoint_arguments(execution_info_uri="x")


def test_round_trip_runs_the_step_and_writes_the_result(launcher: StepLauncher) -> None:
    arguments = prepare(launcher, steps.add_and_log, 20, b=22)
    assert StepEntrypointConfiguration().run(arguments) == 0
    info = ExecutionInfo.model_validate_json(
        Path(option(arguments, "--execution-info-uri")).read_bytes()
    )
    record = ResultRecord.model_validate_json(Path(info.result_uri).read_bytes())
    assert record.status == "succeeded" and record.output is not None
    assert json.loads(Path(record.output.uri).read_text()) == 42


def test_round_trip_of_a_failure_keeps_type_message_and_traceback(launcher: StepLauncher) -> None:
    arguments = prepare(launcher, steps.fail_with, "bad input")
    assert StepEntrypointConfiguration().run(arguments) == 1
    info = ExecutionInfo.model_validate_json(
        Path(option(arguments, "--execution-info-uri")).read_bytes()
    )
    record = ResultRecord.model_validate_json(Path(info.result_uri).read_bytes())
    assert record.status == "failed"
    assert record.exception_type == "builtins.RuntimeError"
    assert record.exception_message == "bad input"
    assert record.traceback and "raise RuntimeError(message)" in record.traceback


def test_non_json_values_go_through_cloudpickle(launcher: StepLauncher) -> None:
    arguments = prepare(launcher, steps.add_and_log, (1, 2), (3,))
    assert StepEntrypointConfiguration().run(arguments) == 0
    info = ExecutionInfo.model_validate_json(
        Path(option(arguments, "--execution-info-uri")).read_bytes()
    )
    assert info.inputs is not None and info.inputs.format == "pickle"
    record = ResultRecord.model_validate_json(Path(info.result_uri).read_bytes())
    assert record.output is not None and record.output.format == "pickle"


def test_tampered_inputs_are_refused_before_unpickling(
    launcher: StepLauncher, tmp_path: Path
) -> None:
    arguments = prepare(launcher, steps.add_and_log, (1,), (2,))
    info = ExecutionInfo.model_validate_json(
        Path(option(arguments, "--execution-info-uri")).read_bytes()
    )
    assert info.inputs is not None
    marker = tmp_path / "unpickled"
    Path(info.inputs.uri).write_bytes(pickle.dumps(Planted(str(marker))))
    assert StepEntrypointConfiguration().run(arguments) == 1
    assert not marker.exists()
    record = ResultRecord.model_validate_json(Path(info.result_uri).read_bytes())
    assert record.exception_type == "steplift.errors.IntegrityError"
    assert "digest mismatch" in (record.exception_message or "")


def test_tampered_execution_info_is_refused(
    launcher: StepLauncher, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = prepare(launcher, steps.add_and_log, 1, 2)
    path = Path(option(arguments, "--execution-info-uri"))
    document = json.loads(path.read_text())
    document["step_ref"] = "os:system"
    path.write_text(json.dumps(document))
    with pytest.raises(IntegrityError):
        StepEntrypointConfiguration().run(arguments)
    assert main(arguments) == 2
    assert "IntegrityError" in capsys.readouterr().err


def test_tampered_output_is_refused_by_the_launcher(launcher: StepLauncher) -> None:
    run = Run("tamper")
    spec = StepSpec.for_function(steps.add_and_log, (1, 2), {})
    assert launcher.run(spec, run=run, step="s", options=StepOptions()) == 3
    output = (
        Path(launcher.operator.artifact_root) / "default" / "tamper" / "s" / "1" / "output.json"
    )
    output.write_text("4")
    with pytest.raises(IntegrityError, match="digest mismatch"):
        launcher.run(spec, run=Run("tamper"), step="s", options=StepOptions())


def test_relaunch_with_other_inputs_is_refused(launcher: StepLauncher) -> None:
    spec = StepSpec.for_function(steps.add_and_log, (1, 2), {})
    assert launcher.run(spec, run=Run("same"), step="s", options=StepOptions()) == 3
    other = StepSpec.for_function(steps.add_and_log, (1, 3), {})
    with pytest.raises(ConfigError, match="already launched with a different"):
        launcher.run(other, run=Run("same"), step="s", options=StepOptions())


def test_local_functions_are_refused_before_anything_is_written(launcher: StepLauncher) -> None:
    def nested() -> None:
        return None

    with pytest.raises(ConfigError, match="top level of a module"):
        StepSpec.for_function(nested, (), {})
    assert not LocalArtifactStore().list(launcher.operator.artifact_root)


def test_a_command_step_records_its_exit_code(launcher: StepLauncher) -> None:
    spec = StepSpec.for_command(["python", "-c", "import sys; sys.exit(4)"])
    with pytest.raises(StepFailed, match="exited with code 4"):
        launcher.run(spec, run=Run("cmd"), step="c", options=StepOptions())
    ok = StepSpec.for_command(["python", "-c", "print('fine')"])
    assert launcher.run(ok, run=Run("cmd"), step="ok", options=StepOptions()) == 0
    assert os.environ.get("STEPLIFT_JOB_RUN") is None  # job variables stay in the job


def test_a_signal_to_the_entrypoint_reaches_the_command(
    launcher: StepLauncher, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    from steplift.testing.processes import read_until

    marker = tmp_path / "stopped"
    script = (
        "import pathlib, signal, sys, time\n"
        f"stop = lambda *_: (pathlib.Path({str(marker)!r}).touch(), sys.exit(3))\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    spec = StepSpec.for_command(["python", "-c", script])
    info = launcher.step_info(run=Run("sig"), step="c", attempt=1, options=StepOptions())
    uri, sha = launcher.prepare(spec, info)
    arguments = StepEntrypointConfiguration.get_entrypoint_arguments(
        execution_info_uri=uri, execution_info_sha256=sha
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "steplift.entrypoint", *arguments], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        read_until(process.stdout, "ready")
        process.send_signal(signal.SIGTERM)  # only the entrypoint, as a container stop does
        assert process.wait(timeout=30) == 3
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
    assert marker.exists()


def test_a_job_whose_cluster_disagrees_with_the_step_does_not_start(
    launcher: StepLauncher, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from steplift.models import Resources

    spec = StepSpec.for_function(steps.add_and_log, (1, 2), {})
    options = StepOptions(resources=Resources(nodes=3))
    info = launcher.step_info(run=Run("r3"), step="s", attempt=1, options=options)
    uri, sha = launcher.prepare(spec, info)
    arguments = StepEntrypointConfiguration.get_entrypoint_arguments(
        execution_info_uri=uri, execution_info_sha256=sha
    )
    monkeypatch.setenv("SM_HOSTS", '["algo-1", "algo-2"]')
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-2")
    assert main(arguments) == 2
    err = capsys.readouterr().err
    assert "asked for 3 nodes but the job's sagemaker cluster description has 2" in err
    assert not launcher.store.exists(info.artifact_uri + "/result.json")


def test_a_failing_rank_records_its_own_failure_and_rank_0_keeps_the_result(
    launcher: StepLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    from steplift.models import Resources

    spec = StepSpec.for_function(steps.fail_on_rank, (1, "second node broke", 0.0), {})
    options = StepOptions(resources=Resources(nodes=2))
    info = launcher.step_info(run=Run("r4"), step="s", attempt=1, options=options)
    uri, sha = launcher.prepare(spec, info)
    arguments = StepEntrypointConfiguration.get_entrypoint_arguments(
        execution_info_uri=uri, execution_info_sha256=sha
    )
    exported = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK")
    exported += ("LOCAL_WORLD_SIZE", "STEPLIFT_LOCAL_GPUS", "STEPLIFT_NODES", "NODE_RANK")
    # The entrypoint exports the torch variables into os.environ, as it must in a job; here
    # every node runs in this process, so the whole environment is put back afterwards.
    monkeypatch.setattr(os, "environ", os.environ.copy())

    def as_a_fresh_node(rank: int) -> None:
        for name in exported:
            os.environ.pop(name, None)
        os.environ.update({"STEPLIFT_NODES": "2", "NODE_RANK": str(rank)})

    as_a_fresh_node(1)
    assert main(arguments) == 1
    failure = ResultRecord.model_validate_json(
        launcher.store.get(info.artifact_uri + "/failures/rank-1.json")
    )
    assert (failure.rank, failure.node_rank, failure.status) == (1, 1, "failed")
    assert failure.exception_message == "second node broke (rank 1)"
    assert not launcher.store.exists(info.artifact_uri + "/result.json")
    as_a_fresh_node(0)
    assert main(arguments) == 0
    record = ResultRecord.model_validate_json(
        launcher.store.get(info.artifact_uri + "/result.json")
    )
    assert record.status == "succeeded" and record.rank == 0
    # The step failed on node 1, whatever rank 0 wrote.
    with pytest.raises(StepFailed, match=r"on node 1 \(rank 1\)"):
        launcher.run(spec, run=Run("r4"), step="s", options=options)


def test_one_process_per_gpu_counts_the_gpus_the_operator_knows_of(
    launcher: StepLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    from steplift.models import Resources

    # The operator's machines have 4 GPUs (its config's instance type, say); the step names none.
    monkeypatch.setattr(launcher.operator, "gpus_per_node", lambda info: 4)
    spec = StepSpec.for_function(steps.add_and_log, (1, 2), {})
    options = StepOptions(resources=Resources(nodes=2, processes_per_node="gpu"))
    info = launcher.step_info(run=Run("r5"), step="s", attempt=1, options=options)
    uri, _ = launcher.prepare(spec, info)
    execution = ExecutionInfo.model_validate_json(launcher.store.get(uri))
    assert (execution.nodes, execution.processes_per_node, execution.gpus_per_node) == (2, 4, 4)


def test_a_relaunch_waits_for_the_other_nodes_when_only_rank_0_is_done(
    launcher: StepLauncher,
) -> None:
    import time

    from steplift.models import Resources
    from steplift.testing.emulation import wait_until

    spec = StepSpec.for_function(steps.fail_late_on_rank, (1, 3.0), {})
    options = StepOptions(resources=Resources(nodes=2))
    info = launcher.step_info(run=Run("r6"), step="s", attempt=1, options=options)
    uri, sha = launcher.prepare(spec, info)
    # A launcher submitted the job and died; rank 0 has written its result, node 1 still runs.
    operator = launcher.operator
    operator.submit(info, launcher.entrypoint_command(uri, sha), operator.job_environment(info))
    assert wait_until(lambda: launcher.store.exists(info.artifact_uri + "/result.json"), 30)
    started = time.monotonic()
    with pytest.raises(StepFailed, match=r"on node 1 \(rank 1\).*failed late"):
        launcher.run(spec, run=Run("r6"), step="s", options=options)
    assert time.monotonic() - started < 30
