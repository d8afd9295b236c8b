"""The vertex config: refused before any call with the field named; no Google SDK imported."""

from __future__ import annotations

from typing import Any

import pytest

from steplift.errors import ConfigError
from steplift.registry import get_flavor
from steplift.testing.processes import modules_loaded_by
from steplift_vertex.config import VertexStepOperatorConfig

BASE: dict[str, Any] = {
    "project": "my-project",
    "image": "us-docker.pkg.dev/my-project/train/steplift:1",
    "staging_bucket": "gs://my-bucket/steplift/",
}


def validate(**fields: Any) -> VertexStepOperatorConfig:
    config = get_flavor("vertex").validate_config(
        {**BASE, **fields}, file="steplift.toml", operator="gpu"
    )
    assert isinstance(config, VertexStepOperatorConfig)
    return config


def test_a_minimal_config_has_sensible_defaults() -> None:
    config = validate()
    assert config.location == "us-central1"
    assert config.staging_bucket == "gs://my-bucket/steplift"
    assert config.vertex_endpoint == "https://us-central1-aiplatform.googleapis.com"
    assert config.parent == "projects/my-project/locations/us-central1"
    assert config.credentials == "default"


def test_the_config_is_frozen_and_refuses_unknown_fields() -> None:
    config = validate()
    with pytest.raises(ValueError):
        config.project = "other"  # type: ignore[misc]
    with pytest.raises(ConfigError, match="field 'regoin': unknown field"):
        validate(regoin="us-east1")


def test_gpu_and_explicit_machines_are_normalised() -> None:
    assert validate(gpu="a100:8").gpu == "A100:8"
    config = validate(machine_type="n1-standard-8", accelerator_type="T4", accelerator_count=2)
    assert (config.accelerator_type, config.accelerator_count) == ("NVIDIA_TESLA_T4", 2)
    built_in = validate(machine_type="a2-highgpu-2g")
    assert built_in.accelerator_type is None and built_in.accelerator_count is None


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"project": "Bad_Project"}, "project", "project id"),
        ({"location": "mars"}, "location", "region"),
        ({"staging_bucket": "s3://bucket"}, "staging_bucket", "gs://"),
        ({"staging_bucket": "gs://B"}, "staging_bucket", "bucket name"),
        ({"image": ""}, "image", "at least 1"),
        ({"gpu": "A100:3"}, "gpu", "1, 2, 4, 8, 16"),
        ({"gpu": "K9000:1"}, "gpu", "unknown GPU type"),
        ({"gpu": "T4:1", "machine_type": "n1-standard-4"}, "gpu", "not both"),
        ({"machine_type": "z9-huge-1"}, "machine_type", "unknown machine family"),
        ({"machine_type": "n1-standard-4", "accelerator_type": "L4"}, "accelerator_type", "g2"),
        ({"machine_type": "a2-highgpu-8g", "accelerator_type": "T4"}, "accelerator_type", "A100"),
        ({"accelerator_type": "T4"}, "accelerator_type", "needs a machine_type"),
        (
            {"machine_type": "n1-standard-4", "accelerator_type": "T4", "accelerator_count": 3},
            "accelerator_count",
            "1, 2, 4",
        ),
        ({"machine_type": "a2-highgpu-8g", "accelerator_count": 4}, "accelerator_count", "8"),
        ({"replica_count": 0}, "replica_count", "greater than or equal to 1"),
        ({"boot_disk_size_gb": 50}, "boot_disk_size_gb", "100"),
        ({"max_runtime": 40 * 24 * 3600}, "max_runtime", "30 days"),
        ({"max_runtime": 0}, "max_runtime", "greater than 0"),
        ({"labels": {"Team": "ml"}}, "labels", "lowercase"),
        ({"labels": {"team": "ML"}}, "labels", "label value"),
        ({"labels": {"steplift-key": "x"}}, "labels", "reserved"),
        ({"labels": {f"k{i}": "v" for i in range(60)}}, "labels", "at most 59"),
        ({"display_name_prefix": "x" * 41}, "display_name_prefix", "at most 40"),
        ({"display_name_prefix": "-x"}, "display_name_prefix", "letters"),
        ({"service_account": "me@gmail.com"}, "service_account", "service account"),
        ({"network": "default"}, "network", "projects/"),
        ({"persistent_resource_id": "Pool_1"}, "persistent_resource_id", "lowercase"),
        ({"environment": {"1BAD": "x"}}, "environment", "environment variable"),
        ({"api_endpoint": "http://example.com"}, "api_endpoint", "127.0.0.1"),
        ({"api_endpoint": "ftp://host"}, "api_endpoint", "http(s) URL"),
        ({"credentials": "magic"}, "credentials", "'default' or 'anonymous'"),
        ({"spot": "sometimes"}, "spot", "boolean"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(
    fields: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(**fields)
    error = caught.value
    assert error.field == field, str(error)
    assert error.file == "steplift.toml" and error.operator == "gpu"
    assert words in str(error)
    assert "\n" not in str(error)


def test_missing_required_fields_are_named() -> None:
    with pytest.raises(ConfigError) as caught:
        get_flavor("vertex").validate_config({"image": "x", "staging_bucket": "gs://bkt/x"})
    assert caught.value.field == "project"


def test_importing_and_validating_imports_no_google_module() -> None:
    modules = modules_loaded_by(
        "import steplift_vertex, steplift_vertex.config, steplift_vertex.resources\n"
        "from steplift.registry import get_flavor\n"
        "flavor = get_flavor('vertex')\n"
        "config = flavor.validate_config({'project': 'my-project', 'image': 'i',\n"
        "    'staging_bucket': 'gs://bkt/x', 'gpu': 'A100:8'})\n"
        "operator = flavor.create(config)\n"
        "import steplift_vertex.requests, steplift_vertex.clients\n"
        "import steplift_vertex.store, steplift_vertex.emulator"
    )
    assert modules == []


def test_the_vertex_package_imports_no_aws_or_azure_sdk() -> None:
    modules = modules_loaded_by(
        "from steplift_vertex.emulator import VertexEmulator\n"
        "import steplift_vertex.operator, steplift_vertex.store, steplift_vertex.flavor\n"
        "with VertexEmulator('scripted', gcs=False) as emulator:\n"
        "    from steplift.registry import get_flavor\n"
        "    flavor = get_flavor('vertex')\n"
        "    fields = emulator.operator_config()\n"
        "    assert fields.pop('flavor') == 'vertex'\n"
        "    config = flavor.validate_config(fields)\n"
        "    operator = flavor.create(config)\n"
        "    operator.client\n"
        "    operator.artifact_store.client\n",
        roots=("google", "boto3", "botocore", "azure"),
    )
    assert "google.cloud.aiplatform_v1" in modules  # the probe really used the SDK
    banned = [name for name in modules if name.split(".")[0] in ("boto3", "botocore", "azure")]
    assert banned == []
