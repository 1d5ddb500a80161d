"""`optimlab tasks`: the training tasks (dataset-model) with their defaults."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tasks", help="list the training tasks (dataset-model) and their defaults")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..report.tables import render_text
    from ..tasks.registry import DATASETS, TASKS
    from ..tasks.workloads import WORKLOAD_TASKS

    rows = []
    for name, dataset in TASKS.items():
        entry = DATASETS[dataset]
        model = name[len(dataset) + 1:]
        rows.append({"task": name, "dataset": dataset, "model": model, "convex": model in ("linear", "softmax"),
                     "batch_size": entry.batch_size, "epochs": entry.epochs,
                     "options": list(entry.options) + ["l2"] + (["hidden", "depth"] if model == "mlp" else [])
                     + (["channels"] if model == "cnn" else []),
                     "needs_data_dir": entry.needs_data_dir})
    for name, workload in WORKLOAD_TASKS.items():
        dataset, _, model = name.partition("-")
        rows.append({"task": name, "dataset": dataset, "model": model, "convex": model == "logistic",
                     "batch_size": workload.batch_size, "epochs": workload.epochs,
                     "options": list(workload.options) + ["l2"], "needs_data_dir": workload.needs_data_dir,
                     "data": workload.data})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    headers = ["task", "convex", "batch", "epochs", "spec options", "data"]
    table = [[r["task"], "yes" if r["convex"] else "no", str(r["batch_size"]), str(r["epochs"]),
              ",".join(r["options"]), "--data-dir DIR" if r["needs_data_dir"]
              else r.get("data") or ("generated" if r["dataset"] == "synthetic" else "bundled")] for r in rows]
    print(render_text(headers, table))
    return 0
