"""`optimlab analyze NAME`: the critical points and convexity of a landscape (or, for a training task,
the curvature analysis of `optimlab.commands._analyze_task`).

    optimlab analyze himmelblau
    optimlab analyze quadratic:kappa=100 --json
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
from collections import Counter
from types import ModuleType
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads when the verb runs, not for --help
    from ..analysis.critical_points import CriticalPoint

MAX_GRID = 201  # starts per axis: grid^2 Newton runs on a 2-D landscape
MAX_SAMPLES = 1_000_000


PLURALS = {"minimum": "minima", "maximum": "maxima", "saddle": "saddles", "degenerate": "degenerate points"}


def _task_module() -> ModuleType | None:
    """The curvature helper's task analysis, when it is installed."""
    try:
        return importlib.import_module("optimlab.commands._analyze_task")
    except ModuleNotFoundError as error:
        if error.name != "optimlab.commands._analyze_task":
            raise
        return None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze", help="critical points and convexity of a landscape (curvature of a task)",
        description="For a landscape: find its critical points (Newton on the gradient from a grid of "
                    "starts), classify them by Hessian eigenvalues, and test convexity on the domain.",
        epilog="`optimlab landscapes` lists the landscapes; `optimlab tasks` the training tasks.")
    parser.add_argument("name", nargs="?", help="landscape name or spec (himmelblau, quadratic:kappa=100) or task name")
    parser.add_argument("--task", dest="task_function", metavar="MODULE:FUNCTION",
                        help="your own task: package.module:function or path/to/file.py:function (docs/compare.md)")
    parser.add_argument("--grid", type=int, default=41, help="starts per axis for the critical-point search")
    parser.add_argument("--samples", type=int, default=2000, help="random points and pairs for the convexity test")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    task_module = _task_module()
    if task_module is not None:
        task_module.add_arguments(parser)
    parser.set_defaults(func=run)


def _clean(value: float, digits: str = ".6g") -> str:
    """A number for the table, with round-off residue (|v| < 1e-12) shown as 0."""
    return format(0.0 if abs(value) < 1e-12 else value, digits)


def _format_row(cp: CriticalPoint, bounded_below: bool = True) -> list[str]:
    lowest = "global minimum" if bounded_below else "lowest minimum"  # f -> -inf: none is global
    kind = lowest if cp.is_global_min else cp.kind
    kappa = "inf" if math.isinf(cp.condition_number) else f"{cp.condition_number:.4g}"
    return ["(" + ", ".join(_clean(v) for v in cp.point) + ")", _clean(cp.value),
            "[" + ", ".join(_clean(e, ".4g") for e in cp.eigenvalues) + "]", kind, kappa]


def format_critical_points(points: list[CriticalPoint], limit: int = 40, bounded_below: bool = True) -> str:
    header = ["point", "f", "Hessian eigenvalues", "kind", "condition number"]
    body = [_format_row(cp, bounded_below) for cp in points[:limit]]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if len(points) > limit:
        lines.append(f"... and {len(points) - limit} more (--json lists all)")
    return "\n".join(lines)


def analyze_landscape(spec: str, grid: int = 41, samples: int = 2000) -> dict[str, Any]:
    """The critical points, their counts by kind, and the convexity verdict, as plain data."""
    from ..analysis.convexity import check_convexity
    from ..analysis.critical_points import find_critical_points
    from ..landscapes import get_landscape

    landscape = get_landscape(spec)
    points = find_critical_points(landscape, grid=grid)
    verdict = check_convexity(landscape, samples=samples, pairs=samples)
    return {"landscape": landscape.spec, "formula": landscape.formula, "dim": landscape.dim,
            "domain": [list(b) for b in landscape.bounds], "grid": grid,
            "counts": dict(Counter(cp.kind for cp in points)),
            "critical_points": [cp.to_dict() for cp in points], "convexity": verdict.to_dict(),
            "_points": points, "_verdict": verdict}


def run(args: argparse.Namespace) -> int:
    from ..landscapes import LANDSCAPES, get_landscape, is_landscape

    if args.name and args.task_function:
        raise ValueError(f"give a landscape or task name ({args.name!r}) or --task {args.task_function!r}, not both")
    if not args.name and not args.task_function:
        raise ValueError("name a landscape or task (e.g. himmelblau, digits-mlp) "
                         "or give --task package.module:function")
    if args.task_function or not is_landscape(args.name):
        task_module = _task_module()
        if task_module is None:
            raise ValueError(f"unknown landscape or task {args.name!r}; landscapes: {', '.join(LANDSCAPES)}")
        return int(task_module.run(args) or 0)
    if not 2 <= args.grid <= MAX_GRID:
        raise ValueError(f"--grid {args.grid} must be from 2 to {MAX_GRID}")
    if not 1 <= args.samples <= MAX_SAMPLES:
        raise ValueError(f"--samples {args.samples} must be from 1 to {MAX_SAMPLES}")
    result = analyze_landscape(args.name, args.grid, args.samples)
    points, verdict = result.pop("_points"), result.pop("_verdict")
    if args.json:
        print(json.dumps(result))
        return 0
    domain = " x ".join(f"[{low:g}, {high:g}]" for low, high in result["domain"])
    counts = ", ".join(f"{result['counts'][kind]} {kind if result['counts'][kind] == 1 else PLURALS[kind]}"
                       for kind in PLURALS if kind in result["counts"])
    print(f"{result['landscape']}: f = {result['formula']} on {domain}")
    print(f"critical points (Newton on the gradient from a {args.grid}-per-axis grid of starts): {counts or 'none'}")
    if points:
        print(format_critical_points(points, bounded_below=get_landscape(args.name).global_min is not None))
    print(f"convexity: {verdict.text}")
    return 0
