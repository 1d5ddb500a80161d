"""`optimlab compare TASK --opt SPEC ...`: train every optimizer x seed, store, tabulate, report."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..store import DEFAULT_DB


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that build the task (shared with other verbs that train tasks)."""
    parser.add_argument("--data-dir", help="folder with MNIST/Fashion-MNIST idx or CIFAR-10 python files")
    parser.add_argument("--no-standardize", action="store_true", help="train on raw features (worse conditioning)")
    parser.add_argument("--init", help="default, xavier, kaiming, too-small, too-large or normal:std=S")
    parser.add_argument("--l2", type=float, default=0.0, help="L2 penalty l2/2*||W||^2 added to the loss (default 0)")
    parser.add_argument("--task-seed", type=int, default=0, help="seed of the train/val/test split (default 0)")
    parser.add_argument("--limit", type=int, help="keep only the first N training rows")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: fastest for these small models; 0 = torch's default)")


MAX_THREADS = 1024
MAX_SEEDS = 1000
MAX_EVALS_PER_EPOCH = 1000


def check_task_arguments(args: argparse.Namespace) -> None:
    """The task options' ranges, checked before anything is loaded."""
    if not 0 <= args.threads <= MAX_THREADS:
        raise ValueError(f"--threads {args.threads} must be between 0 (torch's default) and {MAX_THREADS}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit {args.limit} must be a positive number of training rows")
    if not (math.isfinite(args.l2) and args.l2 >= 0):
        raise ValueError(f"--l2 {args.l2} must be a finite number >= 0")


def add_task_reference(parser: argparse.ArgumentParser) -> None:
    """``--task package.module:function``: a function returning your own task (a LoaderTask)."""
    parser.add_argument("--task", dest="task_function", metavar="MODULE:FUNCTION",
                        help="your own task: package.module:function or path/to/file.py:function returning "
                             "optimlab.tasks.LoaderTask(model=..., train=DataLoader, ...) (docs/compare.md)")


def chosen_task(name: str | None, function: str | None) -> str:
    """The positional task name or ``--task``'s reference: exactly one of them."""
    if name and function:
        raise ValueError(f"give a task name ({name!r}) or --task {function!r}, not both")
    if not name and not function:
        raise ValueError("name a task (e.g. digits-mlp) or give --task package.module:function")
    return name or function


def build_task(args: argparse.Namespace) -> Any:
    import torch

    from ..tasks import get_task, load_task_reference

    check_task_arguments(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    function = getattr(args, "task_function", None)
    chosen_task(args.task, function)
    if function:
        built_in_only = {"--data-dir": args.data_dir, "--no-standardize": args.no_standardize, "--init": args.init,
                         "--l2": args.l2, "--task-seed": args.task_seed, "--limit": args.limit}
        for flag, value in built_in_only.items():
            if value:
                raise ValueError(f"{flag} applies to built-in tasks; with --task, set it in your task function")
        return load_task_reference(function)
    return get_task(args.task, seed=args.task_seed, standardize=not args.no_standardize, init=args.init,
                    data_dir=args.data_dir, l2=args.l2, limit=args.limit)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare optimizers on a training task (table, store, report)",
        description="Train every --opt on TASK for every seed; print a table (mean ± std over seeds), "
                    "store every run and write a report (PNG figures + one HTML page).")
    parser.add_argument("task", nargs="?", help="task name, e.g. digits-mlp, airfoil-linear, synthetic-linear:n=100000")
    add_task_reference(parser)
    parser.add_argument("--opt", action="append", metavar="SPEC",
                        help="optimizer spec (repeatable), e.g. adam:lr=1e-3; may add batch_size=N|full and "
                             "epochs=E; default: the notes' set (+ full-batch lbfgs on convex tasks)")
    parser.add_argument("--epochs", type=float, help="epochs per run (default: the task's)")
    parser.add_argument("--batch-size", help="N or 'full' (default: the task's; closure optimizers: full)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per optimizer (default 3)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--schedule", help="lr schedule spec applied per step, e.g. exponential:gamma=0.999")
    parser.add_argument("--average", metavar="SPEC",
                        help="also evaluate averaged weights on the test split: ema:decay=0.999 or swa:start=N")
    parser.add_argument("--ensemble", metavar="SPEC",
                        help="also evaluate an ensemble on the test split: snapshot:cycles=5 (SGDR snapshots) "
                             "or seeds:5 (trains 5 seeds, overriding --seeds)")
    parser.add_argument("--track", metavar="SPEC",
                        help="record sharpness (top Hessian eigenvalue) vs the stability threshold: sharpness:every=50")
    parser.add_argument("--target", help="report time to a target, e.g. val_acc=0.95 or train_loss=0.25")
    parser.add_argument("--max-steps", type=int, help="stop each run after N updates")
    parser.add_argument("--max-seconds", type=float, help="stop each run after S training seconds")
    parser.add_argument("--evals-per-epoch", type=int, default=1, help="evaluations per epoch (default 1)")
    parser.add_argument("--db", help=f"results database (default: $OPTIMLAB_DB or ./{DEFAULT_DB})")
    parser.add_argument("--out", help="report folder (default: report/compare-TASK-TIME)")
    parser.add_argument("--no-report", action="store_true", help="skip the figures and HTML page")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress output (otherwise: a live bar on a terminal, a line every 10 s elsewhere)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per run")
    add_task_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # heavy imports (scikit-learn, matplotlib, SQLAlchemy) only when the verb runs
    from ..engine.compare import compare_optimizers, default_specs, split_run_options
    from ..engine.ensembles import EnsemblePlan
    import torch

    from ..optim.registry import create
    from ..progress import progress_reporter
    from ..schedules import parse_schedule
    from ..report.compare_report import json_safe, write_compare_report
    from ..report.held_out import add_held_out_columns
    from ..report.tables import aggregate, render_text
    from ..store import Store

    _check_run_arguments(args)
    task = build_task(args)
    specs, notes = (args.opt, []) if args.opt else default_specs(task)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    started = datetime.now(timezone.utc)
    experiment = f"compare {task.name} {started.isoformat(timespec='seconds')}"
    for spec in specs:  # a bad spec, or a name the store cannot keep, fails before the store is opened
        Store.check_fits(task=task.name, optimizer=spec, experiment=experiment)
        create(split_run_options(spec)[0], [torch.zeros(2, requires_grad=True)])  # the class's own checks too
    if args.schedule:
        parse_schedule(args.schedule, steps_per_epoch=1)
    total = len(specs) * EnsemblePlan(args.average, args.ensemble).seeds(args.seeds)  # seeds:N trains N
    stored: list[int] = []

    with Store(args.db) as store, progress_reporter(f"compare {task.name}", quiet=args.quiet) as progress:
        store.set_experiment_status(experiment, "running")
        try:
            results = compare_optimizers(
                task, specs, seeds=args.seeds, first_seed=args.first_seed, epochs=args.epochs,
                batch_size=args.batch_size, schedule=args.schedule, target=args.target, max_steps=args.max_steps,
                max_seconds=args.max_seconds, evals_per_epoch=args.evals_per_epoch, store=store,
                experiment=experiment, on_run=lambda result: stored.append(result.run_id), average=args.average,
                ensemble=args.ensemble, track=args.track, progress=progress)
        except KeyboardInterrupt:
            store.set_experiment_status(experiment, "incomplete")
            print(_interrupted_message(stored, total, store.location, experiment), file=sys.stderr)
            return 130
        except BaseException:
            store.set_experiment_status(experiment, "incomplete")
            raise
        store.set_experiment_status(experiment, "complete")
        location = store.location
    records = [result.to_json() for result in results]
    report_path = None
    if not args.no_report:
        out = Path(args.out or f"report/compare-{_slug(task.name)}-{started.strftime('%Y%m%d-%H%M%S')}")
        intro = _intro(task, args, location, started)
        report_path = write_compare_report([(r.trace, rec) for r, rec in zip(results, records)], out,
                                           f"optimlab compare {task.name}", intro, args.target)
    if args.json:
        print(json.dumps(json_safe(records), indent=1))
        if report_path:
            print(f"report: {report_path}", file=sys.stderr)
        return 0
    print(f"{task.name}: {task.description}; {task.num_train} training rows")
    headers, rows = aggregate(records, task.metric_name, args.target)
    add_held_out_columns(headers, rows, records, task.metric_name)
    print(render_text(headers, rows))
    ids = [r.run_id for r in results]
    print(f"\nstored runs {ids[0]}-{ids[-1]} in {location} (optimlab runs list; optimlab report {ids[0]}-{ids[-1]})")
    if report_path:
        print(f"report: {report_path}")
    return 0


