"""The steplift command: exit codes, output, and signals."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from steplift.cli import main
from steplift.runs import RunIndex
from steplift.testing.processes import read_until, signal_and_wait, steplift_process


def test_run_streams_output_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--name", "c1", "--", "python", "-c", "print('from the job')"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "from the job" in out
    assert "run c1" in err and "SUCCEEDED" in err


def test_run_on_two_nodes_prefixes_each_nodes_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A launcher inside some other cluster (a torchrun worker) does not pass its own on.
    for name, value in {"RANK": "3", "WORLD_SIZE": "8", "MASTER_ADDR": "10.1.1.1"}.items():
        monkeypatch.setenv(name, value)
    script = (
        "import os; print('hello from', os.environ['NODE_RANK'], 'of', os.environ['WORLD_SIZE'])"
    )
    code = main(["run", "--name", "c1n", "--nodes", "2", "--", "python", "-c", script])
    out = capsys.readouterr().out
    assert code == 0
    assert "[node 0] hello from 0 of 2" in out and "[node 1] hello from 1 of 2" in out


def test_failed_step_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--name", "c2", "--", "python", "-c", "raise SystemExit(3)"]) == 1
    assert "exited with code 3" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--name", "c3"], "needs a command"),
        (["run", "--name", "bad name", "--", "true"], "run names"),
        (["run", "--env", "NOEQUALS", "--", "true"], "KEY=VALUE"),
        (["run", "--gpu", "A10G:x", "--", "true"], "TYPE:COUNT"),
        (["run", "--nodes", "0", "--", "true"], "resources.nodes"),
        (["run", "--processes-per-node", "every", "--", "true"], "resources.processes_per_node"),
        (["run", "--operator", "ghost", "--", "true"], "no operator named 'ghost'"),
        (["status", "never-ran"], "no run named 'never-ran'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_and_config_errors_exit_two_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code: int | str | None
    with pytest.raises(SystemExit) if argv == ["frobnicate"] else _no_exit() as caught:
        code = main(argv)
    if caught is not None:
        code = caught.value.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


class _no_exit:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_bad_config_file_exits_two(
    isolated_steplift: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (isolated_steplift / "steplift.toml").write_text('[operators.a]\nflavor = "local"\nroot = 5\n')
    assert main(["run", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert "steplift.toml: operator 'a': field 'root'" in err and "got 5" in err


def test_status_logs_list_and_operators(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["run", "--name", "c4", "--step", "hello", "--", "python", "-c", "print('hi there')"])
        == 0
    )
    capsys.readouterr()
    assert main(["status", "c4"]) == 0
    out = capsys.readouterr().out
    assert "hello" in out and "SUCCEEDED" in out
    assert main(["logs", "c4"]) == 0
    assert capsys.readouterr().out.strip() == "hi there"
    assert main(["list"]) == 0
    assert "c4" in capsys.readouterr().out
    assert main(["operators"]) == 0
    out = capsys.readouterr().out
    assert "local" in out and "valid" in out
    assert main(["cancel", "c4"]) == 0
    assert "no running job" in capsys.readouterr().out


def test_emulator_of_a_missing_provider_exits_two(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in sys.modules if n.startswith("steplift_azureml")] + ["steplift_azureml"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    assert main(["emulator", "azureml"]) == 2
    err = capsys.readouterr().err
    assert "the azureml flavor is not installed" in err
    assert 'pip install "steplift[azureml]"' in err


def test_emulator_without_its_extra_names_the_providers_emulator_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = "steplift_azureml.emulator"
    for name in [n for n in sys.modules if n.startswith(emulator + ".")] + [emulator]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it could not be imported
    assert main(["emulator", "azureml"]) == 2
    err = capsys.readouterr().err
    assert "the azureml emulator needs steplift_azureml.emulator" in err
    assert 'pip install "steplift-azureml[emulator]"' in err


@pytest.mark.parametrize(("sig", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_cancels_the_job_and_exits_128_plus_signal(
    isolated_steplift: Path, sig: signal.Signals, expected: int
) -> None:
    run = f"sig-{sig.name.lower()}"
    script = "import time; print('job started', flush=True); time.sleep(120)"
    with steplift_process("run", "--name", run, "--", "python", "-c", script) as process:
        assert process.stdout is not None
        read_until(process.stdout, "job started")
        code, err = signal_and_wait(process, sig)
    assert code == expected, err
    assert f"interrupted by {sig.name}" in err and "CANCELLED" in err
    record = RunIndex().steps(run)[0]
    assert record.state == "CANCELLED"
    job_dir = Path(record.handle.extra["dir"]) if record.handle else None
    assert job_dir is not None
    state = (job_dir / "state.json").read_text()
    assert '"CANCELLED"' in state


def test_logs_follow_streams_until_the_job_ends(capsys: pytest.CaptureFixture[str]) -> None:
    import steplift
    from steplift.testing import steps
    from steplift.testing.emulation import wait_until

    with steplift.run("follow"):
        handle = steplift.submit(steps.sleep_for, 0.3)
        assert wait_until(lambda: handle.job is not None, timeout=30)
        assert main(["logs", "follow", "--follow"]) == 0
        assert handle.wait(timeout=30) == "woke up"
    assert capsys.readouterr().out.strip() == "sleeping"
    status = handle.status()
    assert status is not None and status.state.is_terminal


def test_a_relaunch_after_the_launcher_died_adopts_the_running_job(isolated_steplift: Path) -> None:
    script = (
        "import pathlib, time; print('job started', flush=True); "
        "[time.sleep(0.05) for _ in range(200) if not pathlib.Path('go').exists()]; print('done')"
    )
    command = ("run", "--name", "crash", "--", "python", "-c", script)
    with steplift_process(*command) as first:
        assert first.stdout is not None
        read_until(first.stdout, "job started")
        code, _ = signal_and_wait(first, signal.SIGKILL)  # the launcher dies; the job lives on
    assert code == -signal.SIGKILL
    jobs = sorted((isolated_steplift / ".steplift" / "local" / "jobs").iterdir())
    assert len(jobs) == 1
    with steplift_process(*command) as second:
        assert second.stderr is not None and second.stdout is not None
        read_until(second.stderr, "adopted existing local job")
        (isolated_steplift / "go").touch()  # only now may the job finish
        code, out = second.wait(timeout=60), second.stdout.read()
    assert code == 0
    assert out.splitlines() == ["job started", "done"]  # every line once, from the start
    with steplift_process(*command) as third:  # the step is done: its stored result, again
        code, out = third.wait(timeout=60), third.stdout.read() if third.stdout else ""
    assert code == 0
    assert out.splitlines() == ["job started", "done"]
    assert sorted((isolated_steplift / ".steplift" / "local" / "jobs").iterdir()) == jobs
