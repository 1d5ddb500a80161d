"""`optimlab sweep TASK... --opt NAME --space lr=log:1e-5:1`: hyperparameter sweeps on Optuna.

`optimlab sweep report STUDY` draws the learning-rate sensitivity, robustness, search
convergence and performance profile of a finished sweep (PNG + HTML).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..sweep import plan as plans
from ..sweep.storage import DEFAULT_DB, GRACE_PERIOD, HEARTBEAT_INTERVAL, resolve_storage_url

EPILOG = """examples:
  optimlab sweep digits-mlp --opt adam --space lr=log:1e-5:1 --space betas1=0.8:0.99 --trials 40 --sampler random --workers 2
  optimlab sweep digits-mlp --opt momentum --opt adam --space lr=log:1e-4:1 --sampler random --sampler grid --study lr
  optimlab sweep --resume --study lr            (go on with a sweep; also how a second machine joins)
  optimlab sweep report lr --out reports/lr     (figures + HTML)
  optuna-dashboard optimlab.sweeps.journal      (or the postgresql:// URL given to --storage)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sweep", help="hyperparameter sweeps on Optuna (random, grid, TPE, coarse-to-fine)",
                                   description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tasks", nargs="*", metavar="TASK", help="task name(s), or `report STUDY`")
    parser.add_argument("--task", dest="task_functions", action="append", default=[], metavar="MODULE:FUNCTION",
                        help="your own task: package.module:function or path/to/file.py:function (repeatable; "
                             "docs/compare.md)")
    parser.add_argument("--opt", action="append", default=None, metavar="NAME", help="optimizer (repeat for several)")
    parser.add_argument("--space", action="append", default=[], metavar="NAME=RANGE",
                        help="a dimension: lr=log:1e-5:1, betas1=0.8:0.99, int:16:256, 0.5,0.9 (choices); adam.betas1=... for one optimizer")
    parser.add_argument("--trials", type=int, default=20, help="trials per optimizer and sampler (the budget)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per trial")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per trial (the score is their mean)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sampler", action="append", default=None, choices=plans.SAMPLERS,
                        help="random, grid or tpe (repeat to compare at equal budget)")
    parser.add_argument("--coarse-to-fine", type=int, default=1, metavar="K", help="K rounds, each narrowing the ranges")
    parser.add_argument("--pruner", default="none", choices=("none", "median"))
    parser.add_argument("--objective", default="val_loss", choices=("val_loss", "train_loss"))
    parser.add_argument("--no-defaults", action="store_true", help="do not also run each optimizer's default hyperparameters")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    parser.add_argument("--study", default=None, help="sweep name (default: TASK-OPT...)")
    parser.add_argument("--resume", action="store_true", help="go on with (or join) the sweep named by --study")
    parser.add_argument("--storage", default=None, help="postgresql://... or a journal file (default: beside --db)")
    parser.add_argument("--db", default=None, help="the optimlab store every run is saved in (default: $OPTIMLAB_DB or ./optimlab.db)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heartbeat", type=int, default=HEARTBEAT_INTERVAL, help="seconds between heartbeats (PostgreSQL)")
    parser.add_argument("--grace", type=int, default=GRACE_PERIOD, help="seconds without heartbeat before a trial is re-queued")
    parser.add_argument("--out", default=None, help="report: output folder (default sweep-report-STUDY)")
    parser.add_argument("--within", type=float, default=0.1, help="report: robustness tolerance (0.1 = within 10%% of the best loss)")
    parser.add_argument("--slack", type=float, default=0.1, help="report: target = best final loss x (1 + slack)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress output (otherwise: a live bar on a terminal, a line every 10 s elsewhere)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    args.db = args.db or os.environ.get("OPTIMLAB_DB") or DEFAULT_DB
    if args.tasks[:1] == ["report"]:
        return run_report(args)
    import optuna

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


def create(args: argparse.Namespace, url: str) -> str:
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

    sweep = args.tasks[1]
    url = resolve_storage_url(args.storage, args.db)
    results = load_sweep(url, sweep)
    paths = write_sweep_report(results, args.out or f"sweep-report-{sweep}", within=args.within, slack=args.slack)
    for path in paths:
        print(path, file=sys.stderr if args.json else sys.stdout)
    return print_summary(url, sweep, args) if args.json else 0
