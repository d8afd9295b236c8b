"""What a SageMaker job cost: BillableTimeInSeconds × InstanceCount, as the emulator reports it
in DescribeTrainingJob like SageMaker does; and its catalog key."""

from __future__ import annotations

from sagemaker_helpers import EmulatorClients, MakeOperator

from steplift.cost import PriceKey
from steplift.emulation import wait_until
from steplift.models import Resources, StepRunInfo

BUCKET = "s3://steplift-emulator-tests"


def _info(nodes: int = 1) -> StepRunInfo:
    return StepRunInfo(
        pipeline="p",
        run="cost",
        step=f"s{nodes}",
        resources=Resources(gpu="A10G:1", nodes=nodes),
        artifact_uri=f"{BUCKET}/runs/p/cost/s{nodes}/1",
    )


def test_job_usage_is_the_billable_time_of_every_instance(
    scripted: EmulatorClients, make_operator: MakeOperator
) -> None:
    operator = make_operator(scripted.emulator, bucket=BUCKET)
    info = _info(nodes=2)
    scripted.emulator.script(operator.job_name(info), ["Training", "Completed"])
    handle = operator.submit(info, ["python"], {})
    assert wait_until(lambda: operator.get_status(handle).state.is_terminal, timeout=30)
    usage = operator.job_usage(handle)
    assert usage is not None
    assert usage.billable_seconds is not None and usage.billable_seconds >= 1
    assert usage.instances == 2
    assert usage.started is not None and usage.ended is not None
    assert usage.ended >= usage.started


def test_the_price_key_is_the_instance_type_in_the_region(
    scripted: EmulatorClients, make_operator: MakeOperator
) -> None:
    operator = make_operator(scripted.emulator, bucket=BUCKET, spot=True)
    key = operator.price_key(_info())
    assert key == PriceKey(
        "steplift_sagemaker", operator.config.region, (("ml.g5.xlarge", 1),), spot=True
    )
