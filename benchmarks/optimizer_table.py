"""The optimizer table of docs/optimizers.md: equal tuning budget, then compare over seeds.

For each task and each optimizer spec: an ``optimlab sweep`` study (grid sampler) over the learning
rate only, ``--trials`` values log-spaced over ``--decades`` decades centred on the optimizer's
registry default lr (every optimizer gets the same budget: trials x epochs x 1 seed); the best lr
(final validation loss; the training loss on airfoil, which has no validation split) is then run
by ``compare`` (engine/compare.py) over ``--seeds`` seeds. Writes a Markdown table and JSON.

    python benchmarks/optimizer_table.py                      # the default list, ~5-8 min on 2 cores
    python benchmarks/optimizer_table.py --opt adam --opt nadam --opt radam --opt muon   # another list

Each optimizer keeps its other hyperparameters at the registry defaults (``optimlab list``); an
``--opt`` may be a spec with fixed values, e.g. ``adamw:weight_decay=0.1`` (only lr is swept).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSICS = ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"]
BEYOND = ["lion", "sf-adamw", "sf-sgd", "ademamix", "soap"]
TASKS = {"digits-cnn": 6, "airfoil-mlp": 2}  # task -> epochs (tuning and comparison alike)


def lr_space(spec: str, decades: float) -> str:
    """``lr=log:LOW:HIGH`` spanning `decades` decades around the optimizer's registry default lr."""
    from optimlab.optim.registry import resolve

    entry, kwargs = resolve(spec)
    centre = float(kwargs.get("lr", entry.all_defaults()["lr"]))
    half = 10 ** (decades / 2)
    return f"lr=log:{centre / half:.3g}:{centre * half:.3g}"


def tune(task: str, spec: str, *, trials: int, epochs: int, decades: float, url: str) -> dict[str, Any]:
    """One grid study over lr through optimlab's sweep machinery; the best trial's lr and score."""
    from optimlab.spec import format_value, parse_spec
    from optimlab.sweep import plan as plans
    from optimlab.sweep.results import load_sweep
    from optimlab.sweep.runner import work
    from optimlab.sweep.storage import open_storage, release
    from optimlab.tasks import get_task

    parsed = parse_spec(spec, "optimizer spec")
    name = f"table-{task}-{spec}".replace("/", "_").replace(":", "_").replace(",", "_").replace("=", "_")
    fixed = [f"{key}={format_value(value)}" for key, value in parsed.kwargs.items() if key != "lr"]  # not swept
    plan_list = plans.make_plans(name, [task], [parsed.name], ["grid"], [lr_space(spec, decades), *fixed],
                                 trials=trials, epochs=epochs, seeds=1, batch_size=get_task(task).default_batch_size,
                                 with_defaults=False)
    storage = open_storage(url)
    try:
        plans.create_studies(url, storage, plan_list)
    finally:
        release(storage)
    work(url, name, torch_threads=1)
    (study,) = load_sweep(url, name)
    best = study.best()
    trials_out = [{"lr": t.params.get("lr"), "score": t.value, "outcome": t.outcome} for t in study.finished]
    low, high = lr_space(spec, decades).removeprefix("lr=log:").split(":")
    return {"space": study.plan.space, "lr_range": [float(low), float(high)], "best_lr": None if best is None else best.params["lr"],
            "best_score": None if best is None else best.value, "trials": trials_out}


def spec_with_lr(spec: str, lr: float) -> str:
    from optimlab.spec import Spec, parse_spec

    parsed = parse_spec(spec, "optimizer spec")
    return str(Spec(parsed.name, {**parsed.kwargs, "lr": float(f"{lr:.4g}")}))


