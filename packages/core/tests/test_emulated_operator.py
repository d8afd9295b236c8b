"""emulated_operator and operator_table: one way to point steplift at any emulator, tried with
a fake emulator that points the local flavor at a folder."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steplift.config import parse_config, validate_operator
from steplift.emulation import Emulator, EmulatorBase, emulated_operator, operator_table
from steplift.errors import ConfigError
from steplift.flavors.local import LocalStepOperator
from steplift.launch import LaunchPolicy
from steplift.polling import PollPolicy


class LocalFolderEmulator(EmulatorBase):
    """Stands in for the local flavor: its "endpoint" is a folder the operator's jobs go to."""

    flavor: ClassVar[str] = "local"

    def __init__(self, root: Path, extra: dict[str, Any] | None = None) -> None:
        super().__init__("execute")
        self.root = root
        self.extra = extra or {}

    @property
    def endpoint_url(self) -> str:
        return "http://127.0.0.1:1"

    def client_env(self) -> dict[str, str]:
        return {}

    def operator_config(self, **fields: Any) -> dict[str, Any]:
        return {"flavor": "local", "root": str(self.root), **self.extra, **fields}

    def attempt_key(self, job_id: str) -> str:
        job = self.root / "jobs" / job_id / "job.json"
        if not job.is_file():
            raise KeyError(job_id)
        key: str = json.loads(job.read_text())["attempt_key"]
        return key

    def start(self) -> Self:
        return self

    def stop(self) -> None:
        pass

    def preempt(self, job_id: str) -> None:
        raise KeyError(job_id)

    def kill_node(self, job_id: str, node: int) -> None:
        raise KeyError(job_id)

    def script(self, job_id: str | None, steps: Any) -> None:
        raise ValueError("the local folder has no scripts")

    def job_ids(self) -> list[str]:
        jobs = self.root / "jobs"
        return sorted(path.name for path in jobs.iterdir()) if jobs.is_dir() else []

    def is_running(self, job_id: str) -> bool:
        return False


def test_the_fake_is_an_emulator(tmp_path: Path) -> None:
    assert isinstance(LocalFolderEmulator(tmp_path), Emulator)


def test_emulated_operator_points_the_flavor_at_the_emulator(tmp_path: Path) -> None:
    operator = emulated_operator(LocalFolderEmulator(tmp_path / "jobs-here"))
    assert isinstance(operator, LocalStepOperator)
    assert operator.name == "emulated"
    assert operator.root == (tmp_path / "jobs-here").resolve()


def test_emulated_operator_passes_name_clock_sleep_policy_and_fields(tmp_path: Path) -> None:
    slept: list[float] = []
    policy = LaunchPolicy(poll=PollPolicy(initial=0.5, factor=1.5, maximum=2.0))
    operator = emulated_operator(
        LocalFolderEmulator(tmp_path),
        name="gpu",
        clock=lambda: 42.0,
        sleep=slept.append,
        policy=policy,
        working_dir=str(tmp_path / "work"),
    )
    assert operator.name == "gpu"
    assert operator.clock() == 42.0
    operator.sleep(3.0)
    assert slept == [3.0]
    assert operator.policy is policy
    assert isinstance(operator, LocalStepOperator)
    assert operator.portable_config()["working_dir"] == str(tmp_path / "work")


def test_emulated_operator_refuses_a_bad_field_as_a_config_file_would(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        emulated_operator(LocalFolderEmulator(tmp_path), name="gpu", max_runtime=-5)
    assert caught.value.operator == "gpu" and caught.value.field == "max_runtime"


def test_the_table_is_the_config_emulated_operator_builds(tmp_path: Path) -> None:
    emulator = LocalFolderEmulator(
        tmp_path / 'a "quoted"\\ folder',
        {"environment": {"A B": "x\ny", "ÜNÏ": "\x7f\t", "EMPTY": ""}, "max_runtime": 2.5},
    )
    table = operator_table(emulator, working_dir=None, max_queue_time=60)
    assert table.startswith('flavor = "local"\n')
    assert "working_dir" not in table  # None: left unset
    document = tomllib.loads(f"[operators.gpu]\n{table}")
    entry = parse_config(document, source="steplift.toml").operators["gpu"]
    assert entry.flavor == "local"
    from_table = validate_operator(entry)
    direct = emulated_operator(emulator, max_queue_time=60).config
    assert from_table == direct


TOML_VALUES = st.recursive(
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])), TOML_VALUES))
def test_any_config_survives_the_table(fields: dict[str, Any]) -> None:
    fields.pop("flavor", None)
    emulator = LocalFolderEmulator(Path("/nowhere"))
    emulator.operator_config = lambda **_: {"flavor": "local", **fields}  # type: ignore[method-assign]
    assert tomllib.loads(operator_table(emulator)) == {"flavor": "local", **fields}


def test_a_value_toml_cannot_hold_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be written as TOML"):
        operator_table(LocalFolderEmulator(tmp_path, {"environment": {"A": None}}))
