"""Secrets: only references travel; the entrypoint resolves values inside the job."""

from __future__ import annotations

import json

import pytest

from steplift.errors import ConfigError, StepliftError
from steplift.flavors.local import FLAVOR
from steplift.models import StepRunInfo
from steplift.secrets import SECRETS_ENV, resolve_into


def test_only_references_go_into_the_job_environment() -> None:
    flavor = FLAVOR
    config = flavor.validate_config({"secrets": {"API_TOKEN": "vault://token"}})
    operator = flavor.create(config)
    info = StepRunInfo(pipeline="p", run="r", step="s", artifact_uri="/tmp/x")
    environment = operator.job_environment(info)
    assert json.loads(environment[SECRETS_ENV]) == {"API_TOKEN": "vault://token"}
    assert "API_TOKEN" not in environment


def test_secret_names_must_be_environment_variable_names() -> None:
    with pytest.raises(ConfigError) as caught:
        FLAVOR.validate_config({"secrets": {"NOT-A-NAME": "x"}}, file="f", operator="o")
    assert caught.value.field == "secrets"


def test_a_reference_no_resolver_reads_is_a_clear_error() -> None:
    environment = {SECRETS_ENV: json.dumps({"API_TOKEN": "nowhere://token"})}
    with pytest.raises(ConfigError) as caught:
        resolve_into(environment)
    assert "nowhere://token" in str(caught.value) and caught.value.field == "secrets.API_TOKEN"
    assert "API_TOKEN" not in {k for k in environment if k != SECRETS_ENV}


def test_resolvers_put_values_into_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    class Fake:
        def handles(self, reference: str) -> bool:
            return reference.startswith("fake://")

        def resolve(self, reference: str) -> str:
            if reference == "fake://broken":
                raise OSError("store unreachable")
            return reference.removeprefix("fake://").upper()

    monkeypatch.setattr("steplift.secrets.installed_resolvers", lambda: [Fake()])
    environment = {SECRETS_ENV: json.dumps({"A": "fake://alpha", "B": "fake://beta"})}
    assert resolve_into(environment) == ["A", "B"]
    assert environment["A"] == "ALPHA" and environment["B"] == "BETA"
    with pytest.raises(StepliftError, match="could not read secret C from fake://broken"):
        resolve_into({SECRETS_ENV: json.dumps({"C": "fake://broken"})})


def test_no_secrets_means_nothing_happens() -> None:
    environment: dict[str, str] = {}
    assert resolve_into(environment) == [] and environment == {}
