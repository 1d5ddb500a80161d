"""`optimlab bench step`: optimizer-step throughput vs torch.optim and the memory-bandwidth bound."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEVICES = ("cpu", "cuda")
MAX_ELEMENTS = 2_000_000_000  # parameters of one layout (tensors x size): 8 GB of float32 per state buffer
MAX_MIN_STEPS = 100_000
MAX_BUDGET_S = 3600.0


def add_step_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `optimlab bench step` (shared with benchmarks/step_throughput.py)."""
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--layouts", default="big,many-small", help="comma list of big, many-small")
    parser.add_argument("--big", default=None, metavar="NxS", help="big layout as tensors x size, e.g. 24x1000000")
    parser.add_argument("--small", default=None, metavar="NxS", help="many-small layout, e.g. 10000x2500")
    parser.add_argument("--algorithms", default=None,
                        help="comma list of adam, adamw, sgd-momentum, adagrad, rmsprop (default: all)")
    parser.add_argument("--implementations", default=None,
                        help="comma list of implementation names as the table prints them, e.g. 'optimlab fused' "
                             "(default: all; an unknown name is answered with the list)")
    parser.add_argument("--min-steps", type=int, default=5, help="timed steps per cell, at least (default 5)")
    parser.add_argument("--budget", type=float, default=3.0,
                        help="seconds of timed steps per cell (more steps; default 3)")
    parser.add_argument("--no-check", action="store_true", help="skip the fused-vs-reference agreement check")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--out", default=None, help="also write the JSON result to this file")


def _device(name: str | None) -> "torch.device":
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in DEVICES:
        raise ValueError(f"--device {name!r} unknown (allowed: {', '.join(DEVICES)})")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a device name (e.g. cpu, cuda, cuda:0)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device=cuda but no CUDA device is available (allowed here: cpu)")
    return device


def _layout(text: str, name: str) -> tuple[int, int]:
    from ..optim.validate import check_positive_int

    try:
        tensors, size = (int(part) for part in text.lower().split("x"))
        layout = check_positive_int(f"{name} tensors", tensors), check_positive_int(f"{name} size", size)
    except ValueError as error:
        if "must be" in str(error):
            raise
        raise ValueError(f"--{name}={text[:40]!r} must look like TENSORSxSIZE, e.g. 24x1000000") from None
    if tensors * size > MAX_ELEMENTS:
        raise ValueError(f"--{name}={text!r} is {tensors * size} parameters; at most {MAX_ELEMENTS}")
    return layout


def run_step(args: argparse.Namespace) -> int:
    from ..optim.validate import check_positive_int
    from ..throughput import ALGORITHMS, default_layouts, format_table, run_benchmark

    device = _device(args.device)
    if not 1 <= args.min_steps <= MAX_MIN_STEPS:
        raise ValueError(f"--min-steps {args.min_steps} must be from 1 to {MAX_MIN_STEPS}")
    if not 0 < args.budget <= MAX_BUDGET_S:
        raise ValueError(f"--budget {args.budget} must be more than 0 and at most {MAX_BUDGET_S:g} seconds")
    if args.out:
        from ..outputs import check_output_file

        check_output_file(args.out, "--out")
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
    parser = subparsers.add_parser("bench", help="performance benchmarks (optimizer-step throughput)",
                                   description="Performance benchmarks. `optimlab bench step --help` for the one there is.")
    verbs = parser.add_subparsers(dest="bench", metavar="<benchmark>", required=True)
    step = verbs.add_parser(
        "step", help="optimizer-step throughput vs torch.optim and the memory-bandwidth bound",
        description="Time optimizer steps of optimlab's implementations and torch.optim's on a big and a "
                    "many-small parameter layout; report steps/s, GB/s and the share of the measured copy "
                    "bandwidth (an estimate, not a hard floor: a share above 1 means the step moved fewer "
                    "bytes than the model counts, e.g. from caches).")
    add_step_arguments(step)
    step.set_defaults(func=run_step)
