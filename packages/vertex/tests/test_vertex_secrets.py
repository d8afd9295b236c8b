"""Secrets on Vertex AI: Secret Manager references in the config, values read inside the job.

The value reaches the step, and appears nowhere else: not in the emulator's request log, not in
the CustomJob as the real client gets or lists it, not in the job's logs, not in CLI output.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from vertex_support import PARENT, job_client

import steplift
from steplift.cli import main
from steplift.config import create_operator
from steplift.errors import ConfigError, StepFailed
from steplift.models import StepRunInfo
from steplift.polling import PollPolicy
from steplift.registry import get_flavor
from steplift.secrets import SECRETS_ENV, installed_resolvers
from steplift.testing import steps
from steplift.testing.emulation import Faults
from steplift_vertex.emulator import VertexEmulator
from steplift_vertex.operator import VertexStepOperator
from steplift_vertex.secrets import (
    CREDENTIALS_ENV,
    ENDPOINT_ENV,
    GCPSecretResolver,
    SecretAccessError,
)

REFERENCE = "projects/steplift-emulator/secrets/token/versions/latest"
REAL_TIME_POLL = PollPolicy(initial=0.05, factor=1.5, maximum=0.2)
BASE: dict[str, Any] = {
    "project": "my-project",
    "image": "us-docker.pkg.dev/my-project/train/steplift:1",
    "staging_bucket": "gs://my-bucket/steplift",
}
DIGEST_COMMAND = (
    "import hashlib, os; "
    "print('digest', hashlib.sha256(os.environ['API_TOKEN'].encode()).hexdigest())"
)


def secret_value() -> str:
    """A value that cannot appear anywhere by accident."""
    return f"s3cr3t-{secrets.token_hex(12)}"


def leaked_forms(value: str) -> list[str]:
    """The value as it could leak: plain, base64 (the wire form) and JSON-escaped."""
    return [value, base64.b64encode(value.encode()).decode(), json.dumps(value)[1:-1]]


def assert_absent(value: str, text: str, where: str) -> None:
    for form in leaked_forms(value):
        assert form not in text, f"the secret value leaked into {where}"


def write_config(
    workdir: Path, emulator: VertexEmulator, secret_refs: dict[str, str] | None = None
) -> None:
    lines = ['default_operator = "vertex"', "[operators.vertex]"]
    lines += [f'{key} = "{value}"' for key, value in emulator.operator_config().items()]
    lines += ["[operators.vertex.secrets]"]
    lines += [f'{name} = "{ref}"' for name, ref in (secret_refs or {}).items()]
    (workdir / "steplift.toml").write_text("\n".join(lines) + "\n")


# -- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    [
        "projects/my-project/secrets/token/versions/latest",
        "projects/123456789012/secrets/API_token-2/versions/7",
    ],
)
def test_secret_manager_version_names_are_accepted(reference: str) -> None:
    config = get_flavor("vertex").validate_config({**BASE, "secrets": {"API_TOKEN": reference}})
    assert config.secrets == {"API_TOKEN": reference}


@pytest.mark.parametrize(
    "reference",
    [
        "projects/my-project/secrets/token",  # the secret, not a version
        "projects/my-project/secrets/token/versions/0",
        "projects/my-project/secrets/token/versions/latest/",
        "projects/My_Project/secrets/token/versions/1",
        "projects/my-project/secrets/to.ken/versions/1",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:token-AbCdEf",
        "https://vault.vault.azure.net/secrets/token",
        "token",
        "",
    ],
)
def test_other_references_are_refused_naming_the_field(reference: str) -> None:
    with pytest.raises(ConfigError) as caught:
        get_flavor("vertex").validate_config(
            {**BASE, "secrets": {"API_TOKEN": reference}}, file="steplift.toml", operator="gpu"
        )
    message = str(caught.value)
    assert caught.value.field == "secrets", message
    assert "API_TOKEN" in message and "Secret Manager" in message and "\n" not in message
    if reference:
        assert reference not in message  # it may be a value pasted by mistake


def test_a_value_pasted_as_a_reference_is_not_echoed() -> None:
    value = secret_value()
    with pytest.raises(ConfigError) as caught:
        get_flavor("vertex").validate_config({**BASE, "secrets": {"API_TOKEN": value}})
    assert_absent(value, str(caught.value) + repr(caught.value), "the config error")


def test_only_references_and_the_endpoint_go_into_the_job() -> None:
    flavor = get_flavor("vertex")
    info = StepRunInfo(pipeline="p", run="r", step="s", artifact_uri="gs://my-bucket/x")
    plain = flavor.create(flavor.validate_config(BASE))
    assert {SECRETS_ENV, ENDPOINT_ENV, CREDENTIALS_ENV}.isdisjoint(plain.job_environment(info))
    operator = flavor.create(flavor.validate_config({**BASE, "secrets": {"API_TOKEN": REFERENCE}}))
    environment = operator.job_environment(info)
    assert json.loads(environment[SECRETS_ENV]) == {"API_TOKEN": REFERENCE}
    assert environment[ENDPOINT_ENV] == "https://secretmanager.googleapis.com"
    assert CREDENTIALS_ENV not in environment and "API_TOKEN" not in environment


def test_a_bad_reference_is_refused_with_zero_api_calls(
    emulator: VertexEmulator, isolated_steplift: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(isolated_steplift, emulator, {"API_TOKEN": "projects/x/secrets/token"})
    with pytest.raises(ConfigError) as caught:
        step = steplift.step(operator="vertex")(steps.secret_digest)
        step.with_options(run="bad-ref")("API_TOKEN")
    assert caught.value.field == "secrets"
    assert main(["run", "--name", "bad-ref-cli", "--", "python", "-c", "pass"]) == 2
    err = capsys.readouterr().err
    assert "secrets" in err and "Traceback" not in err
    assert len(emulator.requests) == 0 and emulator.submissions() == 0


# -- the resolver against the emulated Secret Manager -------------------------------------------


def test_the_resolver_reads_versions_and_the_log_keeps_names_only(
    scripted: VertexEmulator,
) -> None:
    first, second = secret_value(), secret_value()
    assert scripted.add_secret("token", first).endswith("/secrets/token/versions/1")
    # The REST routes too (what `gcloud secrets create / versions add` would call).
    base = f"{scripted.endpoint_url}/v1/projects/steplift-emulator/secrets"
    created = requests.post(f"{base}?secretId=other", json={"replication": {"automatic": {}}})
    assert created.status_code == 200, created.text
    encoded = base64.b64encode(second.encode()).decode()
    added = requests.post(f"{base}/other:addVersion", json={"payload": {"data": encoded}})
    assert added.json()["name"] == "projects/steplift-emulator/secrets/other/versions/1"
    assert requests.post(f"{base}?secretId=other", json={}).status_code == 409

    resolver = GCPSecretResolver(endpoint=scripted.endpoint_url, anonymous=True)
    assert resolver.handles(REFERENCE) and not resolver.handles("arn:aws:secretsmanager:x")
    assert resolver.resolve(REFERENCE) == first
    assert resolver.resolve(REFERENCE.replace("token", "other")) == second
    scripted.add_secret("projects/steplift-emulator/secrets/token", second)
    assert resolver.resolve(REFERENCE) == second
    assert resolver.resolve(REFERENCE.replace("latest", "1")) == first

    with pytest.raises(SecretAccessError) as missing:
        resolver.resolve(REFERENCE.replace("latest", "3"))
    assert "versions/3" in str(missing.value) and "404 NOT_FOUND" in str(missing.value)
    with pytest.raises(SecretAccessError, match="404"):
        resolver.resolve(REFERENCE.replace("token", "nothing"))

    log = json.dumps([request.to_dict() for request in scripted.requests.list()])
    for value in (first, second):
        assert_absent(value, log, "the request log")
    operations = [request.operation for request in scripted.requests.list()]
    assert operations.count("AccessSecretVersion") == 6
    assert {"CreateSecret", "AddSecretVersion"} <= set(operations)
    assert all(request.service == "secretmanager" for request in scripted.requests.list())


def test_the_resolver_retries_throttling_and_errors(scripted: VertexEmulator) -> None:
    value = secret_value()
    scripted.add_secret("token", value)
    scripted.set_faults(Faults(throttle_rate=0.4, error_rate=0.3, seed=3))
    naps: list[float] = []
    resolver = GCPSecretResolver(endpoint=scripted.endpoint_url, anonymous=True, sleep=naps.append)
    resolver.attempts = 20
    for _ in range(5):
        assert resolver.resolve(REFERENCE) == value
    assert naps, "no call was refused: the faults did not apply"
    scripted.set_faults(Faults(error_rate=1.0))
    resolver.attempts = 3
    with pytest.raises(SecretAccessError) as caught:
        resolver.resolve(REFERENCE)
    assert "after 3 tries" in str(caught.value) and "503" in str(caught.value)


def test_the_resolver_is_installed_and_reads_its_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, "http://127.0.0.1:9/")
    monkeypatch.setenv(CREDENTIALS_ENV, "anonymous")
    [resolver] = [r for r in installed_resolvers() if isinstance(r, GCPSecretResolver)]
    assert resolver.endpoint == "http://127.0.0.1:9" and resolver.anonymous
    monkeypatch.delenv(ENDPOINT_ENV)
    monkeypatch.delenv(CREDENTIALS_ENV)
    default = GCPSecretResolver()
    assert default.endpoint == "https://secretmanager.googleapis.com" and not default.anonymous


# -- end to end on the executing emulator --------------------------------------------------------


def test_the_step_sees_the_value_and_it_leaks_nowhere(
    emulator: VertexEmulator, isolated_steplift: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    value = secret_value()
    emulator.add_secret("token", value)
    write_config(isolated_steplift, emulator, {"API_TOKEN": REFERENCE})
    operator = create_operator(
        "vertex", policy=replace(VertexStepOperator.launch_policy, poll=REAL_TIME_POLL)
    )
    assert isinstance(operator, VertexStepOperator)
    digest = hashlib.sha256(value.encode()).hexdigest()

    step = steplift.step(operator=operator)(steps.secret_digest)
    assert step.with_options(run="secret-sdk")("API_TOKEN") == digest

    assert main(["run", "--name", "secret-cli", "--", "python", "-c", DIGEST_COMMAND]) == 0
    assert main(["status", "secret-cli"]) == 0
    assert main(["logs", "secret-cli"]) == 0
    assert main(["status", "secret-sdk"]) == 0
    assert main(["logs", "secret-sdk"]) == 0
    out, err = capfd.readouterr()
    assert f"digest {digest}" in out  # the CLI's job really read the secret
    assert_absent(value, out + err, "CLI output")

    jobs = emulator.jobs.all_jobs()
    assert len(jobs) == 2 and all(job.state == "JOB_STATE_SUCCEEDED" for job in jobs)
    from google.cloud.aiplatform_v1 import CustomJob

    client = job_client(emulator)
    listed = [CustomJob.to_json(job) for job in client.list_custom_jobs(parent=PARENT)]
    fetched = [CustomJob.to_json(client.get_custom_job(name=job.name)) for job in jobs]
    for text in listed + fetched:
        assert REFERENCE in text  # the reference travels, the value does not
        assert_absent(value, text, "the CustomJob")
    logs: list[str] = []
    for job in jobs:
        answer = requests.post(
            f"{emulator.endpoint_url}/v2/entries:list",
            json={
                "resourceNames": ["projects/steplift-emulator"],
                "filter": f'resource.labels.job_id="{job.number}"',
            },
        ).json()
        assert answer.get("entries"), f"job {job.number} logged nothing"
        logs.append(json.dumps(answer))
    assert_absent(value, "\n".join(logs), "the job logs")
    assert any(f"digest {digest}" in text for text in logs)
    log = json.dumps([request.to_dict() for request in emulator.requests.list()])
    assert_absent(value, log, "the request log")
    assert len(emulator.requests.filter("AccessSecretVersion", "secretmanager")) == 2


def test_an_unreadable_secret_fails_the_step_naming_it(
    emulator: VertexEmulator, isolated_steplift: Path
) -> None:
    value = secret_value()
    emulator.add_secret("token", value)
    missing = REFERENCE.replace("latest", "2")
    write_config(isolated_steplift, emulator, {"API_TOKEN": missing})
    operator = create_operator(
        "vertex", policy=replace(VertexStepOperator.launch_policy, poll=REAL_TIME_POLL)
    )
    step = steplift.step(operator=operator)(steps.secret_digest).with_options(run="secret-bad")
    with pytest.raises(StepFailed) as caught:
        step("API_TOKEN")
    text = str(caught.value) + str(caught.value.remote_message)
    assert "API_TOKEN" in text and missing in text, text
    assert_absent(value, text, "the failure")


def test_without_anonymous_the_resolver_uses_application_default_credentials(
    scripted: VertexEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.auth
    from google.auth.credentials import AnonymousCredentials

    asked: list[Any] = []

    def fake_default(scopes: Any = None, **_: Any) -> tuple[Any, str]:
        asked.append(scopes)
        return AnonymousCredentials(), "steplift-emulator"  # type: ignore[no-untyped-call]

    monkeypatch.setattr(google.auth, "default", fake_default)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    value = secret_value()
    scripted.add_secret("token", value)
    resolver = GCPSecretResolver(endpoint=scripted.endpoint_url, anonymous=False)
    assert resolver.resolve(REFERENCE) == value
    assert asked == [["https://www.googleapis.com/auth/cloud-platform"]]
