"""`optimlab landscapes`: the test functions of `optimlab trace` / `optimlab analyze`, with their
formulas, starts, domains and known minima."""

from __future__ import annotations

import argparse
import json



def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("landscapes", help="list the test landscapes (formula, start, domain, minima)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def _point(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def run(args: argparse.Namespace) -> int:
    from ..landscapes import LANDSCAPES, describe

    rows = [describe(landscape) for landscape in LANDSCAPES.values()]
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        domain = " x ".join(f"[{low:g}, {high:g}]" for low, high in row["domain"])
        lowest = "no global minimum" if row["global_min"] is None else f"global min f = {row['global_min']:g}"
        count = len(row["minima"])
        print(f"{row['name']:<11} {row['dim']}-D  f = {row['formula']}")
        print(f"{'':<17}start {_point(row['start'])}, domain {domain}, {count} known "
              f"{'minimum' if count == 1 else 'minima'} in it, {lowest}")
        print(f"{'':<17}{row['description']}")
    print("\nParameters and noise go in the spec: cosh:c=0.3, xcos:c=0.15*pi, quadratic:kappa=100, bowl:noise=1")
    return 0
