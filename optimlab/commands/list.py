"""`optimlab list`: the optimizers (and other registries) with their defaults."""

from __future__ import annotations

import argparse
import json

from ..optim.registry import OPTIMIZERS
from ..spec import format_value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list the optimizers with their defaults")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = [
        {"name": e.name, "class": e.class_path.split(":")[1], "description": e.description,
         "defaults": e.all_defaults(), "needs_closure": e.needs_closure}
        for e in OPTIMIZERS.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    width = max(len(row["class"]) for row in rows)
    print(f"{'name':<10} {'class':<{width}} description")
    for row in rows:
        defaults = ",".join(f"{k}={format_value(v)}" for k, v in row["defaults"].items())
        print(f"{row['name']:<10} {row['class']:<{width}} {row['description']}")
        print(f"{'':<{width + 11}} defaults: {defaults}")
    return 0
