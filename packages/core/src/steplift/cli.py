"""The ``steplift`` command.

Exit codes: 0 done, 1 step failed (or timed out, or was cancelled elsewhere), 2 usage or
config error (one line, no traceback), 130/143 interrupted by Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from rich.console import Console

    from steplift.models import JobHandle, JobStatus
    from steplift.operator import StepOperator
    from steplift.runs import StepRecord

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, exit 2 (argparse prints the whole usage by default)."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="steplift",
        description="Run one pipeline step as a GPU training job on SageMaker, Vertex AI or "
        "Azure ML (or locally).",
    )
    parser.add_argument("--version", action="version", version="steplift 0.1.0")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run a command as a job and stream its logs")
    _add_step_arguments(run)
    plan = commands.add_parser(
        "plan", help="show what run would send (request, machines, cost) without sending it"
    )
    _add_step_arguments(plan)
    plan.add_argument("--json", action="store_true", help="print the whole plan as JSON")

    commands.add_parser("operators", help="installed flavors and configured operators")
    status = commands.add_parser("status", help="status of every step attempt of a run")
    status.add_argument("run")
    logs = commands.add_parser("logs", help="logs of a run's jobs")
    logs.add_argument("run")
    logs.add_argument("--step", help="only this step")
    logs.add_argument(
        "--follow", "-f", action="store_true", help="keep streaming until the jobs end"
    )
    cancel = commands.add_parser("cancel", help="cancel the running jobs of a run")
    cancel.add_argument("run")
    commands.add_parser("list", help="runs launched from this directory")
    emulator = commands.add_parser("emulator", help="serve a cloud emulator on 127.0.0.1")
    cloud = emulator.add_argument("cloud")
    cloud.choices = _EmulatorChoices()  # set after add_argument, which would list them now
    emulator.add_argument("args", nargs=argparse.REMAINDER, help="options for the emulator")
    return parser


def _add_step_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``run``, which ``plan`` shares."""
    parser.add_argument("--operator", help="configured operator to use (default: the config's)")
    parser.add_argument(
        "--name", dest="run_name", help="run name (default: STEPLIFT_RUN or generated)"
    )
    parser.add_argument("--step", help="step name within the run (default: from the command)")
    parser.add_argument("--gpu", help="GPU type and count per node, e.g. A100:8")
    parser.add_argument("--nodes", type=int, help="machines the job spans (default 1)")
    parser.add_argument(
        "--processes-per-node",
        help="processes started per node, a number or 'gpu' for one per GPU (default 1)",
    )
    parser.add_argument("--max-runtime", type=float, help="stop the job after this many seconds")
    parser.add_argument("--max-queue-time", type=float, help="give up if not started by then (s)")
    parser.add_argument(
        "--max-cost",
        type=float,
        help="the run's budget in USD: the job is stopped by the cloud once it is spent",
    )
    parser.add_argument("--retries", type=int, default=0, help="retry preempted/capacity failures")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set an environment variable in the job (repeatable)",
    )
    parser.add_argument(
        "cmd", nargs=argparse.REMAINDER, metavar="-- CMD...", help="the command to run in the job"
    )


class _EmulatorChoices:
    """The clouds ``steplift emulator`` takes, from entry points (see
    :func:`steplift.registry.emulator_names`), looked up only when that command needs them."""

    def __iter__(self) -> Iterator[str]:
        from steplift.registry import emulator_names

        return iter(emulator_names())

    def __contains__(self, name: object) -> bool:
        return name in list(self)


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _parse_env(pairs: Sequence[str]) -> dict[str, str]:
    from steplift.errors import ConfigError

    environment = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError("must look like KEY=VALUE", field="--env", value=pair, has_value=True)
        environment[key] = value
    return environment


