"""`optimlab bench step`: optimizer-step throughput vs torch.optim and the memory-bandwidth floor."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ..optim.validate import check_positive_int
from ..throughput import ALGORITHMS, IMPLEMENTATIONS, default_layouts, format_table, run_benchmark


def add_step_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `optimlab bench step` (shared with benchmarks/step_throughput.py)."""
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--layouts", default="big,many-small", help="comma list of big, many-small")
    parser.add_argument("--big", default=None, metavar="NxS", help="big layout as tensors x size, e.g. 24x1000000")
    parser.add_argument("--small", default=None, metavar="NxS", help="many-small layout, e.g. 10000x2500")
    parser.add_argument("--algorithms", default=None, help=f"comma list of {', '.join(a.name for a in ALGORITHMS)}")
    parser.add_argument("--implementations", default=None,
                        help=f"comma list of: {'; '.join(IMPLEMENTATIONS)} (default: all)")
    parser.add_argument("--min-steps", type=int, default=5, help="timed steps per cell, at least")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of timed steps per cell (more steps)")
    parser.add_argument("--no-check", action="store_true", help="skip the fused-vs-reference agreement check")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--out", default=None, help="also write the JSON result to this file")


def _layout(text: str, name: str) -> tuple[int, int]:
    try:
        tensors, size = (int(part) for part in text.lower().split("x"))
        return check_positive_int(f"{name} tensors", tensors), check_positive_int(f"{name} size", size)
    except ValueError as error:
        if "must be" in str(error):
            raise
        raise ValueError(f"--{name}={text!r} must look like TENSORSxSIZE, e.g. 24x1000000") from None


def run_step(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device=cuda but no CUDA device is available (allowed here: cpu)")
    layouts = default_layouts(device)
    if args.big:
        layouts["big"] = _layout(args.big, "big")
    if args.small:
        layouts["many-small"] = _layout(args.small, "small")
    wanted = args.layouts.split(",")
    unknown = set(wanted) - set(layouts)
    if unknown:
        raise ValueError(f"--layouts {sorted(unknown)} unknown (allowed: big, many-small)")
    algorithms = args.algorithms.split(",") if args.algorithms else None
    known = {a.name for a in ALGORITHMS}
    if algorithms and set(algorithms) - known:
        raise ValueError(f"--algorithms {sorted(set(algorithms) - known)} unknown (allowed: {', '.join(sorted(known))})")
    check_positive_int("--min-steps", args.min_steps)
    progress = (lambda line: print(line, file=sys.stderr, flush=True)) if not args.json else (lambda line: None)
    result = run_benchmark(
        device, {name: layouts[name] for name in wanted}, algorithms,
        args.implementations.split(",") if args.implementations else None,
        min_steps=args.min_steps, budget_s=args.budget, check=not args.no_check, progress=progress,
    )
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text if args.json else format_table(result))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="performance benchmarks")
    verbs = parser.add_subparsers(dest="bench", metavar="<benchmark>", required=True)
    step = verbs.add_parser("step", help="optimizer-step throughput vs torch.optim and the bandwidth floor")
    add_step_arguments(step)
    step.set_defaults(func=run_step)
