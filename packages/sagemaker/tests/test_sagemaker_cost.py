"""What a SageMaker job cost: BillableTimeInSeconds × InstanceCount, as the emulator reports it
in DescribeTrainingJob like SageMaker does; and its catalog key."""

from __future__ import annotations

import dataclasses

import pytest
from sagemaker_helpers import EmulatorClients, MakeOperator

from steplift.cost import PriceKey
from steplift.emulation import wait_until
from steplift.errors import BudgetExceeded
from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.models import Resources, StepRunInfo
from steplift.runs import Run
from steplift.states import FailureKind
from steplift_sagemaker.operator import SageMakerStepOperator

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


def test_the_emulated_cloud_stops_a_job_at_its_budget_and_a_relaunch_says_so(
    execute: EmulatorClients, make_operator: MakeOperator
) -> None:
    """A budget that buys 3 s is MaxRuntimeInSeconds = 3 in the request; the job is stopped
    by the (emulated) cloud with no launcher watching it, and the relaunch that adopts it
    raises BudgetExceeded with what it cost (BillableTimeInSeconds × $1 a second)."""
    policy = dataclasses.replace(SageMakerStepOperator.launch_policy, shortest_run=1.0)
    operator = make_operator(
        execute.emulator,
        bucket="s3://steplift-emulator-tests/budget",
        price_per_hour=3600.0,
        policy=policy,
    )
    spec = StepSpec.for_command(["python", "-c", "import time; time.sleep(60)"])
    options = StepOptions(code=False, max_cost=3.0)
    run = Run("budget-e2e")
    # The launcher that submits the job, then dies before watching it.
    launcher = StepLauncher(operator)
    info = launcher.step_info(run=run, step="train", attempt=1, options=options)
    info, _, budget = launcher.budgeted_info(info, run=run, options=options)
    assert budget is not None and budget.seconds == 3.0
    info_uri, digest = launcher.prepare(spec, info, launcher.plan_shipment(spec, options))
    command = launcher.entrypoint_command(info_uri, digest)
    request = operator.describe_request(info, command, operator.job_environment(info))
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] == 3
    handle = operator.submit(info, command, operator.job_environment(info))
    assert wait_until(lambda: operator.get_status(handle).state.is_terminal, timeout=60)
    assert operator.get_status(handle).failure_kind is FailureKind.TIMEOUT

    relaunch = StepLauncher(operator)
    with pytest.raises(BudgetExceeded) as caught:
        relaunch.run(spec, run=Run("budget-e2e"), step="train", options=options)
    error = caught.value
    assert error.max_cost == 3.0 and error.max_runtime == 3.0
    usage = operator.job_usage(handle)
    assert usage is not None and usage.billable_seconds is not None
    assert error.cost == pytest.approx(usage.billable_seconds)  # $1 a second, one instance
    assert "bought 3 s" in str(error) and f"it cost ${error.cost:.4g}" in str(error)
