"""Key Vault secrets reach the step, and their value shows up nowhere else."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from azureml_helpers import CONTAINER, operator_fields

import steplift
from steplift.errors import ConfigError
from steplift.runs import RunIndex
from steplift.testing import steps
from steplift_azureml.clients import make_credential, make_ml_client
from steplift_azureml.emulator import AzureMLEmulator
from steplift_azureml.flavor import FLAVOR
from steplift_azureml.secrets import KeyVaultSecretResolver, parse_reference

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

VALUE = "kv-s3cr3t-value-that-must-not-leak"
DIGEST = hashlib.sha256(VALUE.encode()).hexdigest()
CLI = [sys.executable, "-m", "steplift.cli"]


@pytest.fixture(scope="module")
def reference(execute_emulator: AzureMLEmulator) -> str:
    return execute_emulator.add_secret("token", VALUE)


def write_config(folder: Path, emulator: AzureMLEmulator, secrets: dict[str, str]) -> None:
    fields = operator_fields(emulator, secrets=secrets)
    lines = ['default_operator = "azure"', "[operators.azure]", 'flavor = "azureml"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in fields.items() if key != "secrets"]
    table = ", ".join(f"{name} = {json.dumps(ref)}" for name, ref in secrets.items())
    lines.append(f"secrets = {{ {table} }}")
    (folder / "steplift.toml").write_text("\n".join(lines) + "\n")


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180)
    assert not check or out.returncode == 0, (args, out.returncode, out.stdout, out.stderr)
    return out


def files_under(*folders: Path) -> bytes:
    return b"".join(
        path.read_bytes() for folder in folders for path in folder.rglob("*") if path.is_file()
    )


def test_the_step_sees_the_secret_and_nothing_else_does(
    execute_emulator: AzureMLEmulator,
    reference: str,
    isolated_steplift: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_config(isolated_steplift, execute_emulator, {"API_TOKEN": reference})
    with steplift.run("secret-sdk") as run:
        digest = steplift.submit(steps.secret_digest, "API_TOKEN").wait(timeout=120)
    assert digest == DIGEST

    record = RunIndex().steps(run.name)[0]
    assert record.handle is not None
    job_id = record.handle.job_id

    # The job definition and what jobs.get/list return carry the reference, never the value.
    config = FLAVOR.validate_config(operator_fields(execute_emulator))
    ml_client = make_ml_client(config, make_credential(config))
    got = json.dumps(ml_client.jobs.get(job_id)._to_dict(), default=str)
    listed = json.dumps([job._to_dict() for job in ml_client.jobs.list()], default=str)
    assert reference in got
    assert VALUE not in got and VALUE not in listed

    # Every request the emulator saw (params, queries, bodies) and every log file of the job.
    sent = json.dumps([request.params for request in execute_emulator.requests.list()])
    assert execute_emulator.requests.filter("GetSecret")
    assert VALUE not in sent
    job = execute_emulator.jobs[job_id]
    logs = b"".join(job.log_bytes(name) or b"" for name in sorted(job.logs))
    assert b"API_TOKEN is set: True" in logs
    assert VALUE.encode() not in logs

    # The artifact store (inputs, result, receipts) and steplift's local state.
    from azure.storage.blob import ContainerClient

    connection = execute_emulator.storage_connection_string
    assert connection is not None
    container = ContainerClient.from_connection_string(connection, CONTAINER)
    blobs = [container.download_blob(blob.name).readall() for blob in container.list_blobs()]
    assert blobs and not any(VALUE.encode() in blob for blob in blobs)
    assert VALUE.encode() not in files_under(isolated_steplift, isolated_steplift.parent / "home")

    outputs = [cli(*args) for args in (["status", run.name], ["logs", run.name], ["list"])]
    assert all(VALUE not in out.stdout + out.stderr for out in outputs)
    assert "API_TOKEN is set: True" in outputs[1].stdout
    out, err = capsys.readouterr()
    assert VALUE not in out + err


def test_a_command_gets_the_secret_through_the_cli(
    execute_emulator: AzureMLEmulator, reference: str, isolated_steplift: Path
) -> None:
    write_config(isolated_steplift, execute_emulator, {"API_TOKEN": reference})
    script = (
        "import hashlib, os; print(hashlib.sha256(os.environ['API_TOKEN'].encode()).hexdigest())"
    )
    run = cli("run", "--name", "secret-cli", "--", "python", "-c", script)
    assert DIGEST in run.stdout
    outputs = [run, cli("status", "secret-cli"), cli("logs", "secret-cli")]
    assert all(VALUE not in out.stdout + out.stderr for out in outputs)
    assert DIGEST in outputs[2].stdout


def test_a_pinned_version_is_read_and_a_missing_secret_fails_naming_only_the_reference(
    execute_emulator: AzureMLEmulator, reference: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process, as the entrypoint does it (the job's identity here: the client's).
    newer = execute_emulator.add_secret("rotated", "first-value")
    first = execute_emulator.secret_versions("rotated")[0]
    execute_emulator.add_secret("rotated", "second-value")
    resolver = KeyVaultSecretResolver()
    assert resolver.handles(reference) and not resolver.handles("arn:aws:secretsmanager:x")
    assert resolver.resolve(newer) == "second-value"
    assert resolver.resolve(f"{newer}/{first}") == "first-value"
    with pytest.raises(Exception) as caught:
        resolver.resolve(reference.replace("/token", "/missing"))
    assert "404 SecretNotFound" in str(caught.value)
    assert "/secrets/missing" in str(caught.value)


def test_the_vault_refuses_a_token_for_another_audience(
    execute_emulator: AzureMLEmulator,
) -> None:
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy
    from azure.core.rest import HttpRequest
    from azure.identity import ManagedIdentityCredential

    policy = BearerTokenCredentialPolicy(
        ManagedIdentityCredential(), execute_emulator.endpoint_url + "/.default"
    )
    client: PipelineClient[Any, Any] = PipelineClient(base_url="", policies=[policy])
    url = parse_reference(execute_emulator.add_secret("other", VALUE)).request_url(
        execute_emulator.keyvault_endpoint
    )
    response = client.send_request(HttpRequest("GET", url))
    assert response.status_code == 401
    assert VALUE not in response.text()


@pytest.mark.parametrize(
    "bad",
    [
        "sk-live-plain-secret-pasted-by-mistake",
        "http://myvault.vault.azure.net/secrets/token",
        "https://myvault.vault.example.com/secrets/token",
        "https://my_vault.vault.azure.net/secrets/token",
        "https://myvault.vault.azure.net/keys/token",
        "https://myvault.vault.azure.net/secrets/token/not-a-version",
        "https://myvault.vault.azure.net/secrets/",
    ],
)
def test_a_bad_reference_is_refused_with_zero_api_calls(
    execute_emulator: AzureMLEmulator, bad: str
) -> None:
    before = len(execute_emulator.requests.list())
    with pytest.raises(ConfigError) as caught:
        FLAVOR.validate_config(
            operator_fields(execute_emulator, secrets={"API_TOKEN": bad}),
            file="steplift.toml",
            operator="azure",
        )
    assert caught.value.field == "secrets"
    assert "API_TOKEN" in str(caught.value)
    if not bad.startswith("http"):
        assert bad not in str(caught.value)  # in case it was the value itself
    assert len(execute_emulator.requests.list()) == before


def test_the_cli_refuses_a_bad_reference_with_exit_2_and_no_call(
    execute_emulator: AzureMLEmulator, isolated_steplift: Path
) -> None:
    pasted = "sk-live-plain-secret-pasted-by-mistake"
    write_config(isolated_steplift, execute_emulator, {"API_TOKEN": pasted})
    before = len(execute_emulator.requests.list())
    out = cli("run", "--name", "secret-bad", "--", "python", "-c", "pass", check=False)
    assert out.returncode == 2
    assert "secrets" in out.stderr and "Traceback" not in out.stderr
    assert pasted not in out.stdout + out.stderr
    assert len(execute_emulator.requests.list()) == before