def _check_run_arguments(args: argparse.Namespace) -> None:
    """Ranges of the run options and the output folder, checked before any data is loaded or trained."""
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise ValueError(f"--seeds {args.seeds} must be between 1 and {MAX_SEEDS}")
    if args.first_seed < 0:
        raise ValueError(f"--first-seed {args.first_seed} must be >= 0")
    if not 1 <= args.evals_per_epoch <= MAX_EVALS_PER_EPOCH:
        raise ValueError(f"--evals-per-epoch {args.evals_per_epoch} must be between 1 and {MAX_EVALS_PER_EPOCH}")
    if args.epochs is not None and not (math.isfinite(args.epochs) and args.epochs > 0):
        raise ValueError(f"--epochs {args.epochs} must be a finite number > 0")
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max-steps {args.max_steps} must be >= 1")
    if args.max_seconds is not None and not (math.isfinite(args.max_seconds) and args.max_seconds > 0):
        raise ValueError(f"--max-seconds {args.max_seconds} must be a finite number > 0")
    if not args.no_report:  # the default report/compare-TASK-TIME lies under ./report
        from ..outputs import check_output_dir

        check_output_dir(args.out or "report", "--out")


def _interrupted_message(stored: list[int], total: int, location: str, experiment: str) -> str:
    """What Ctrl-C leaves behind: the runs already stored and the experiment marked incomplete."""
    kept = (f"stored runs {', '.join(map(str, stored))} ({len(stored)} of {total})" if stored
            else f"no run was stored (0 of {total})")
    return (f"optimlab compare: interrupted; {kept} in {location}; experiment {experiment!r} is incomplete "
            "(marked so in the store)")


def _intro(task: Any, args: argparse.Namespace, location: str, started: datetime) -> list[str]:
    import torch

    return [
        f"Task {task.name}: {task.description}; {task.num_train} training rows, "
        f"{task.num_examples('val')} validation rows, {task.num_examples('test')} test rows; "
        + (f"from --task {args.task_function}." if getattr(args, "task_function", None) else
           f"standardized: {not args.no_standardize}; init: {task.init}."),
        f"Command: {getattr(args, 'command_line', None) or 'optimlab ' + ' '.join(sys.argv[1:])}",
        f"Started {started.isoformat(timespec='seconds')}; runs stored in {location}. torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU thread(s). Times are training seconds, evaluation excluded.",
    ]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
