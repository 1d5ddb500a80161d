"""`optimlab list`: the optimizers under the names specs use, with the defaults those names get.

A name's defaults (e.g. ``sgd`` has lr=0.1) are the spec's; the classes themselves
(``optimlab.optim.SGD``...) keep torch's signatures and defaults, so they are drop-in replacements.
"""

from __future__ import annotations

import argparse
import json

from ..spec import format_value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "list", help="list the optimizers with the defaults their spec names use",
        description="The optimizers under the names specs use (sgd, momentum, adam, ...) with the defaults a "
                    "spec gets. These are the spec defaults; the classes (optimlab.optim.SGD, Adam, ...) keep "
                    "torch's defaults, as drop-in replacements for torch.optim.")
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
    width = max(len(row["class"]) for row in rows)
    print(f"{'name':<10} {'class':<{width}} description")
    for row in rows:
        defaults = ",".join(f"{k}={format_value(v)}" for k, v in row["defaults"].items())
        print(f"{row['name']:<10} {row['class']:<{width}} {row['description']}")
        print(f"{'':<{width + 11}} defaults: {defaults}")
    print("\nThese are the defaults of the spec names; the classes (optimlab.optim.SGD, Adam, ...) keep torch's "
          "defaults (e.g. optimlab.optim.SGD has lr=1e-3 like torch.optim.SGD; the spec name sgd uses lr=0.1).")
    return 0
