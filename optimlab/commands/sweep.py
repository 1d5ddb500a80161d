"""`optimlab sweep TASK... --opt NAME --space lr=log:1e-5:1`: hyperparameter sweeps on Optuna.

`optimlab sweep report STUDY` draws the learning-rate sensitivity, robustness, search
convergence and performance profile of a finished sweep (PNG + HTML).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..store import DEFAULT_DB
from ..sweep.defaults import GRACE_PERIOD, HEARTBEAT_INTERVAL, SAMPLERS

MAX_TRIALS = 100_000
MAX_EPOCHS = 10_000
MAX_SEEDS = 1000
MAX_WORKERS = 256
MAX_ROUNDS = 20
MAX_NAME_LENGTH = 200  # a study name is a column in Optuna's storage and the optimlab store
MAX_DIMENSIONS = 50

EPILOG = """examples:
  optimlab sweep digits-mlp --opt adam --space lr=log:1e-5:1 --space betas1=0.8:0.99 --trials 40 --sampler random --workers 2
  optimlab sweep digits-mlp --opt momentum --opt adam --space lr=log:1e-4:1 --sampler random --sampler grid --study lr
  optimlab sweep --resume --study lr            (go on with a sweep; also how a second machine joins)
  optimlab sweep report lr --out reports/lr     (figures + HTML)
  optuna-dashboard optimlab.sweeps.journal      (or the postgresql:// URL given to --storage)
"""


def report_parser() -> argparse.ArgumentParser:
    """The options of `optimlab sweep report STUDY` (what `sweep report --help` prints)."""
    parser = argparse.ArgumentParser(
        prog="optimlab sweep report", description="Draw the learning-rate sensitivity, robustness, search "
        "convergence and performance profile of a sweep (PNG + HTML) and print its summary table.")
    parser.add_argument("study", metavar="STUDY", help="the sweep's name (--study when it was created)")
    _add_report_options(parser)
    return parser


def _add_report_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument("--storage", default=None,
                        help="postgresql://... or the journal file the sweep ran on (default: beside --db)")
    parser.add_argument("--db", default=None,
                        help="the optimlab store every run is saved in (default: $OPTIMLAB_DB or ./optimlab.db)")
    parser.add_argument("--out", default=None, help=f"{prefix}output folder (default sweep-report-STUDY)")
    parser.add_argument("--within", type=float, default=0.1,
                        help=f"{prefix}robustness tolerance (0.1 = within 10%% of the best loss)")
    parser.add_argument("--slack", type=float, default=0.1,
                        help=f"{prefix}target = best final loss x (1 + slack) for the performance profile")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


class _HelpAction(argparse.Action):
    """-h/--help: `sweep report --help` prints the report's own help, `sweep --help` the sweep's."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS,
                         help="show this help message and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        if (getattr(namespace, "tasks", None) or [None])[0] == "report":
            report_parser().print_help()
        else:
            parser.print_help()
        parser.exit()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sweep", help="hyperparameter sweeps on Optuna (random, grid, TPE, coarse-to-fine)",
                                   description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   add_help=False)
    parser.add_argument("-h", "--help", action=_HelpAction)
    parser.add_argument("tasks", nargs="*", metavar="TASK", help="task name(s), or `report STUDY`")
    parser.add_argument("--task", dest="task_functions", action="append", default=[], metavar="MODULE:FUNCTION",
                        help="your own task: package.module:function or path/to/file.py:function (repeatable; "
                             "docs/compare.md)")
    parser.add_argument("--opt", action="append", default=None, metavar="NAME", help="optimizer (repeat for several)")
    parser.add_argument("--space", action="append", default=[], metavar="NAME=RANGE",
                        help="a dimension: lr=log:1e-5:1, betas1=0.8:0.99, int:16:256, 0.5,0.9 (choices); adam.betas1=... for one optimizer")
    parser.add_argument("--trials", type=int, default=20, help="trials per optimizer and sampler (the budget; default 20)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per trial (default 5)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per trial (the score is their mean; default 1)")
    parser.add_argument("--batch-size", type=int, default=64, help="minibatch size of every trial (default 64)")
    parser.add_argument("--sampler", action="append", default=None, choices=SAMPLERS,
                        help="random, grid or tpe (repeat to compare at equal budget)")
    parser.add_argument("--coarse-to-fine", type=int, default=1, metavar="K", help="K rounds, each narrowing the ranges")
    parser.add_argument("--pruner", default="none", choices=("none", "median"),
                        help="none, or median: stop a trial whose validation loss is worse than the median at "
                             "the same epoch (default none)")
    parser.add_argument("--objective", default="val_loss", choices=("val_loss", "train_loss"),
                        help="what a trial minimizes: final validation or training loss (default val_loss)")
    parser.add_argument("--no-defaults", action="store_true", help="do not also run each optimizer's default hyperparameters")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    parser.add_argument("--study", default=None, help="sweep name (default: TASK-OPT...)")
    parser.add_argument("--resume", action="store_true", help="go on with (or join) the sweep named by --study")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samplers (default 0)")
    parser.add_argument("--heartbeat", type=int, default=HEARTBEAT_INTERVAL,
                        help=f"seconds between heartbeats (PostgreSQL; default {HEARTBEAT_INTERVAL})")
    parser.add_argument("--grace", type=int, default=GRACE_PERIOD,
                        help=f"seconds without heartbeat before a trial is re-queued (default {GRACE_PERIOD})")
    _add_report_options(parser, prefix="report: ")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress output (otherwise: a live bar on a terminal, a line every 10 s elsewhere)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    args.db = args.db or os.environ.get("OPTIMLAB_DB") or DEFAULT_DB
    _check_numbers(args)
    if args.tasks[:1] == ["report"]:
        return run_report(args)
    import optuna

    from ..sweep.storage import resolve_storage_url

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = resolve_storage_url(args.storage, args.db)
    for name, value in (("--workers", args.workers), ("--heartbeat", args.heartbeat), ("--grace", args.grace)):
        if value < 1:
            raise ValueError(f"{name}={value} must be >= 1")
    if args.resume:
        if not args.study:
            raise ValueError("--resume needs --study NAME")
        sweep = args.study
    else:
        from ..store import Store

        Store(args.db).close()  # a --db that cannot be opened fails before anything is planned
        sweep = create(args, url)
    from ..sweep.runner import run_workers

    from ..progress import progress_reporter

    threads = max(1, (os.cpu_count() or 1) // args.workers)
    with progress_reporter(f"sweep {sweep}", unit="trials", quiet=args.quiet) as progress:
        codes = run_workers(args.workers, progress=progress, url=url, sweep=sweep, db_path=args.db,
                            heartbeat_interval=args.heartbeat, grace_period=args.grace, torch_threads=threads)
    status = print_summary(url, sweep, args)
    if any(code != 0 for code in codes):
        print(f"optimlab sweep: a worker failed (exit codes {codes}); `--resume --study {sweep}` goes on", file=sys.stderr)
        return 1
    return status


def _check_numbers(args: argparse.Namespace) -> None:
    """Every size typed on the command line, bounded before anything is stored or trained."""
    import math

    for name, value, high in (("--trials", args.trials, MAX_TRIALS), ("--epochs", args.epochs, MAX_EPOCHS),
                              ("--seeds", args.seeds, MAX_SEEDS), ("--workers", args.workers, MAX_WORKERS),
                              ("--coarse-to-fine", args.coarse_to_fine, MAX_ROUNDS),
                              ("--batch-size", args.batch_size, 10**9)):
        if not 1 <= value <= high:
            raise ValueError(f"{name} {value} must be from 1 to {high}")
    for name, value in (("--within", args.within), ("--slack", args.slack)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} {value} must be a finite number >= 0")
    if args.seed < 0:
        raise ValueError(f"--seed {args.seed} must be >= 0")
    if args.study is not None and not 1 <= len(args.study) <= MAX_NAME_LENGTH:
        raise ValueError(f"--study must be 1 to {MAX_NAME_LENGTH} characters (got {len(args.study)})")
    if len(args.space) > MAX_DIMENSIONS:
        raise ValueError(f"{len(args.space)} --space dimensions; at most {MAX_DIMENSIONS}")


def create(args: argparse.Namespace, url: str) -> str:
    from ..sweep import plan as plans
    from ..tasks import is_task_reference, resolve_task

    for reference in args.task_functions:
        if not is_task_reference(reference):
            raise ValueError(f"--task {reference!r} must look like package.module:function or path/to/file.py:function")
    args.tasks = args.tasks + args.task_functions
    if not args.tasks:
        raise ValueError("name a task, e.g. `optimlab sweep digits-mlp --opt adam --space lr=log:1e-5:1`")
    optimizers = args.opt or ["adam"]
    samplers = args.sampler or ["random"]
    labels = [task.rpartition(":")[2] if is_task_reference(task) else task for task in args.tasks]  # no '/' in names
    sweep = args.study or "-".join(labels + optimizers)
    study_plans = plans.make_plans(sweep, args.tasks, optimizers, samplers, args.space, trials=args.trials,
                                   epochs=args.epochs, seeds=args.seeds, batch_size=args.batch_size,
                                   rounds=args.coarse_to_fine, pruner=args.pruner, objective=args.objective,
                                   seed=args.seed, with_defaults=not args.no_defaults)
    for task in args.tasks:
        resolve_task(task)  # an unknown task name or a bad --task fails here, before anything is stored
    from ..sweep.storage import open_storage, release

    storage = open_storage(url)
    try:
        plans.create_studies(url, storage, study_plans)
    finally:
        release(storage)
    print(f"sweep {sweep!r}: {len(study_plans)} studies in {url}")
    return sweep


def print_summary(url: str, sweep: str, args: argparse.Namespace) -> int:
    from ..sweep.results import load_sweep
    from ..sweep.summary import format_table, summarize

    summary = summarize(load_sweep(url, sweep), within=args.within, slack=args.slack)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(format_table(summary))
        print(f"\nreport: optimlab sweep report {sweep}" + (f" --storage {args.storage}" if args.storage else ""))
    return 0


def run_report(args: argparse.Namespace) -> int:
    if len(args.tasks) != 2:
        raise ValueError("usage: optimlab sweep report STUDY [--out DIR]")
    from ..report.sweep import write_sweep_report
    from ..sweep.results import load_sweep

    from ..outputs import check_output_dir
    from ..sweep.storage import resolve_storage_url

    sweep = args.tasks[1]
    check_output_dir(args.out or f"sweep-report-{sweep}", "--out")
    url = resolve_storage_url(args.storage, args.db)
    results = load_sweep(url, sweep)
    paths = write_sweep_report(results, args.out or f"sweep-report-{sweep}", within=args.within, slack=args.slack)
    for path in paths:
        print(path, file=sys.stderr if args.json else sys.stdout)
    return print_summary(url, sweep, args) if args.json else 0
