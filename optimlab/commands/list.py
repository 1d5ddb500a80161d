"""`optimlab list`: the optimizers (and other registries) with their defaults."""

from __future__ import annotations

import argparse
import json

from ..spec import format_value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list the optimizers with their defaults")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..optim.registry import OPTIMIZERS

    rows = [
        {"name": e.name, "class": e.class_path.split(":")[1], "description": e.description,
         "defaults": e.all_defaults(), "needs_closure": e.needs_closure}
        for e in OPTIMIZERS.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(f"{'name':<10} {'class':<8} description")
    for row in rows:
        defaults = ",".join(f"{k}={format_value(v)}" for k, v in row["defaults"].items())
        print(f"{row['name']:<10} {row['class']:<8} {row['description']}")
        print(f"{'':<19} defaults: {defaults}")
    return 0
