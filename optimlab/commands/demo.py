"""`optimlab demo` (what `make demo` runs): compare the notes' optimizers on a real task.

It is ``optimlab compare digits-mlp --seeds 3 --epochs 12 --target val_acc=0.95 --out report/demo``:
an MLP on scikit-learn's 8x8 digits with SGD, momentum, Nesterov, AdaGrad, RMSProp and Adam,
three seeds each; it prints the table (mean ± std over seeds), stores the runs in the results
database and writes the report (PNG figures + one HTML page) to report/demo/.
"""

from __future__ import annotations

import argparse

DEMO_TASK = "digits-mlp"
DEMO_ARGS = ["--seeds", "3", "--epochs", "12", "--target", "val_acc=0.95"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="the main job of `make demo`: compare optimizers on digits-mlp")
    parser.add_argument("--db", help="results database (default: $OPTIMLAB_DB or ./optimlab.db)")
    parser.add_argument("--out", default="report/demo", help="report folder (default report/demo)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines while training")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import build_parser

    argv = ["compare", DEMO_TASK, *DEMO_ARGS, "--out", args.out]
    if args.db:
        argv += ["--db", args.db]
    if args.quiet:
        argv.append("--quiet")
    print(f"optimlab {' '.join(argv)}")
    compare_args = build_parser().parse_args(argv)
    compare_args.command_line = f"optimlab {' '.join(argv)}  (via optimlab demo)"
    return compare_args.func(compare_args)
