"""Chaos run: many steps through each flavor while everything goes wrong.

    python -m steplift.emulation.chaos --steps 200 [--flavors local,sagemaker,vertex] [--seed 1]

Every installed emulator's flavor takes part unless ``--flavors`` names some (``nox -s chaos``
and the test suite's short run both use this module).

For each flavor (against its executing emulator for the clouds): every step is launched by its
own launcher process, running `steplift.testing.steps.add_and_log(i, i)` with retries; the
emulator throttles 30 % and fails 5 % of control-plane calls; launchers are SIGKILLed at random
and relaunched (the relaunch must adopt the job and recover its result), or interrupted with
SIGINT (the job must end cancelled); running spot jobs are preempted at random (a step that is
preempted more often than its retries allow "gives up" with a StepFailed of kind preempted).
The table at the end must show every step accounted for, no unexpected failure, results
recovered after every kill, no step attempt with more than one job (``dup``: jobs beyond the
first of an attempt, by job name or, on Vertex AI, by the attempt's label) and no job left
running.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

RUN = "chaos"
RETRIES = 2
TRANSIENT_KINDS = ("preempted", "capacity", "infrastructure")


@dataclass
class Outcome:
    """What happened to one step."""

    step: str
    result: str  # succeeded | interrupted | gave up | failed
    kills: int = 0
    recovered: bool | None = None  # after a kill: did a relaunch return the right value?
    detail: str = ""


@dataclass
class Report:
    flavor: str
    outcomes: list[Outcome] = field(default_factory=list)
    jobs: int = 0
    duplicates: int = 0
    """Jobs beyond the first of one step attempt (a create that happened twice)."""
    attempts: int = 0
    left_running: int = 0
    preemptions: int = 0
    wall: float = 0.0


# -- the launcher side: one step, in its own process -------------------------------------------


def launch_one(step: str, value: int) -> int:
    """Run one step through the configured operator; print its result; exit like the CLI."""
    import steplift
    from steplift.testing import steps

    function = steplift.step(name=step, retries=RETRIES)(steps.add_and_log)
    try:
        with steplift.run(RUN):
            result = function(value, value)
    except steplift.StepCancelled:
        return 130
    except steplift.StepliftError as error:
        print(f"FAILED {type(error).__name__}: {error}", flush=True)
        return 1
    print(f"RESULT {json.dumps(result)}", flush=True)
    return 0


# -- the driver side ---------------------------------------------------------------------------


@contextmanager
def local_backend(root: Path, report: Report) -> Iterator[tuple[str, Callable[[], int]]]:
    """The local flavor: no emulator; jobs are supervised processes under ``root``."""
    from steplift.flavors.local import FLAVOR, LocalStepOperator
    from steplift.models import JobHandle

    flavor = FLAVOR
    operator = flavor.create(flavor.validate_config({"root": str(root / "local")}))
    assert isinstance(operator, LocalStepOperator)

    def handles() -> list[JobHandle]:
        jobs = operator.jobs_dir
        names = (
            [p.name for p in jobs.iterdir() if not p.name.startswith(".")] if jobs.is_dir() else []
        )
        return [JobHandle(flavor="local", job_id=name, name=name) for name in names]

    def running() -> int:
        return sum(1 for handle in handles() if operator.running_processes(handle))

    yield f'flavor = "local"\nroot = "{root / "local"}"\n', running
    report.jobs = len(handles())


@contextmanager
def cloud_backend(
    flavor: str, rng: random.Random, stop: threading.Event, report: Report
) -> Iterator[tuple[str, Callable[[], int]]]:
    """A cloud's executing emulator (found through its entry point) with throttling, 5xx and
    spot preemptions."""
    from steplift.emulation import Faults, operator_table
    from steplift.registry import installed_emulators

    with installed_emulators()[flavor].load()(mode="execute") as emulator:
        os.environ.update(emulator.client_env())
        # The launchers run steplift from this environment: their jobs' image is this one
        # (a stock image has no steplift until jobs install it themselves).
        emulator.images.register(emulator.operator_config()["image"], sys.prefix)

        def running_jobs() -> list[str]:
            return [job for job in emulator.job_ids() if emulator.is_running(job)]

        def preempt_now_and_then() -> None:
            while not stop.wait(0.5):
                running = running_jobs()
                if running and rng.random() < 0.5:
                    try:
                        emulator.preempt(rng.choice(running))
                        report.preemptions += 1
                    except (KeyError, ValueError):
                        continue  # it ended meanwhile

        def calm_then_count() -> int:
            # The steps are done: stop the chaos, then count what still runs.
            stop.set()
            emulator.set_faults(Faults())
            return len(running_jobs())

        emulator.set_faults(Faults(throttle_rate=0.3, error_rate=0.05, seed=rng.randrange(10**6)))
        preempter = threading.Thread(target=preempt_now_and_then, daemon=True)
        preempter.start()
        try:
            yield operator_table(emulator, spot=True), calm_then_count
        finally:
            stop.set()
            preempter.join(5)
            emulator.set_faults(Faults())
            report.jobs = len(emulator.job_ids())
            # Jobs beyond the first of a step attempt: a create that happened twice.
            attempts = {emulator.attempt_key(job_id) for job_id in emulator.job_ids()}
            report.duplicates = report.jobs - len(attempts)


def drive_step(index: int, env: dict[str, str], rng: random.Random) -> Outcome:
    """Launch one step, killing or interrupting its launcher at random, relaunching after kills."""
    step = f"s{index}"
    outcome = Outcome(step=step, result="failed")
    command = [sys.executable, "-m", "steplift.emulation.chaos", "launch", step, str(index)]
    for launch in range(6):
        action = (
            rng.choices(["none", "kill", "interrupt"], [0.6, 0.3, 0.1])[0]
            if launch == 0
            else (rng.choices(["none", "kill"], [0.8, 0.2])[0])
        )
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        if action != "none":
            time.sleep(rng.uniform(0.2, 1.5))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL if action == "kill" else signal.SIGINT)
        out, err = process.communicate(timeout=300)
        code = process.returncode
        if code == -signal.SIGKILL:
            outcome.kills += 1
            continue  # the launcher died: relaunch, which must adopt the job
        if code == 0:
            outcome.result = "succeeded"
            value = json.loads(out.split("RESULT ", 1)[1]) if "RESULT " in out else None
            if outcome.kills:
                outcome.recovered = value == 2 * index
            return outcome
        outcome.result = "interrupted" if code in (130, -signal.SIGINT) else "failed"
        if code == 1 and any(f"({kind})" in out for kind in TRANSIENT_KINDS):
            outcome.result = "gave up"  # a transient failure outlasted the step's retries
        last_error = " | ".join(err.strip().splitlines()[-12:]) if err.strip() else f"exit {code}"
        outcome.detail = (
            out.split("FAILED ", 1)[1].strip()[:300] if "FAILED " in out else last_error
        )
        if outcome.kills:
            outcome.recovered = False
        return outcome
    return outcome


def settle(count_running: Callable[[], int], timeout: float = 60.0) -> int:
    """Wait (bounded) for cancelled jobs to wind down; return how many still run."""
    give_up = time.monotonic() + timeout
    while (running := count_running()) and time.monotonic() < give_up:
        time.sleep(0.5)
    return running


def run_flavor(flavor: str, steps: int, seed: int, workers: int) -> Report:
    rng = random.Random(seed)
    report = Report(flavor)
    stop = threading.Event()
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix=f"chaos-{flavor}-") as folder:
        root = Path(folder)
        backend = (
            local_backend(root, report)
            if flavor == "local"
            else cloud_backend(flavor, rng, stop, report)
        )
        started = time.monotonic()
        try:
            with backend as (table, count_running):
                config = root / "steplift.toml"
                config.write_text(f'default_operator = "chaos"\n[operators.chaos]\n{table}')
                env = {
                    **os.environ,
                    "STEPLIFT_CONFIG": str(config),
                    "STEPLIFT_HOME": str(root / "home"),
                }
                seeds = [rng.randrange(10**9) for _ in range(steps)]
                with ThreadPoolExecutor(workers) as pool:
                    futures = [
                        pool.submit(drive_step, i, env, random.Random(seeds[i]))
                        for i in range(steps)
                    ]
                    report.outcomes = [future.result() for future in futures]
                report.left_running = settle(count_running)
                from steplift.runs import RunIndex

                index_root = root / "home" / "runs"
                report.attempts = len(RunIndex(index_root).steps(RUN)) if index_root.is_dir() else 0
        finally:
            os.environ.clear()
            os.environ.update(saved)  # the emulators put their client environment there
        report.wall = time.monotonic() - started
    return report


def print_table(reports: list[Report]) -> bool:
    header = (
        f"{'flavor':<10} {'steps':>5} {'ok':>5} {'intr':>5} {'gave up':>7} {'fail':>5} "
        f"{'kills':>5} "
        f"{'recovered':>9} {'lost':>5} {'attempts':>8} {'jobs':>5} {'dup':>4} {'jobs/att':>8} "
        f"{'preempt':>7} {'running':>7} {'wall s':>7}"
    )
    print(header)
    print("-" * len(header))
    healthy = True
    for report in reports:
        results = Counter(outcome.result for outcome in report.outcomes)
        killed = [outcome for outcome in report.outcomes if outcome.kills]
        recovered = sum(1 for outcome in killed if outcome.recovered)
        lost = sum(
            1 for outcome in killed if outcome.result == "succeeded" and not outcome.recovered
        )
        per_attempt = report.jobs / report.attempts if report.attempts else 0.0
        kills = sum(outcome.kills for outcome in report.outcomes)
        print(
            f"{report.flavor:<10} {len(report.outcomes):>5} {results['succeeded']:>5} "
            f"{results['interrupted']:>5} {results['gave up']:>7} {results['failed']:>5} "
            f"{kills:>5} "
            f"{recovered:>4}/{len(killed):<4} {lost:>5} {report.attempts:>8} {report.jobs:>5} "
            f"{report.duplicates:>4} "
            f"{per_attempt:>8.2f} {report.preemptions:>7} "
            f"{report.left_running:>7} {report.wall:>7.1f}"
        )
        healthy &= results["failed"] == 0 and lost == 0 and report.left_running == 0
        # Exactly one create per step attempt that got a job (an attempt interrupted before
        # its create has none): no duplicates, and never more jobs than attempts.
        healthy &= report.duplicates == 0 and report.jobs <= report.attempts
    for report in reports:
        for outcome in report.outcomes:
            if outcome.result == "failed":
                print(f"  {report.flavor} {outcome.step} failed: {outcome.detail}")
    print(
        "\nchaos: "
        + (
            "every step accounted for, nothing lost, nothing left running"
            if healthy
            else "PROBLEMS FOUND (see the table)"
        )
    )
    return healthy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command")
    launch = sub.add_parser("launch")
    launch.add_argument("step")
    launch.add_argument("value", type=int)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument(
        "--flavors", default=None, help="comma-separated (default: local and every emulator)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    if args.command == "launch":
        return launch_one(args.step, args.value)
    if args.flavors:
        flavors = args.flavors.split(",")
    else:
        from steplift.registry import installed_emulators

        flavors = ["local", *sorted(installed_emulators())]
    reports = [run_flavor(flavor, args.steps, args.seed, args.workers) for flavor in flavors]
    return 0 if print_table(reports) else 1


if __name__ == "__main__":
    sys.exit(main())
