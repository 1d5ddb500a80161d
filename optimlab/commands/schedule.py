"""`optimlab schedule <spec>...`: print and plot learning-rate schedules."""

from __future__ import annotations

import argparse
import json

MAX_STEPS = 1_000_000  # the lr of every step is computed and kept


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schedule", help="print and plot learning-rate schedules (lr vs step)",
        description="Examples: optimlab schedule cosine:total=1000,warmup=100 --steps 1100 --out lr.png; "
                    "optimlab schedule step:every=10,factor=0.5 exponential:gamma=0.97 --steps 100 --log",
    )
    parser.add_argument("specs", nargs="*", metavar="spec", help="schedule spec(s), e.g. cosine:total=1000,warmup=100")
    parser.add_argument("--list", action="store_true", help="list the schedules and their formulas")
    parser.add_argument("--steps", type=int, default=100, help="number of optimizer steps (default 100)")
    parser.add_argument("--lr", type=float, default=0.1, help="the group's base lr (peak lr for cyclic/onecycle)")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="epoch length for specs with unit=epoch")
    parser.add_argument("--out", default=None, help="write the figure here (PNG, or SVG by extension)")
    parser.add_argument("--log", action="store_true", help="log-scale lr axis")
    parser.add_argument("--json", action="store_true", help="print the lr of every step as JSON")
    parser.set_defaults(func=run)


def sample_steps(total: int, count: int = 8) -> list[int]:
    """About ``count`` evenly spaced steps from 0 to total-1, both ends included."""
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)}) if total > 1 else [0]


def list_schedules() -> None:
    """One line per schedule: its name and the first line of its docstring (the formula)."""
    from ..schedules import SCHEDULES

    for name, factory in SCHEDULES.items():
        print(f"{name:<16} {(factory.__doc__ or '').strip().splitlines()[0]}")
    print("any schedule also takes warmup=W,warmup_start=S and unit=epoch|steps_per_epoch=N[,smooth=true]")


def run(args: argparse.Namespace) -> int:
    if args.list:
        list_schedules()
        return 0
    from ..optim.validate import check_lr
    from ..schedules import parse_schedule, snapshot_steps

    if not args.specs:
        raise ValueError("give at least one schedule spec (e.g. cosine:total=100), or --list")
    if not 1 <= args.steps <= MAX_STEPS:
        raise ValueError(f"--steps {args.steps} must be from 1 to {MAX_STEPS}")
    if args.steps_per_epoch is not None and args.steps_per_epoch < 1:
        raise ValueError(f"--steps-per-epoch {args.steps_per_epoch} must be >= 1")
    if args.out:
        from ..outputs import check_output_file

        check_output_file(args.out, "--out")
    base_lr = check_lr(args.lr, "--lr")
    curves, snapshots = [], []
    for spec in args.specs:
        schedule = parse_schedule(spec, steps_per_epoch=args.steps_per_epoch)
        curves.append((spec, [base_lr * schedule(step) for step in range(args.steps)]))
        snapshots.append(snapshot_steps(schedule, args.steps))
    if args.json:
        print(json.dumps([{"spec": spec, "lr": lrs, "snapshot_steps": marks}
                          for (spec, lrs), marks in zip(curves, snapshots)]))
    else:
        shown = sample_steps(args.steps)
        width = max(len(spec) for spec in args.specs)
        print(f"{'step':>{width}} " + " ".join(f"{step:>10d}" for step in shown))
        for (spec, lrs), marks in zip(curves, snapshots):
            print(f"{spec:>{width}} " + " ".join(f"{lrs[step]:>10.4g}" for step in shown))
            if marks:
                print(f"{'':>{width}} cycle ends (snapshot steps): {', '.join(map(str, marks))}")
    if args.out:
        from ..report.schedules import plot_schedules

        path = plot_schedules(curves, args.out, log=args.log, snapshots=snapshots, steps_per_epoch=args.steps_per_epoch)
        if not args.json:
            print(f"wrote {path}")
    return 0