def _step_request(args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    """The command and the keyword arguments of ``run_command`` from ``run``'s arguments,
    all validated before anything is printed or submitted."""
    from steplift.runs import Run
    from steplift.sdk import make_options, resolve_operator, resolve_run

    command = list(args.cmd)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise _usage(
            f"{args.command} needs a command after --, e.g. steplift {args.command} -- "
            "python train.py"
        )
    environment = _parse_env(args.env)
    resources: dict[str, object] = {
        key: value
        for key, value in (
            ("gpu", args.gpu),
            ("nodes", args.nodes),
            ("processes_per_node", args.processes_per_node),
        )
        if value is not None
    }
    make_options(
        resources=resources or None,
        max_runtime=args.max_runtime,
        max_queue_time=args.max_queue_time,
        retries=args.retries,
    )
    run = resolve_run(args.run_name)
    if args.max_cost is not None:  # the run's budget: every attempt of its step counts
        run = Run(run.name, run.pipeline, max_cost=args.max_cost)
    operator = resolve_operator(args.operator)
    return command, {
        "operator": operator,
        "run": run,
        "name": args.step,
        "resources": resources or None,
        "max_runtime": args.max_runtime,
        "max_queue_time": args.max_queue_time,
        "retries": args.retries,
        "environment": environment,
    }


def _cmd_run(args: argparse.Namespace) -> int:
    from steplift.cli_observer import RichObserver
    from steplift.sdk import plan_command, run_command

    command, options = _step_request(args)
    operator, run = options["operator"], options["run"]
    if run.max_cost is not None:
        # A budget with no price, or too small to buy a run, is one error line, not a header
        # then an error: the plan checks it (and makes no call).
        plan_command(command, **options)
    err = _console(stderr=True)
    if args.gpu and operator.flavor == "local":
        err.print(
            f"[yellow]steplift: the local flavor has no GPU scheduling; {args.gpu} is ignored[/]"
        )
    err.print(
        f"[bold]steplift[/] run [bold]{_escape(run.name)}[/] on operator {_escape(operator.name)}"
    )
    run_command(command, **options, observer=RichObserver(err))
    return EXIT_OK


def _cmd_plan(args: argparse.Namespace) -> int:
    import json

    from steplift.sdk import plan_command

    command, options = _step_request(args)
    plan = plan_command(command, **options)
    if args.json:
        print(json.dumps(plan.as_dict(), indent=2, sort_keys=True, default=str))
    else:
        print(plan.describe())
    return EXIT_OK


def _cmd_operators(_args: argparse.Namespace) -> int:
    from rich.table import Table

    from steplift.config import load_config, validate_operator
    from steplift.errors import ConfigError
    from steplift.registry import installed_flavors

    console = _console()
    flavors = installed_flavors()
    table = Table(title="Installed flavors")
    table.add_column("flavor")
    table.add_column("provided by")
    for name, entry_point in sorted(flavors.items()):
        table.add_row(name, entry_point.dist.name if entry_point.dist else entry_point.value)
    console.print(table)

    config = load_config()
    chosen = None
    try:
        chosen = config.choose(None)
    except ConfigError as error:
        console.print(f"[red]{error}[/]")
    operators = dict(config.operators)
    if "local" not in operators:
        operators["local"] = config.entry("local")
    table = Table(title=f"Operators ({config.source})")
    for column in ("operator", "flavor", "default", "config"):
        table.add_column(column)
    for name, entry in sorted(operators.items()):
        try:
            validate_operator(entry)
            verdict = "[green]valid[/]"
        except ConfigError as error:
            verdict = f"[red]{_escape(str(error))}[/]"
        table.add_row(name, entry.flavor, "yes" if name == chosen else "", verdict)
    console.print(table)
    return EXIT_OK


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _operator_for(record: StepRecord) -> StepOperator:
    from steplift.registry import get_flavor

    flavor = get_flavor(record.flavor)
    config = flavor.validate_config(record.operator_config, operator=record.operator)
    return flavor.create(config, name=record.operator)


def _live_status(record: StepRecord) -> tuple[str, str]:
    from steplift.errors import StepliftError

    if record.handle is None:
        return record.state, record.message
    try:
        status = _operator_for(record).get_status(record.handle)
    except StepliftError as error:
        return record.state, f"(recorded; live status unavailable: {error})"
    return status.state.value, status.message


def _cmd_status(args: argparse.Namespace) -> int:
    from rich.table import Table

    from steplift.runs import RunIndex

    records = RunIndex().steps(args.run)
    table = Table(title=f"Run {args.run}")
    for column in ("step", "attempt", "operator", "job", "state", "cost", "message"):
        table.add_column(column)
    for record in records:
        state, message = _live_status(record)
        job = record.handle.name if record.handle else "-"
        table.add_row(
            record.step,
            str(record.attempt),
            record.operator,
            job,
            state,
            _cost_text(record.cost, record.max_cost),
            _escape(message),
        )
    known = [record.cost for record in records if record.cost is not None]
    unknown = len(records) - len(known)
    total = f"total cost: ${sum(known):.4f}" if known else "total cost: unknown"
    if known and unknown:
        total += f" ({unknown} attempt(s) without a known cost)"
    console = _console()
    console.print(table)
    console.print(total)
    return EXIT_OK


def _cost_text(cost: float | None, budget: float | None) -> str:
    text = f"${cost:.4f}" if cost is not None else "-"
    return f"{text} of ${budget:.4g}" if budget is not None else text


def _cmd_logs(args: argparse.Namespace) -> int:
    from steplift.runs import RunIndex

    records = [
        r for r in RunIndex().steps(args.run) if r.handle and (not args.step or r.step == args.step)
    ]
    if not records:
        raise _usage(
            f"run {args.run} has no job{' for step ' + args.step if args.step else ''} yet"
        )
    prefix = len(records) > 1
    for record in records:
        assert record.handle is not None
        operator = _operator_for(record)
        _print_logs(operator, record.handle, f"{record.step}: " if prefix else "", args.follow)
    return EXIT_OK


def _print_logs(operator: StepOperator, handle: JobHandle, prefix: str, follow: bool) -> None:
    cursor: str | None = None
    delays = operator.policy.poll.delays()
    while True:
        status: JobStatus | None = operator.get_status(handle) if follow else None
        chunk = operator.read_logs(handle, cursor)
        for line in chunk.lines:
            print(f"{prefix}{line}", flush=True)
        cursor = chunk.cursor
        if status is None or status.state.is_terminal:
            return
        operator.sleep(next(delays))


def _cmd_cancel(args: argparse.Namespace) -> int:
    from steplift.runs import RunIndex

    console = _console()
    asked = 0
    for record in RunIndex().steps(args.run):
        if record.handle is None:
            continue
        operator = _operator_for(record)
        status = operator.get_status(record.handle)
        if status.state.is_terminal:
            continue
        operator.cancel(record.handle)
        asked += 1
        console.print(
            f"cancel requested: {record.step} (attempt {record.attempt}) job {record.handle.name}"
        )
    if not asked:
        console.print(f"run {args.run} has no running job")
    return EXIT_OK


def _cmd_list(_args: argparse.Namespace) -> int:
    import time

    from rich.table import Table

    from steplift.runs import RunIndex

    index = RunIndex()
    names = index.runs()
    if not names:
        _console().print(f"no runs recorded in {index.root}")
        return EXIT_OK
    table = Table(title=f"Runs ({index.root})")
    for column in ("run", "steps", "states (recorded)", "last update"):
        table.add_column(column)
    for name in names:
        records = index.steps(name)
        states = ", ".join(sorted({record.state for record in records}))
        last = max((record.updated for record in records), default=0.0)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else "-"
        table.add_row(name, str(len(records)), states, stamp)
    _console().print(table)
    return EXIT_OK


def _cmd_emulator(args: argparse.Namespace) -> int:
    from steplift.registry import install_command, installed_emulators

    entry = installed_emulators().get(args.cloud)
    if entry is None or not _importable(entry.module.partition(".")[0]):  # its provider package
        hint = install_command(args.cloud) or f"pip install the package of the {args.cloud} flavor"
        raise _usage(f"the {args.cloud} flavor is not installed; add it with: {hint}")
    try:
        emulator_class = entry.load()
    except ImportError as error:
        package = entry.dist.name if entry.dist is not None else entry.module.partition(".")[0]
        hint = f'pip install "{package}[emulator]"'
        raise _usage(f"the {args.cloud} emulator needs {error.name}; add it with: {hint}") from None
    result: Any = emulator_class.main(list(args.args))
    return int(result or 0)


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


class _UsageError(Exception):
    pass


def _usage(message: str) -> _UsageError:
    return _UsageError(message)


_COMMANDS = {
    "run": _cmd_run,
    "plan": _cmd_plan,
    "operators": _cmd_operators,
    "status": _cmd_status,
    "logs": _cmd_logs,
    "cancel": _cmd_cancel,
    "list": _cmd_list,
    "emulator": _cmd_emulator,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _build_parser().parse_args(argv)
    from steplift.errors import ConfigError, StepCancelled, StepError, StepliftError
    from steplift.interrupts import deferred_interrupts

    try:
        with deferred_interrupts():
            # The pydantic models every command uses, built whole: a Ctrl-C landing while
            # pydantic builds a validator is swallowed and leaves the validator broken.
            import steplift.models
            import steplift.operator  # noqa: F401
        return _COMMANDS[args.command](args)
    except (ConfigError, _UsageError) as error:
        print(f"steplift: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StepCancelled as error:
        print(f"steplift: {error}", file=sys.stderr)
        return error.exit_code
    except StepError as error:
        print(f"steplift: {error}", file=sys.stderr)
        return EXIT_FAILED
    except StepliftError as error:
        print(f"steplift: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("steplift: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