def compare(task: str, specs: list[str], *, seeds: int, epochs: int) -> dict[str, dict[str, Any]]:
    """Mean and std over seeds of the final losses and metrics of each spec (engine/compare.py)."""
    from optimlab.engine.compare import compare_optimizers
    from optimlab.tasks import get_task

    # seeds 1..N: the tuning ran seed 0, so the comparison is on seeds the lr was not chosen on
    results = compare_optimizers(get_task(task), specs, seeds=seeds, first_seed=1, epochs=epochs)
    table: dict[str, dict[str, Any]] = {}
    for spec in specs:
        runs = [r for r in results if r.spec == spec]
        rows = [r.trace.epochs[-1] for r in runs]
        record: dict[str, Any] = {"outcomes": [r.trace.outcome for r in runs],
                                  "seconds": statistics.mean(r.trace.meta["train_seconds"] for r in runs)}
        for column in ("train_loss", "val_loss", "val_metric"):
            values = [row.get(column) for row in rows]
            if all(v is not None and math.isfinite(v) for v in values):
                record[column] = statistics.mean(values)
                record[f"{column}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        table[spec] = record
    return table


def markdown(task: str, epochs: int, tuned: dict[str, dict[str, Any]], compared: dict[str, dict[str, Any]],
             seeds: int, trials: int) -> str:
    from optimlab.tasks import get_task

    metric = get_task(task).metric_name
    columns = [c for c in ("train_loss", "val_loss", "val_metric") if any(c in r for r in compared.values())]
    titles = {"train_loss": "train loss", "val_loss": "val loss", "val_metric": f"val {metric}"}
    lines = [f"**{task}** ({epochs} epochs, batch {get_task(task).default_batch_size}; lr tuned over {trials} grid "
             f"values, then {seeds} seeds; mean ± std; * best lr at the edge of its range)", "",
             "| optimizer | lr range | best lr | " + " | ".join(titles[c] for c in columns) + " | s/run |",
             "|---|---|---|" + "---|" * len(columns) + "---|"]

    def cell(record: dict[str, Any], column: str) -> str:
        if column not in record:
            return "diverged" if any(o == "diverged" for o in record["outcomes"]) else "-"
        digits = 3 if column == "val_metric" else 4
        return f"{record[column]:.{digits}f} ± {record[column + '_std']:.{digits}f}"

    key = columns[1] if len(columns) > 1 and columns[1] == "val_loss" else columns[0]
    order = sorted(compared, key=lambda s: compared[s].get(key, math.inf))
    for tuned_spec in order:
        record, info = compared[tuned_spec], tuned[tuned_spec]
        low, high = info["lr_range"]
        edge = "*" if info["best_lr"] in (min(t["lr"] for t in info["trials"]), max(t["lr"] for t in info["trials"])) else ""
        lines.append(f"| {info['spec']} | {low:.3g} – {high:.3g} | {info['best_lr']:.3g}{edge} | "
                     + " | ".join(cell(record, c) for c in columns) + f" | {record['seconds']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opt", action="append", help="optimizer spec, repeatable (default: classics + beyond)")
    parser.add_argument("--task", action="append", help=f"task, repeatable (default: {', '.join(TASKS)})")
    parser.add_argument("--trials", type=int, default=8, help="lr values per optimizer (default 8)")
    parser.add_argument("--decades", type=float, default=4.0, help="width of the lr range in decades (default 4)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the comparison (default 3)")
    parser.add_argument("--epochs", type=int, help="epochs for every task (default: digits-cnn 6, airfoil-mlp 2)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "optimizer_table"),
                        help="output stem: writes STEM.md and STEM.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import optuna
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    specs = args.opt or CLASSICS + BEYOND
    tasks = {task: args.epochs or TASKS.get(task, 2) for task in (args.task or list(TASKS))}
    began = time.perf_counter()
    report: dict[str, Any] = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                                          "cpus": os.cpu_count(), "device": "cpu", "torch": torch.__version__,
                                          "threads": 1},
                              "settings": {"trials": args.trials, "decades": args.decades, "seeds": args.seeds,
                                           "tasks": tasks, "specs": specs}, "tasks": {}}
    sections = []
    with tempfile.TemporaryDirectory() as folder:
        url = str(Path(folder) / "table.journal")
        for task, epochs in tasks.items():
            tuned = {}  # keyed by the tuned spec (the spec with its best lr)
            for spec in specs:
                result = tune(task, spec, trials=args.trials, epochs=epochs, decades=args.decades, url=url)
                print(f"{task} {spec}: best lr {result['best_lr']}", file=sys.stderr)
                if result["best_lr"] is not None:
                    tuned[spec_with_lr(spec, result["best_lr"])] = {"spec": spec, **result}
            compared = compare(task, list(tuned), seeds=args.seeds, epochs=epochs)
            report["tasks"][task] = {"epochs": epochs, "tuning": tuned, "compare": compared}
            sections.append(markdown(task, epochs, tuned, compared, args.seeds, args.trials))
    report["seconds"] = time.perf_counter() - began
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str))
    text = "\n\n".join(sections) + f"\n\n({report['seconds']:.0f} s on {os.cpu_count()} CPUs, torch {torch.__version__})\n"
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
