"""`optimlab trace LANDSCAPE --opt SPEC [--opt SPEC ...]`: run optimizers on a test function,
print where each ended, and draw the trajectories.

    optimlab trace rosenbrock --opt gd:lr=1e-3 --opt momentum:lr=1e-3,momentum=0.9 \\
        --opt adam:lr=0.05 --steps 500 --out trace.png
"""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads when the verb runs, not for --help
    from ..landscapes import Landscape
    from ..trace import Trace

EPILOG = ("`optimlab landscapes` lists the landscapes with their formulas. Parameters and gradient noise go in "
          "the spec: cosh:c=0.5, xcos:c=0.15*pi, quadratic:kappa=100, bowl:noise=1. A negative start needs '=': "
          "--start=-1.5,2")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "trace", help="run optimizers on a test landscape, print the outcomes and draw the trajectories",
        description="Run each --opt optimizer on LANDSCAPE from the same start; print a table of where "
                    "each ended and optionally draw the trajectories (--out).", epilog=EPILOG)
    parser.add_argument("landscape", help="landscape name or spec, e.g. rosenbrock or quadratic:kappa=100")
    parser.add_argument("--opt", action="append", required=True, metavar="SPEC",
                        help="optimizer spec, repeatable (gd:lr=0.1, momentum:lr=0.05,momentum=0.9, adam, ...)")
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps (default 100)")
    parser.add_argument("--start", default=None, metavar="X[,Y]",
                        help="starting point (default: the landscape's)")
    parser.add_argument("--schedule", default=None, metavar="SPEC", help="lr schedule, e.g. exponential:gamma=0.99")
    parser.add_argument("--noise", type=float, default=0.0, help="std of Gaussian noise added to each gradient")
    parser.add_argument("--seed", type=int, default=0, help="seed of the gradient noise (default 0)")
    parser.add_argument("--tol", type=float, default=1e-6, help="converged: f - f* <= tol (default 1e-6)")
    parser.add_argument("--out", action="append", default=[], metavar="FILE",
                        help="write the figure (.png, .svg or .pdf; repeat for several formats)")
    parser.add_argument("--json", action="store_true", help="print the summary rows and traces as JSON")
    parser.set_defaults(func=run)


def _parse_point(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.replace(" ", "").strip("()").split(","))
    except ValueError:
        raise ValueError(f"--start {text!r} must be numbers separated by commas, e.g. --start=-1.5,2") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"--start {text!r} must be finite numbers")
    return values


def summarize(trace: Trace, landscape: Landscape, tol: float) -> dict[str, Any]:
    """One table row: the final point and value, distance to the nearest minimum, steps to tolerance."""
    from ..engine.trajectory import distance_to_nearest_minimum, steps_to_tolerance

    final = trace.steps[-1]
    f_star = landscape.global_min
    if f_star is None and landscape.minima:
        f_star = min(m.value for m in landscape.minima)
    return {
        "optimizer": trace.optimizer, "final_x": final["x"], "f": final["f"], "grad_norm": final["grad_norm"],
        "distance_to_minimum": distance_to_nearest_minimum(landscape, final["x"]),
        "steps_to_tol": steps_to_tolerance(trace, tol, f_star), "steps": final["step"],
        "outcome": trace.outcome_text, "seconds": final["time"],
    }


def _number(value: float | None, spec: str = ".4g") -> str:
    if value is None:
        return "-"
    return format(value, spec)


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ["optimizer", "final x", "f", "to nearest min", "steps to tol", "outcome"]
    body = [[row["optimizer"], "(" + ", ".join(_number(v, ".5g") for v in row["final_x"]) + ")",
             _number(row["f"], ".6g"), _number(row["distance_to_minimum"], ".3g"),
             "-" if row["steps_to_tol"] is None else str(row["steps_to_tol"]), row["outcome"]] for row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *body]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _strict(value: Any) -> Any:
    """Non-finite numbers (a diverged run's f) as null, so the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    return value


def run(args: argparse.Namespace) -> int:
    from ..engine.trajectory import MAX_TRAJECTORY_STEPS, run_trajectory
    from ..landscapes import get_landscape

    from ..outputs import check_output_file

    landscape = get_landscape(args.landscape)
    if not 1 <= args.steps <= MAX_TRAJECTORY_STEPS:
        raise ValueError(f"--steps {args.steps} must be from 1 to {MAX_TRAJECTORY_STEPS}")
    if not (math.isfinite(args.noise) and args.noise >= 0):
        raise ValueError(f"--noise {args.noise} must be a finite number >= 0")
    if not (math.isfinite(args.tol) and args.tol > 0):
        raise ValueError(f"--tol {args.tol} must be a finite number > 0")
    for path in args.out:  # refuse a bad file name before running anything
        if not path.lower().endswith((".png", ".svg", ".pdf")):
            raise ValueError(f"--out {path!r} must end in .png, .svg or .pdf")
        check_output_file(path, "--out")
    start = None if args.start is None else _parse_point(args.start)
    traces = [run_trajectory(spec, landscape, args.steps, start=start, schedule=args.schedule,
                             noise=args.noise, seed=args.seed, tol=args.tol) for spec in args.opt]
    rows = [summarize(trace, landscape, args.tol) for trace in traces]
    written = []
    if args.out:
        from ..report.landscape import plot_traces, save_figure

        for path in args.out:
            written.append(str(save_figure(plot_traces(traces, landscape), path)))
    if args.json:
        print(json.dumps(_strict({"landscape": landscape.spec, "formula": landscape.formula, "rows": rows,
                                  "figures": written, "traces": [t.to_dict() for t in traces]}), allow_nan=False))
        return 0
    start, noise = traces[0].steps[0]["x"], traces[0].meta["noise"]
    print(f"{landscape.spec}: f = {landscape.formula}, start ({', '.join(f'{v:g}' for v in start)}), "
          f"{args.steps} steps, tol {args.tol:g}" + (f", gradient noise {noise:g} (seed {args.seed})" if noise else "")
          + (f", schedule {args.schedule}" if args.schedule else ""))
    print(format_table(rows))
    for path in written:
        print(f"wrote {path}")
    return 0
