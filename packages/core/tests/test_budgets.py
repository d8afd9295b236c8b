"""Budgets (max_cost on a step, an operator, a run) and plans, driven by an in-memory backend
on a virtual clock: no job runs and nothing sleeps for real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import steplift
from budget_helpers import MemoryOperator
from steplift.cli import main
from steplift.cost import PriceKey
from steplift.errors import BudgetExceeded, ConfigError, StepTimeout
from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.models import JobStatus
from steplift.operator import StepOperatorConfig
from steplift.runs import Run, RunIndex
from steplift.states import FailureKind, JobState

DOLLAR_A_SECOND = 3600.0  # price_per_hour: $1 per node-second keeps the arithmetic plain


def _launch(
    operator: MemoryOperator,
    run: Run,
    step: str = "train",
    index: RunIndex | None = None,
    **options: object,
) -> object:
    launcher = StepLauncher(operator, index=index)
    spec = StepSpec(kind="command", command=("python", "-c", "pass"))
    return launcher.run(spec, run=run, step=step, options=StepOptions(code=False, **options))  # type: ignore[arg-type]


def test_a_budget_becomes_the_max_runtime_and_stops_the_job(tmp_path: Path) -> None:
    operator = MemoryOperator(StepOperatorConfig(price_per_hour=DOLLAR_A_SECOND))
    index = RunIndex(tmp_path)
    with pytest.raises(BudgetExceeded) as caught:
        _launch(operator, Run("r1"), index=index, max_cost=3.0, max_runtime=600.0)
    assert operator.submitted[0].max_runtime == 3.0  # the smaller of the two wins
    error = caught.value
    assert isinstance(error, StepTimeout)
    assert error.max_cost == 3.0 and error.max_runtime == 3.0 and error.budget_owner == "step"
    assert "the step's max_cost left $3, which bought 3 s" in str(error)
    assert error.cost is not None and error.cost >= 3.0
    assert "cancel" in operator.calls  # the launcher's own deadline stopped it
    (record,) = index.steps("r1")
    assert record.max_cost == 3.0 and record.cost == error.cost
    assert "price_per_hour" in record.cost_basis


def test_a_job_the_cloud_stopped_at_its_budget_is_budget_exceeded() -> None:
    timed_out = JobStatus(
        state=JobState.FAILED,
        provider_state="Failed",
        message="MaxRuntimeExceeded",
        failure_kind=FailureKind.TIMEOUT,
    )
    operator = MemoryOperator(
        StepOperatorConfig(price_per_hour=DOLLAR_A_SECOND, max_cost=5.0), script=[timed_out]
    )
    with pytest.raises(BudgetExceeded, match=r"the operator's max_cost left \$5, which bought 5 s"):
        _launch(operator, Run("r2"))
    assert "cancel" not in operator.calls


def test_a_timeout_of_the_max_runtime_stays_a_step_timeout() -> None:
    operator = MemoryOperator(StepOperatorConfig(price_per_hour=DOLLAR_A_SECOND))
    with pytest.raises(StepTimeout) as caught:
        _launch(operator, Run("r3"), max_cost=100.0, max_runtime=4.0)
    assert not isinstance(caught.value, BudgetExceeded)
    assert operator.submitted[0].max_runtime == 4.0


def test_every_node_counts() -> None:
    operator = MemoryOperator(StepOperatorConfig(price_per_hour=DOLLAR_A_SECOND))
    resources = steplift.Resources(nodes=3)
    with pytest.raises(BudgetExceeded):
        _launch(operator, Run("r4"), max_cost=6.0, resources=resources)
    assert operator.submitted[0].max_runtime == 2.0  # $6 at $3 a second for three nodes


def test_retries_count_what_earlier_attempts_cost() -> None:
    preempted = JobStatus(
        state=JobState.FAILED, provider_state="Failed", failure_kind=FailureKind.PREEMPTED
    )
    running = JobStatus(state=JobState.RUNNING, provider_state="Running")
    operator = MemoryOperator(
        StepOperatorConfig(price_per_hour=DOLLAR_A_SECOND),
        script=[running, running, running, preempted, running],
    )
    run = Run("r5")
    with pytest.raises(BudgetExceeded):
        _launch(operator, run, max_cost=10.0, retries=1)
    first, second = operator.submitted
    assert first.max_runtime == 10.0
    assert second.max_runtime is not None and second.max_runtime < 10.0
    assert run.spent("train") >= 10.0


def test_a_run_budget_counts_earlier_steps_and_refuses_what_no_longer_fits() -> None:
    operator = MemoryOperator(StepOperatorConfig(price_per_hour=DOLLAR_A_SECOND))
    run = Run("r6", max_cost=4.5)
    with pytest.raises(BudgetExceeded):
        _launch(operator, run, step="first")
    assert run.spent() >= 4.0
    submitted = len(operator.submitted)
    with pytest.raises(ConfigError, match="field 'max_cost'.*the run's max_cost leaves"):
        _launch(operator, run, step="second")
    assert len(operator.submitted) == submitted  # refused before any call


@pytest.mark.parametrize("value", [-1.0, 0, "ten", True])
def test_bad_budgets_are_refused_before_any_call(value: object) -> None:
    with pytest.raises(ConfigError, match="field 'max_cost'"):
        steplift.step(max_cost=value)(print)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="field 'max_cost'"):
        Run("r7", max_cost=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="field 'max_cost'"):
        steplift.Flavor(
            name="memory", config="steplift.operator:StepOperatorConfig", operator="x:y"
        ).validate_config({"max_cost": value})


def test_a_budget_with_no_price_names_price_per_hour_before_any_call() -> None:
    unknown = PriceKey("steplift_sagemaker", "us-east-1", (("ml.g5.xlarge", 1),))
    operator = MemoryOperator(key=unknown)
    with pytest.raises(ConfigError, match="field 'price_per_hour'.*ml.g5.xlarge"):
        _launch(operator, Run("r8"), max_cost=10.0)
    assert operator.calls == []


def test_a_plan_makes_no_call_and_writes_nothing() -> None:
    operator = MemoryOperator(StepOperatorConfig(price_per_hour=7.2))
    launcher = StepLauncher(operator)
    spec = StepSpec(kind="command", command=("python", "train.py"))
    plan = launcher.plan(
        spec, run=Run("p1"), step="train", options=StepOptions(code=False, max_cost=0.2)
    )
    assert operator.calls == [] and operator.store.blobs == {}
    assert plan.max_runtime == 100.0  # $0.20 at $7.20/h
    assert plan.request == {"name": plan.request["name"], "max_runtime": 100.0}  # type: ignore[index]
    assert plan.budget is not None and plan.budget.binding
    assert plan.estimate.usd_per_hour == 7.2 and plan.estimate.at_most == pytest.approx(0.2)
    assert "--execution-info-uri" in plan.command
    text = plan.describe()
    assert "nothing was sent" in text and "bought by the step's max_cost ($0.2)" in text
    json.dumps(plan.as_dict())


def test_the_sdk_plans_a_step(tmp_path: Path) -> None:
    operator = MemoryOperator(StepOperatorConfig(price_per_hour=1.0))

    plan = steplift.plan(steplift.step(operator=operator, code=False)(double_it), 21)
    assert plan.step == "double_it" and plan.flavor == "memory"
    assert plan.estimate.usd_per_hour == 1.0
    assert operator.calls == [] and operator.store.blobs == {}


def double_it(value: int) -> int:
    return value * 2


def test_cli_plan_prints_the_request_and_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--name", "cp1", "--", "python", "-c", "pass"]) == 0
    out = capsys.readouterr().out
    assert "nothing was sent" in out and '"attempt_key": "default/cp1/python/1"' in out
    assert "estimate:    no price" in out
    assert not RunIndex().runs()  # a plan records no run
    assert main(["plan", "--json", "--name", "cp1", "--", "python", "-c", "pass"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["flavor"] == "local" and plan["request"]["nodes"] == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-cost", "-1"], "field 'max_cost': must be a positive number"),
        (["--max-cost", "ten"], "argument --max-cost: invalid float value"),
        (["--max-cost", "1"], "field 'price_per_hour'"),
    ],
)
def test_cli_refuses_bad_budgets_in_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    for command in ("plan", "run"):
        code: int | str | None
        try:
            code = main([command, *argv, "--", "python", "-c", "pass"])
        except SystemExit as exit_:
            code = exit_.code
        err = capsys.readouterr().err
        assert code == 2, err
        assert message in err and len(err.strip().splitlines()) == 1


def test_status_shows_each_attempts_cost_and_the_total(
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = RunIndex()
    operator = MemoryOperator(StepOperatorConfig(price_per_hour=DOLLAR_A_SECOND))
    with pytest.raises(BudgetExceeded) as caught:
        _launch(operator, Run("cs1"), index=index, max_cost=2.0)
    records = index.steps("cs1")
    for record in records:  # `steplift status` asks the job's operator; ours lives in memory
        record.handle = None
        index.record(record)
    assert main(["status", "cs1"]) == 0
    out = capsys.readouterr().out
    cost = caught.value.cost
    assert cost is not None
    assert f"${cost:.4f} of $2" in out and f"total cost: ${cost:.4f}" in out


def test_the_handle_exposes_the_cost() -> None:
    operator = MemoryOperator(StepOperatorConfig(price_per_hour=DOLLAR_A_SECOND))
    budgeted = steplift.step(operator=operator, code=False, max_cost=2.0)(double_it)
    handle = steplift.submit(budgeted, 1)
    with pytest.raises(BudgetExceeded):
        handle.wait(timeout=30)
    assert handle.cost is not None and handle.cost >= 2.0


def test_a_run_block_takes_a_budget() -> None:
    operator = MemoryOperator(StepOperatorConfig(price_per_hour=DOLLAR_A_SECOND))
    with steplift.run("r9", max_cost=2.0) as run:
        plan = steplift.plan(steplift.step(operator=operator, code=False)(double_it), 1)
    assert run.max_cost == 2.0
    assert plan.max_runtime == 2.0 and plan.budget is not None and plan.budget.owner == "run"
