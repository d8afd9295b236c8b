"""What an Azure ML job cost: the run history's startTimeUtc and endTimeUtc, as the emulator
reports them like Azure ML does; and its catalog key (the VM size in the config's region)."""

from __future__ import annotations

import pytest
from azureml_helpers import make_operator

from steplift.cost import PriceKey
from steplift.emulation import wait_until
from steplift.models import Resources, StepRunInfo
from steplift_azureml.emulator import AzureMLEmulator

# azure-ai-ml 1.35 declares marshmallow schemas with an option marshmallow 3.2x deprecates.
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")


def _info(step: str = "s") -> StepRunInfo:
    return StepRunInfo(
        pipeline="p",
        run="cost",
        step=step,
        resources=Resources(gpu="T4:1"),
        artifact_uri=f"azureblob://devstoreaccount1/steplift/runs/p/cost/{step}/1",
    )


def test_job_usage_is_the_runs_start_and_end_times(scripted_emulator: AzureMLEmulator) -> None:
    operator = make_operator(scripted_emulator)
    scripted_emulator.script(None, ["Queued", "Running", "Completed"])
    handle = operator.submit(_info(), ["python"], {})
    assert wait_until(lambda: operator.get_status(handle).state.is_terminal, timeout=30)
    usage = operator.job_usage(handle)
    assert usage is not None and usage.billable_seconds is None
    assert usage.started is not None and usage.ended is not None
    assert usage.ended >= usage.started


def test_the_price_key_is_the_vm_size_in_the_region(scripted_emulator: AzureMLEmulator) -> None:
    operator = make_operator(scripted_emulator, region="eastus")
    key = operator.price_key(_info())
    assert key.catalog == "steplift_azureml" and key.region == "eastus"
    ((size, count),) = key.parts
    assert size.startswith("Standard_NC") and "T4" in size and count == 1
    on_cluster = make_operator(scripted_emulator, gpu_clusters={"T4": "t4-cluster"})
    assert on_cluster.price_key(_info()) == PriceKey("steplift_azureml", None, ())
