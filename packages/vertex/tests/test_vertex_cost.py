"""What a Vertex AI job cost: its CustomJob's startTime and endTime, as the emulator reports
them like Vertex does; and its catalog key (the machine plus its accelerators)."""

from __future__ import annotations

from vertex_support import OperatorFactory

from steplift.cost import PriceKey
from steplift.emulation import wait_until
from steplift.models import Resources, StepRunInfo
from steplift_vertex.emulator import VertexEmulator


def _info() -> StepRunInfo:
    return StepRunInfo(
        pipeline="p",
        run="cost",
        step="s",
        resources=Resources(gpu="T4:1"),
        artifact_uri="gs://steplift-test/runs/p/cost/s/1",
    )


def test_job_usage_is_the_jobs_start_and_end_times(
    scripted: VertexEmulator, make_operator: OperatorFactory
) -> None:
    operator = make_operator(scripted)
    scripted.script(None, ["RUNNING", "SUCCEEDED"])
    handle = operator.submit(_info(), ["python"], {})
    assert wait_until(lambda: operator.get_status(handle).state.is_terminal, timeout=30)
    usage = operator.job_usage(handle)
    assert usage is not None and usage.billable_seconds is None
    assert usage.started is not None and usage.ended is not None
    assert usage.ended >= usage.started


def test_the_price_key_is_the_machine_and_its_accelerators(
    scripted: VertexEmulator, make_operator: OperatorFactory
) -> None:
    operator = make_operator(scripted)
    key = operator.price_key(_info())
    assert key == PriceKey(
        "steplift_vertex",
        operator.config.location,
        (("n1-standard-4", 1), ("NVIDIA_TESLA_T4", 1)),
        spot=False,
    )
