"""Measure steplift against issue 7's targets and the official SDKs; write BENCHMARKS.md.

    python -m benchmarks.run            # the full run (~30 min on 2 CPUs; builds peer venvs once)
    python -m benchmarks.run --quick    # a smoke check in under 3 minutes; numbers not quotable

Run from the repository root (``nox -s bench`` does), with steplift and the providers'
emulator extras installed.

Sections: (1–2) start-up and launch-path import cost vs the official SDK paths, (3) completion
lag and control-plane calls per job-minute vs the peers' polling loops, (4) payload transfer
through each artifact store vs the raw storage SDK, (5) many concurrent steps from one process.
Each emulator-backed measurement runs in its own child process (bounded by a timeout) that
starts and stops its emulator; a section that fails is reported as not measured, not hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import imports, report
from .backends import FLAVORS
from .benchlib import REPO, machine, progress, run_child
from .peer_venvs import peer_python


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    import_rounds: int
    lag_runs: int
    lag_minutes: float
    payload_mib: int
    transfer_runs: int
    fanout_steps: int
    fanout_running_polls: int
    cold_fanout_steps: int
    """Steps launched at once on a fresh operator (0: skip), as an application would."""


FULL = Plan(
    import_rounds=7,
    lag_runs=7,
    lag_minutes=30,
    payload_mib=1024,
    transfer_runs=5,
    fanout_steps=1000,
    fanout_running_polls=3,
    cold_fanout_steps=50,
)
QUICK = Plan(
    import_rounds=2,
    lag_runs=3,
    lag_minutes=5,
    payload_mib=16,
    transfer_runs=3,
    fanout_steps=20,
    fanout_running_polls=1,
    cold_fanout_steps=0,
)


def _guarded(what: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one measurement; on failure return ``{"error": ...}`` so the report says so."""
    started = time.monotonic()
    try:
        result = measure()
    except Exception as error:  # reported in BENCHMARKS.md as "not measured"
        progress(f"{what}: FAILED: {error}")
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"}
    progress(f"{what}: done in {time.monotonic() - started:.0f} s")
    return result


def _child(module: str, *args: str, timeout: float) -> dict[str, Any]:
    return run_child([sys.executable, "-m", f"benchmarks.{module}", *args], timeout=timeout)


def measure_all(plan: Plan, flavors: list[str], *, install_peers: bool) -> dict[str, Any]:
    """Every section, in order."""
    sagemaker_python = peer_python("sagemaker", install=install_peers)
    results: dict[str, Any] = {
        "imports": _guarded(
            "imports", lambda: imports.measure(sys.executable, sagemaker_python, plan.import_rounds)
        ),
        "lag": {},
        "transfer": {},
        "fanout": {},
        "fanout_cold": {},
    }
    for flavor in flavors:
        results["lag"][flavor] = _guarded(
            f"lag {flavor}",
            lambda flavor=flavor: _child(
                "lag",
                "--flavor",
                flavor,
                "--runs",
                str(plan.lag_runs),
                "--minutes",
                str(plan.lag_minutes),
                timeout=1200,
            ),
        )
    for flavor in flavors:
        results["transfer"][flavor] = _guarded(
            f"transfer {flavor}",
            lambda flavor=flavor: _child(
                "transfer",
                "--flavor",
                flavor,
                "--mib",
                str(plan.payload_mib),
                "--runs",
                str(plan.transfer_runs),
                timeout=1800,
            ),
        )
    for kind, steps in (("fanout", plan.fanout_steps), ("fanout_cold", plan.cold_fanout_steps)):
        for flavor in flavors if steps else []:
            results[kind][flavor] = _guarded(
                f"{kind} {flavor}",
                lambda flavor=flavor, kind=kind, steps=steps: _child(
                    "fanout",
                    "--flavor",
                    flavor,
                    "--steps",
                    str(steps),
                    "--running-polls",
                    str(plan.fanout_running_polls),
                    *(["--cold"] if kind == "fanout_cold" else []),
                    timeout=steps * 1.5 + 600,
                ),
            )
    return results


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke check, under 3 minutes")
    parser.add_argument("--flavors", default=",".join(FLAVORS), help="comma-separated")
    parser.add_argument("--payload-mib", type=int, help="payload size (full: 1024, quick: 16)")
    parser.add_argument("--fanout-steps", type=int, help="concurrent steps (full: 1000)")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only rewrite the report from saved results"
    )
    args = parser.parse_args(argv)
    if args.render:
        args.output.write_text(report.render(json.loads(args.render.read_text())))
        return
    plan = QUICK if args.quick else FULL
    if args.payload_mib:
        plan = Plan(**{**plan.__dict__, "payload_mib": args.payload_mib})
    if args.fanout_steps:
        plan = Plan(**{**plan.__dict__, "fanout_steps": args.fanout_steps})
    flavors = [flavor for flavor in args.flavors.split(",") if flavor]
    unknown = set(flavors) - set(FLAVORS)
    if unknown:
        parser.error(f"unknown flavors: {', '.join(sorted(unknown))}")
    if "azureml" in flavors and not os.environ.get("STEPLIFT_AZURITE"):
        progress("STEPLIFT_AZURITE is not set: the Azure emulator looks for Azurite on PATH")
    started = time.monotonic()
    results = measure_all(plan, flavors, install_peers=not args.quick)
    results.update(
        machine=machine(),
        quick=args.quick,
        wall=time.monotonic() - started,
        command="python -m benchmarks.run" + (" --quick" if args.quick else ""),
        plan=plan.__dict__,
    )
    args.output.write_text(report.render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    progress(f"wrote {args.output} in {results['wall'] / 60:.1f} min")


if __name__ == "__main__":
    main(sys.argv[1:])
