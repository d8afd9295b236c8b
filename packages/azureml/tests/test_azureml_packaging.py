"""Imports, the store, resources, config refusals and the ``steplift emulator azureml`` CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from azureml_helpers import ACCOUNT, CONTAINER

from steplift.errors import ConfigError
from steplift.models import Resources
from steplift.registry import get_flavor
from steplift.store import store_for_uri
from steplift.testing.processes import modules_loaded_by
from steplift_azureml.emulator.storage import Azurite, find_azurite
from steplift_azureml.flavor import FLAVOR
from steplift_azureml.resources import resolve_vm_size, vm_size_for_gpu
from steplift_azureml.store import AzureBlobArtifactStore

VALID: dict[str, Any] = {
    "subscription_id": "11111111-2222-3333-4444-555555555555",
    "resource_group": "ml-rg",
    "workspace": "ml-ws",
    "artifact_root": "azureblob://mystorage/steplift/root",
    "image": "python:3.11",
    "gpu": "A100:1",
}


def test_importing_and_validating_imports_no_azure_sdk() -> None:
    code = (
        "import steplift_azureml, steplift_azureml.emulator\n"
        "from steplift.registry import get_flavor\n"
        f"config = get_flavor('azureml').validate_config({VALID!r})\n"
        "assert config.gpu == 'A100:1'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "AZUREML_CURRENT_CLOUD"}
    assert modules_loaded_by(code, env=env) == []


def test_the_operator_imports_no_boto3_or_google() -> None:
    code = (
        "import steplift_azureml.operator, steplift_azureml.clients, steplift_azureml.store\n"
        "import steplift_azureml.emulator.service\n"
        "import azure.ai.ml, azure.storage.blob, azure.identity\n"
    )
    # A fresh interpreter, without the cloud an MLClient of this process registered.
    env = {k: v for k, v in os.environ.items() if k != "AZUREML_CURRENT_CLOUD"}
    assert modules_loaded_by(code, roots=("boto3", "botocore", "google"), env=env) == []


def test_flavor_and_store_are_registered_entry_points() -> None:
    assert get_flavor("azureml") is FLAVOR
    assert isinstance(store_for_uri("azureblob://acct123/container/x"), AzureBlobArtifactStore)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"resource_group": "bad rg name"}, "resource_group"),
        ({"workspace": "-ws"}, "workspace"),
        ({"gpu": "K80:1"}, "gpu"),
        ({"gpu": None, "instance_type": "Standard_XL_v99"}, "instance_type"),
        ({"gpu": None}, "compute"),
        ({"image": None}, "image"),
        ({"environment_name": "env"}, "environment_name"),
        ({"spot": True, "gpu": None, "compute": "cpu-cluster"}, "spot_compute"),
        ({"gpu_clusters": {"A100": "x"}}, "gpu_clusters"),
        ({"job_tier": "Gold"}, "job_tier"),
        ({"identity": "root"}, "identity"),
        ({"artifact_root": "azureblob://UPPER/c/x"}, "artifact_root"),
        ({"max_runtime": 0}, "max_runtime"),
        ({"instance_count": 0}, "instance_count"),
    ],
)
def test_invalid_config_names_the_field(changes: dict[str, Any], field: str) -> None:
    fields = {key: value for key, value in {**VALID, **changes}.items() if value is not None}
    with pytest.raises(ConfigError) as caught:
        FLAVOR.validate_config(fields, file="steplift.toml", operator="gpu")
    assert caught.value.field == field
    assert "\n" not in str(caught.value)


def test_gpu_mapping_picks_the_smallest_fitting_size_and_lists_what_exists() -> None:
    assert vm_size_for_gpu("A100:1").name == "Standard_NC24ads_A100_v4"
    with pytest.raises(ValueError, match="with 30 vCPU"):
        vm_size_for_gpu("A100:1", cpu=30)
    assert vm_size_for_gpu("T4:1", cpu=8).name == "Standard_NC8as_T4_v3"
    with pytest.raises(ValueError, match="GPU types: A10, A100, H100, T4, V100"):
        vm_size_for_gpu("K80:1")
    with pytest.raises(ConfigError, match="H100 counts per VM: 1, 2, 8"):
        resolve_vm_size(Resources(gpu="H100:4"))
    cpu = resolve_vm_size(Resources(cpu=8, memory_gb=30))
    assert cpu is not None and cpu.name == "Standard_D8s_v3"
    assert resolve_vm_size(Resources()) is None


def test_blob_store_round_trip_on_azurite(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    store = store_for_uri(f"azureblob://{ACCOUNT}/{CONTAINER}-store/x")
    root = f"azureblob://{ACCOUNT}/{CONTAINER}-store/runs"
    assert store.list(root) == []
    assert not store.exists(f"azureblob://{ACCOUNT}/no-such-container/x")
    store.put(f"{root}/a/result.json", b'{"ok": true}')
    store.put(f"{root}/a/inputs.pkl", b"\x00\x01")
    store.put(f"{root}-other/x", b"not under root")
    assert store.get(f"{root}/a/result.json") == b'{"ok": true}'
    assert store.exists(f"{root}/a/inputs.pkl")
    assert not store.exists(f"{root}/a/missing")
    with pytest.raises(FileNotFoundError):
        store.get(f"{root}/a/missing")
    assert store.list(root) == [f"{root}/a/inputs.pkl", f"{root}/a/result.json"]
    with pytest.raises(ConfigError, match="not 'otheraccount'"):
        store.get("azureblob://otheraccount/cont/x")


def test_azurite_is_found_from_the_environment(tmp_path: Path) -> None:
    found = find_azurite()
    assert found is not None
    folder = found.parents[2] if found.parent.name == ".bin" else found.parent
    assert find_azurite({"STEPLIFT_AZURITE": str(folder)}) is not None
    assert find_azurite({"STEPLIFT_AZURITE": str(tmp_path)}) is None


def test_cli_serves_the_emulator_and_prints_the_client_environment() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "steplift.cli",
            "emulator",
            "azureml",
            "--port",
            "0",
            "--no-azurite",
            "--mode",
            "scripted",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        give_up = time.monotonic() + 30
        while time.monotonic() < give_up:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.startswith("control API"):
                break
        text = "\n".join(lines)
        assert "Azure ML emulator (scripted mode) listening on https://127.0.0.1:" in text
        assert "export REQUESTS_CA_BUNDLE=" in text
        assert "export IDENTITY_ENDPOINT=https://127.0.0.1:" in text
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(15)
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()
    assert code == 0


def test_main_refuses_to_start_without_azurite(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from steplift_azureml.emulator import main

    monkeypatch.setenv("STEPLIFT_AZURITE", str(tmp_path))
    assert main(["--port", "0"]) == 2
    assert "npm install --prefix" in capsys.readouterr().err
    assert os.environ["STEPLIFT_AZURITE"] == str(tmp_path)


def test_main_runs_a_command_against_the_emulator(tmp_path: Path) -> None:
    from steplift_azureml.emulator import main

    out = tmp_path / "seen.txt"
    code = (
        "import os, pathlib, tomllib\n"
        "config = tomllib.loads(pathlib.Path(os.environ['STEPLIFT_CONFIG']).read_text())\n"
        "operator = config['operators'][config['default_operator']]\n"
        f"pathlib.Path({str(out)!r}).write_text(operator['flavor'] + ' ' + "
        "os.environ['REQUESTS_CA_BUNDLE'])\n"
    )
    assert main(["--mode", "scripted", "--no-azurite", "--", sys.executable, "-c", code]) == 0
    flavor, bundle = out.read_text().split(" ")
    assert flavor == "azureml"
    assert not Path(bundle).exists()  # the emulator removed its certificate when it stopped
