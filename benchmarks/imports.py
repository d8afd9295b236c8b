"""Start-up cost: ``import steplift``, ``steplift --help``, and each flavor's launch path next to
the official high-level SDK path, each in a fresh interpreter.

Every program runs as ``python -c CODE`` and is timed from outside (wall clock, interpreter
start included); the figure reported is that time minus ``python -c pass`` of the same
interpreter in the same round. Rounds interleave every program, so drift hits all alike.
Each program prints what it loaded (modules it added, cloud SDK packages, peak RSS).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .benchlib import Figure, progress

# Modules present at start-up (site's .pth files register the `google` namespace package, for
# one) are not the program's doing; only what the code adds is counted.
PREAMBLE = "import sys\n_at_start = set(sys.modules)\n"
REPORT = """
import json, resource
_added = set(sys.modules) - _at_start
roots = sorted({m.split('.')[0] for m in _added if m.split('.')[0] in
                ('boto3', 'botocore', 'google', 'azure', 'sagemaker')})
print('IMPORTS ' + json.dumps({'modules': len(_added), 'cloud_sdks': roots,
      'rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_OPERATOR = """
from steplift.registry import get_flavor
flavor = get_flavor({flavor!r})
operator = flavor.create(flavor.validate_config({fields!r}))
"""

SAGEMAKER_FIELDS = {
    "region": "us-east-1",
    "role_arn": "arn:aws:iam::123456789012:role/SageMakerRole",
    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest",
    "bucket": "s3://steplift-bench/runs",
    "endpoint_url": "http://127.0.0.1:9",
}
VERTEX_FIELDS = {
    "project": "bench-project",
    "location": "us-central1",
    "image": "local/steplift:bench",
    "staging_bucket": "gs://steplift-bench/steplift",
    "api_endpoint": "http://127.0.0.1:9",
    "logging_endpoint": "http://127.0.0.1:9",
    "storage_endpoint": "http://127.0.0.1:9",
    "credentials": "anonymous",
}
AZUREML_FIELDS = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "bench-rg",
    "workspace": "bench-ws",
    "cloud_endpoint": "https://127.0.0.1:9",
    "credential": "managed_identity",
    "artifact_root": "azureblob://devstoreaccount1/steplift/runs",
    "image": "python:3.11-slim",
    "compute": "cpu-cluster",
}
# Client construction makes no call; these only have to be well-formed (nothing listens on :9).
CHILD_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "IDENTITY_ENDPOINT": "https://127.0.0.1:9/msi/token",
    "IDENTITY_HEADER": "bench",
    "AZURE_STORAGE_CONNECTION_STRING": (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=YmVuY2g=;"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    ),
    "NO_PROXY": "127.0.0.1,localhost",
}

LAUNCH_PATHS = {
    # What launching a step on the flavor loads: the operator and every client it builds.
    "sagemaker": _OPERATOR.format(flavor="sagemaker", fields=SAGEMAKER_FIELDS)
    + "for service in ('sagemaker', 's3', 'logs'):\n    operator.client(service)\n",
    "vertex": _OPERATOR.format(flavor="vertex", fields=VERTEX_FIELDS)
    + "operator.client\noperator.artifact_store.client\n",
    "azureml": _OPERATOR.format(flavor="azureml", fields=AZUREML_FIELDS)
    + "operator.ml_client\noperator.run_history\n"
    + "operator.artifact_store._service('devstoreaccount1')\n",
}

PEER_PATHS = {
    # The official high-level path a user would import to run the same job.
    "sagemaker": (
        "SageMaker Python SDK `ModelTrainer` + `@remote`",
        "from sagemaker.train import ModelTrainer\n"
        "from sagemaker.core.remote_function import remote\n",
    ),
    "vertex": (
        "`google.cloud.aiplatform` CustomJob",
        "from google.cloud import aiplatform\naiplatform.CustomJob\n",
    ),
    "azureml": (
        "`azure.ai.ml` MLClient + command",
        "from azure.ai.ml import MLClient, command\n",
    ),
}


@dataclass(frozen=True)
class Program:
    """One thing to time: a name, an interpreter and the code (or command) it runs."""

    name: str
    command: tuple[str, ...]


def python_program(name: str, python: str, code: str) -> Program:
    """``python -c code``, reporting what it loaded at the end."""
    return Program(name, (python, "-c", PREAMBLE + code + REPORT))


def _run_once(program: Program, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    completed = subprocess.run(
        program.command, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{program.name} failed:\n{completed.stderr[-2000:]}")
    loaded: dict[str, Any] = {}
    for line in completed.stdout.splitlines():
        if line.startswith("IMPORTS "):
            loaded = json.loads(line[len("IMPORTS ") :])
    return elapsed, loaded


def time_programs(
    programs: Sequence[Program], baselines: dict[str, str], rounds: int
) -> dict[str, dict[str, Any]]:
    """Run every program ``rounds`` times, interleaved; wall time over the baseline.

    ``baselines`` maps an interpreter path to itself; ``python -c pass`` of each is timed in
    every round and subtracted from that round's figures of programs using it.
    """
    env = {**os.environ, **CHILD_ENV}
    samples: dict[str, list[float]] = {program.name: [] for program in programs}
    absolute: dict[str, list[float]] = {program.name: [] for program in programs}
    base_samples: dict[str, list[float]] = {python: [] for python in baselines}
    loaded: dict[str, dict[str, Any]] = {}
    for round_number in range(rounds + 1):  # round 0 warms the file cache and is dropped
        base = {
            python: _run_once(Program("pass", (python, "-c", "pass")), env)[0]
            for python in baselines
        }
        for program in programs:
            elapsed, report = _run_once(program, env)
            if round_number == 0:
                loaded[program.name] = report
                continue
            absolute[program.name].append(elapsed)
            samples[program.name].append(elapsed - base.get(program.command[0], 0.0))
        if round_number:
            for python, value in base.items():
                base_samples[python].append(value)
    results: dict[str, dict[str, Any]] = {}
    for program in programs:
        results[program.name] = {
            "over_pass": Figure.of(samples[program.name]).__dict__,
            "absolute": Figure.of(absolute[program.name]).__dict__,
            "loaded": loaded[program.name],
        }
    for python, values in base_samples.items():
        results[f"pass:{python}"] = {"absolute": Figure.of(values).__dict__}
    return results


def measure(python: str, sagemaker_python: str | None, rounds: int) -> dict[str, Any]:
    """Targets 1 and 2: the core's own cost and every flavor's launch path vs its peer."""
    steplift_cli = str(Path(python).parent / "steplift")
    programs = [
        python_program("import steplift", python, "import steplift\n"),
        Program("steplift --help", (steplift_cli, "--help")),
    ]
    for flavor, code in LAUNCH_PATHS.items():
        programs.append(python_program(f"steplift {flavor} launch path", python, code))
        peer_name, peer_code = PEER_PATHS[flavor]
        peer_python = sagemaker_python if flavor == "sagemaker" else python
        if peer_python is not None:
            programs.append(python_program(f"peer {flavor}: {peer_name}", peer_python, peer_code))
    baselines = {python: python}
    if sagemaker_python is not None:
        baselines[sagemaker_python] = sagemaker_python
    progress(f"imports: {len(programs)} programs x {rounds} rounds")
    results = time_programs(programs, baselines, rounds)
    results["steplift --help"]["over_pass"] = results["steplift --help"]["absolute"]
    return {"programs": results, "python": python, "sagemaker_python": sagemaker_python}
