"""``steplift plan`` against every cloud's emulator: the create request and the estimate are
printed, a budget is in the request as the cloud's own stopping condition, and not one
request reaches the emulator."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from steplift.cli import main
from steplift.emulation import Emulator, operator_table
from steplift.prices import load_catalog


def _sagemaker() -> Any:
    from steplift_sagemaker.emulator import SageMakerEmulator

    return SageMakerEmulator("scripted")


def _vertex() -> Any:
    from steplift_vertex.emulator import VertexEmulator

    return VertexEmulator("scripted", gcs=False)


def _azureml() -> Any:
    from steplift_azureml.emulator import AzureMLEmulator

    return AzureMLEmulator("scripted")


def _catalog_price(package: str, name: str, region: str) -> float:
    price = load_catalog(package).hourly(name, region)
    assert price is not None
    return price.usd_per_hour


def _iso(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"PT{minutes}M{rest}S" if minutes else f"PT{rest}S"


# cloud -> (emulator, operator fields, hourly price of the step, the stopping condition)
CLOUDS: dict[str, tuple[Callable[[], Any], dict[str, Any], Callable[[], float], Any]] = {
    "sagemaker": (
        _sagemaker,
        {"price_per_hour": 1.44},  # the catalog has no SageMaker training price
        lambda: 1.44,
        lambda request: request["StoppingCondition"]["MaxRuntimeInSeconds"],
    ),
    "vertex": (
        _vertex,
        {"machine_type": "n1-standard-4"},
        lambda: _catalog_price("vertex", "n1-standard-4", "us-central1"),
        lambda request: request["job_spec"]["scheduling"]["timeout"],
    ),
    "azureml": (
        _azureml,
        {"instance_type": "Standard_DS3_v2", "region": "eastus"},
        lambda: _catalog_price("azureml", "Standard_DS3_v2", "eastus"),
        lambda request: request["properties"]["limits"]["timeout"],
    ),
}


@pytest.fixture(params=sorted(CLOUDS))
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Emulator]]:
    """A scripted emulator and a steplift.toml whose operator ``cloud`` points at it."""
    name = request.param
    make, fields, _, _ = CLOUDS[name]
    with make() as emulator:
        table = operator_table(emulator, **fields)
        Path("steplift.toml").write_text(f"[operators.cloud]\n{table}")
        Path("train.py").write_text("print('training')\n")
        emulator.requests.clear()
        yield name, emulator


def _plan(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = main(
        ["plan", "--json", "--operator", "cloud", "--name", "p1", *argv, "--", "python", "train.py"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    plan: dict[str, Any] = json.loads(out)
    return plan


def test_plan_shows_request_and_estimate_without_a_request(
    cloud: tuple[str, Emulator], capsys: pytest.CaptureFixture[str]
) -> None:
    name, emulator = cloud
    _, _, price, _ = CLOUDS[name]
    plan = _plan(["--max-runtime", "3600"], capsys)
    assert plan["flavor"] == name and plan["request"]
    assert plan["estimate"]["usd_per_hour"] == pytest.approx(price())
    assert plan["estimate"]["at_most"] == pytest.approx(price())
    assert plan["code"]["uri"].endswith(f"{plan['code']['sha256']}.tar.gz")
    assert main(["plan", "--operator", "cloud", "--", "python", "train.py"]) == 0
    text = capsys.readouterr().out
    assert "nothing was sent" in text and "estimate:    $" in text
    assert len(emulator.requests) == 0


def test_a_budget_is_the_clouds_stopping_condition_in_the_request(
    cloud: tuple[str, Emulator], capsys: pytest.CaptureFixture[str]
) -> None:
    name, emulator = cloud
    _, _, price, stopping = CLOUDS[name]
    plan = _plan(["--max-cost", "0.1", "--nodes", "2"], capsys)
    nodes = plan["nodes"]
    bought = math.floor(round(0.1 / (price() * nodes) * 3600, 6))
    assert plan["max_runtime"] == bought
    assert plan["budget"]["binding"] and plan["budget"]["seconds"] == bought
    expected: object = {"sagemaker": bought, "vertex": f"{bought}s", "azureml": _iso(bought)}[name]
    assert stopping(plan["request"]) == expected
    assert len(emulator.requests) == 0


def test_a_step_the_cloud_would_refuse_exits_two_before_any_request(
    cloud: tuple[str, Emulator], capsys: pytest.CaptureFixture[str]
) -> None:
    _, emulator = cloud
    code = main(["plan", "--operator", "cloud", "--max-cost", "0.0001", "--", "python", "train.py"])
    err = capsys.readouterr().err
    assert code == 2
    assert "field 'max_cost'" in err and "shortest useful run" in err
    assert len(err.strip().splitlines()) == 1
    assert len(emulator.requests) == 0
