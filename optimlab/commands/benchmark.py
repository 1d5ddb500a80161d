"""`optimlab benchmark`: AlgoPerf's rules at laptop scale -- time to a fixed validation target per
workload, under the same declared tuning budget for every optimizer, scored by performance
profiles on steps and on training seconds. Writes a leaderboard page (HTML) and stores every run."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..store import DEFAULT_DB

EPILOG = """examples:
  optimlab benchmark                                   (smoke scale on CPU: every CPU workload, the notes' six optimizers)
  optimlab benchmark --workload mnist1d-mlp --opt adam --opt momentum --trials 5 --study mine
  optimlab benchmark --scale full --data-dir ~/data --storage postgresql://u@db/optuna --db postgresql://u@db/optimlab --study full1
  optimlab benchmark --resume --study full1 --storage postgresql://u@db/optuna --db postgresql://u@db/optimlab
                                                       (the same command on every other machine: it joins the trials)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("benchmark", help="AlgoPerf-style benchmark: time to target under an equal tuning budget",
                                   description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default=None, help="smoke (CPU, minutes; default without a GPU) or full (GPUs)")
    parser.add_argument("--workload", action="append", default=None, help="only this workload (repeatable)")
    parser.add_argument("--opt", action="append", default=None, metavar="NAME",
                        help="optimizer (repeatable; default: sgd momentum nesterov adagrad rmsprop adam)")
    parser.add_argument("--space", action="append", default=[], metavar="OPT.NAME=RANGE",
                        help="declare an optimizer's search space (replaces its default), e.g. adam.lr=log:1e-4:1e-2")
    parser.add_argument("--trials", type=int, default=None, help="tuning trials per optimizer and workload (default: the scale's)")
    parser.add_argument("--data-dir", default=None, help="folder with the CIFAR-10 python batches (adds cifar10-resnet at full scale)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    parser.add_argument("--study", default=None, help="benchmark name (default: bench-SCALE)")
    parser.add_argument("--resume", action="store_true", help="join / go on with the benchmark named by --study")
    parser.add_argument("--storage", default=None, help="postgresql://... or a journal file (default: beside --db)")
    parser.add_argument("--db", default=None, help="the optimlab store every run is saved in (default: $OPTIMLAB_DB or ./optimlab.db)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per worker (default: $OMP_NUM_THREADS, else CPUs / workers)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="leaderboard page folder (default: benchmark-report-STUDY)")
    parser.add_argument("--json", action="store_true", help="print the leaderboard as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import optuna

    from ..benchmark.leaderboard import format_leaderboard
    from ..benchmark.run import default_scale, run_benchmark
    from ..summary import json_safe
    from ..sweep.storage import resolve_storage_url

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args.db = args.db or os.environ.get("OPTIMLAB_DB") or DEFAULT_DB
    scale = args.scale or default_scale()
    if args.workers < 1:
        raise ValueError(f"--workers={args.workers} must be >= 1")
    threads = args.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or None
    if threads is not None and threads < 1:
        raise ValueError(f"--threads={threads} must be >= 1")
    if args.trials is not None and args.trials < 1:
        raise ValueError(f"--trials={args.trials} must be >= 1")
    if args.resume and not args.study:
        raise ValueError("--resume needs --study NAME")
    from ..benchmark.workloads import parse_declared_spaces

    spaces = parse_declared_spaces(args.space)
    name = args.study or f"bench-{scale}"
    url = resolve_storage_url(args.storage, args.db)
    board = run_benchmark(name, url, args.db, scale=scale, optimizers=args.opt, trials=args.trials,
                          workload_names=args.workload, data_dir=args.data_dir, workers=args.workers,
                          seed=args.seed, resume=args.resume, spaces=spaces, torch_threads=threads, out=args.out or f"benchmark-report-{name}")
    if args.json:
        print(json.dumps(json_safe(board), indent=1, default=str))
    else:
        print(format_leaderboard(board))
        print(f"\nwall time {board['meta']['wall_seconds']:.0f} s; leaderboard page: {board['page']}", file=sys.stderr)
    return 0
