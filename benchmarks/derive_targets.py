"""Derive the benchmark's validation targets once, from the reference optimizer's best run, and
store them with the workloads (``optimlab/benchmark/targets.json``).

For every workload of the scale, each configuration of the reference grid (Adam, lr 1e-3, 3e-3,
1e-2) is trained for the workload's full per-trial budget (same batch size, epochs, evaluation
interval and task options as a benchmark trial, seed 0, no early stop). The best run is the one
with the best validation value at any evaluation; the target is that value relaxed by the slack
(5%: accuracy x 0.95, loss x 1.05), see :func:`optimlab.benchmark.targets.derive_target`.

    python benchmarks/derive_targets.py --scale smoke            # minutes on a laptop
    python benchmarks/derive_targets.py --scale full --data-dir ~/data   # a GPU machine
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from optimlab.benchmark.targets import best_value, derive_target
from optimlab.benchmark.workloads import REFERENCE_GRID, TARGET_SLACK, TARGETS_FILE, workloads_for
from optimlab.engine.training import train
from optimlab.tasks import get_task

OUT = Path(__file__).resolve().parent.parent / "optimlab" / "benchmark" / TARGETS_FILE


def derive(scale: str, names: list[str] | None, data_dir: str | None) -> dict[str, dict]:
    records = {}
    for workload in workloads_for(scale, names, include_gpu=bool(data_dir)):
        task = get_task(workload.task, **workload.task_kwargs(data_dir))
        runs = []
        for spec in REFERENCE_GRID:
            started = time.perf_counter()
            trace = train(spec, task, epochs=workload.epochs, batch_size=workload.batch_size, seed=0,
                          eval_every=workload.eval_every)
            best = best_value(trace.epochs, workload.target_column, workload.higher_is_better)
            runs.append({"spec": spec, "best": best, "steps": trace.meta["steps"], "outcome": trace.outcome,
                         "seconds": round(time.perf_counter() - started, 2)})
            print(f"{workload.name:18s} {spec:16s} best {workload.target_column} {best}", flush=True)
        target = derive_target([r["best"] for r in runs], workload.target_column, workload.higher_is_better, TARGET_SLACK)
        records[workload.name] = {"target": target.to_dict(), "task": workload.task, "reference_runs": runs,
                                  "slack": TARGET_SLACK, "epochs": workload.epochs, "batch_size": workload.batch_size}
        print(f"{workload.name:18s} target {target}", flush=True)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--workload", action="append", default=None)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    stored = json.loads(OUT.read_text()) if OUT.exists() else {}
    stored.setdefault(args.scale, {}).update(derive(args.scale, args.workload, args.data_dir))
    stored.setdefault("_derived", {})[args.scale] = {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({platform.machine()})",
        "torch": torch.__version__, "threads": torch.get_num_threads()}
    OUT.write_text(json.dumps(stored, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
