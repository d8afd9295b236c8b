"""Many steps launched concurrently from one process: peak RSS, creates, calls per poll round.

    python -m benchmarks.fanout --flavor sagemaker --steps 1000

The emulator (scripted mode: each job is described a few times while running, then
succeeds) runs in this process; the steps are launched from a child process, so the child's
peak RSS is the launcher's alone. The child runs one thread per step, each calling
``StepOperator.launch`` on one shared operator with the flavor's default poll policy, in real
time. Every flavor sets ``batched_status``: the launches waiting at the same moment share one
``get_statuses`` call (the provider's list API, paged), so a poll round costs calls per page,
not per step; the emulator's request log gives the exact counts (one adoption lookup per
step, before its create, is counted apart). Like the launcher, each launch checks its result
record between polls (never written here) and reads its job's logs: both are counted.

By default one step is launched alone first, which builds every lazily created client; with
``--cold`` all steps start at once on a fresh operator, as an application would launch them
(the SageMaker operator then builds one boto3 client per racing thread; see the report).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from typing import Any

from .backends import FLAVORS, running_backend
from .benchlib import print_result, progress, run_child


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def launch_many(config: dict[str, Any], steps: int, *, cold: bool) -> dict[str, Any]:
    """The child: ``steps`` concurrent launches through one operator; what it cost.

    ``config`` is the operator config the emulator gave (``"flavor"`` included), read as the
    ``[operators.bench]`` table of a config file would be.
    """
    from steplift.config import create_operator, parse_config
    from steplift.execution import result_uri
    from steplift.launcher import StepLauncher, StepOptions
    from steplift.runs import Run

    project = parse_config({"operators": {"bench": config}}, source="the bench emulator")
    operator = create_operator("bench", config=project)
    launcher = StepLauncher(operator)
    run = Run(f"fanout-{int(time.time())}")
    infos = [
        launcher.step_info(run=run, step=f"s{number:04d}", attempt=1, options=StepOptions())
        for number in range(steps + 1)
    ]
    warm_up, infos = infos[0], infos[1:]
    if not cold:
        operator.launch(warm_up, ["python", "-c", "pass"])
    baseline = _rss_mib()
    failures: list[str] = []
    lock = threading.Lock()
    checks = [0]
    log_reads = [0]
    read_logs = operator.read_logs

    def counted_read_logs(handle: Any, cursor: str | None) -> Any:
        with lock:
            log_reads[0] += 1
        return read_logs(handle, cursor)

    operator.read_logs = counted_read_logs  # type: ignore[method-assign]

    def launch(info: Any) -> None:
        # As the launcher does: the result record (never written here) is the done signal.
        record = result_uri(info.artifact_uri)

        def done() -> bool:
            with lock:
                checks[0] += 1
            return operator.artifact_store.exists(record)

        try:
            operator.launch(info, ["python", "-c", "pass"], done_signal=done)
        except Exception as error:  # counted and reported, never hidden
            with lock:
                failures.append(f"{info.step}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=launch, args=(info,), daemon=True) for info in infos]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    deadline = started + max(300.0, steps * 1.5)
    for thread in threads:
        thread.join(max(0.0, deadline - time.perf_counter()))
    unfinished = sum(thread.is_alive() for thread in threads)
    control = operator._launch_engine.control  # how many shared status rounds ran
    return {
        "status_rounds": control.status_rounds if operator.policy.batched_status else None,
        "steps": steps,
        "failures": len(failures),
        "unfinished": unfinished,
        "first_failures": failures[:3],
        "wall": time.perf_counter() - started,
        "record_checks": checks[0],
        "log_reads": log_reads[0],
        "rss_baseline_mib": baseline,
        "rss_peak_mib": _rss_mib(),
    }


def measure(flavor: str, steps: int, running_polls: int, cold: bool) -> dict[str, Any]:
    """Serve the scripted emulator here; launch ``steps`` steps from a child process."""
    with running_backend(flavor) as backend:
        still_running = [backend.running[-1]] * running_polls
        backend.emulator.script(None, [*backend.running, *still_running, backend.finished])
        progress(f"fanout {flavor}: launching {steps} steps from one process")
        child = run_child(
            [
                sys.executable,
                "-m",
                "benchmarks.fanout",
                "--launch",
                "--flavor",
                flavor,
                "--steps",
                str(steps),
                "--config",
                json.dumps(backend.operator_config()),
                *(["--cold"] if cold else []),
            ],
            timeout=max(300.0, steps * 1.5) + 120,
        )
        creates = backend.count(backend.cloud.create_operation)
        gets = backend.count(backend.cloud.status_operation)
        lists = backend.count(backend.cloud.list_operation)
        requests = len(backend.emulator.requests)
        answers_per_job = len([*backend.running, *still_running, backend.finished])
    launched = steps + (0 if cold else 1)
    # Each launch looks for an existing job once before creating (a get or a list, by
    # flavor); every other get and list is status polling.
    polling = max(0, gets + lists - launched)
    return {
        **child,
        "flavor": flavor,
        "cold": cold,
        "creates": creates - (launched - steps),
        "status_calls": gets,
        "list_calls": lists,
        "polling_calls": polling,
        "polling_calls_per_step": polling / launched if launched else 0.0,
        # Batched: the polling calls over the shared rounds the operator made; a per-job loop
        # makes one call per step per round.
        "calls_per_round": (
            polling / child["status_rounds"] if child.get("status_rounds") else float(steps)
        ),
        "answers_per_job": answers_per_job,
        "emulator_requests": requests,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavor", required=True, choices=FLAVORS)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--running-polls", type=int, default=3, help="'running' answers per job")
    parser.add_argument("--cold", action="store_true", help="no warm-up launch first")
    parser.add_argument("--launch", action="store_true", help="(internal) the launching child")
    parser.add_argument("--config", help="(internal) the operator's config, as JSON")
    args = parser.parse_args(argv)
    if args.launch:
        print_result(launch_many(json.loads(args.config), args.steps, cold=args.cold))
    else:
        print_result(measure(args.flavor, args.steps, args.running_polls, args.cold))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except subprocess.TimeoutExpired as error:
        sys.exit(f"fanout: the launching child ran past {error.timeout:.0f} s")
