"""What iterating DataLoaders and showing progress cost against the built-in in-memory fast path.

Trains digits-mlp (momentum, batch 64) for a few epochs, side by side in one process, as:

- ``builtin``: the built-in Task (tensor indexing, ``Task.train_batches``);
- ``inline``: the same task through the engine's fallback for task objects without
  ``train_batches`` (the loop's tensor indexing before DataLoaders were supported);
- ``tensor_dataset``: a LoaderTask over TensorDatasets of the same tensors;
- ``dataloader``: a LoaderTask over ``DataLoader(map-style Dataset, batch_size=64, shuffle=True)``
  (per-example ``__getitem__`` + default collate: what a user's data set costs);
- ``builtin+progress``: the built-in task with compare's per-step progress callback (lines to a
  buffer, as on a non-terminal).

Rounds alternate the variants; the median training seconds (the engine's clock, evaluation
excluded) and wall seconds of each are printed as ratios to ``builtin`` and written as JSON.

    python benchmarks/loader_overhead.py --out benchmarks/results/loader_overhead-<machine>.json
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import time
from typing import Any

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from optimlab.engine.training import train
from optimlab.progress import LineProgress, StepCounter
from optimlab.tasks import LoaderTask, get_task

SPEC = "momentum:lr=0.05,momentum=0.9"


class Rows(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]


class WithoutBatches:
    """The task, minus ``train_batches``: the engine falls back to indexing ``task.split``."""

    def __init__(self, task: Any) -> None:
        self._task = task

    def __getattr__(self, name: str) -> Any:
        if name == "train_batches":
            raise AttributeError(name)
        return getattr(self._task, name)


def variants() -> dict[str, tuple[Any, list]]:
    task = get_task("digits-mlp")
    s = task.split

    def loader_task(train_data: Any) -> LoaderTask:
        return LoaderTask(model=task.make_model, train=train_data, val=TensorDataset(s.x_val, s.y_val),
                          test=TensorDataset(s.x_test, s.y_test), loss=F.cross_entropy, batch_size=64)

    def progress_callbacks() -> list:
        return [StepCounter(LineProgress("bench", 10**9, stream=io.StringIO(), interval=3600), "run")]

    return {
        "builtin": (task, list),
        "inline": (WithoutBatches(task), list),
        "tensor_dataset": (loader_task(TensorDataset(s.x_train, s.y_train)), list),
        "dataloader": (loader_task(DataLoader(Rows(s.x_train, s.y_train), batch_size=64, shuffle=True)), list),
        "builtin+progress": (task, progress_callbacks),
    }


def measure(rounds: int, epochs: float) -> dict[str, Any]:
    torch.set_num_threads(1)
    runs = variants()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    walls: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (task, callbacks) in runs.items():
            started = time.perf_counter()
            trace = train(SPEC, task, epochs=epochs, seed=0, callbacks=callbacks())
            walls[name].append(time.perf_counter() - started)
            seconds[name].append(trace.meta["train_seconds"])
    base, base_wall = statistics.median(seconds["builtin"]), statistics.median(walls["builtin"])
    return {
        "machine": platform.node(), "processor": platform.processor() or platform.machine(), "device": "cpu",
        "torch": torch.__version__, "threads": 1, "task": "digits-mlp", "optimizer": SPEC, "epochs": epochs,
        "rounds": rounds,
        "variants": {name: {"train_seconds_median": statistics.median(seconds[name]),
                            "wall_seconds_median": statistics.median(walls[name]),
                            "train_ratio_to_builtin": statistics.median(seconds[name]) / base,
                            "wall_ratio_to_builtin": statistics.median(walls[name]) / base_wall}
                     for name in runs},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--out", default="benchmarks/results/loader_overhead.json")
    args = parser.parse_args()
    result = measure(args.rounds, args.epochs)
    for name, row in result["variants"].items():
        print(f"{name:18s} train {row['train_seconds_median']:.3f} s (x{row['train_ratio_to_builtin']:.2f})  "
              f"wall {row['wall_seconds_median']:.3f} s (x{row['wall_ratio_to_builtin']:.2f})")
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
