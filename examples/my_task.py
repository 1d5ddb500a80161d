"""Bring your own model and data: a complete task for optimlab's compare, sweep and analyze.

From the command line (the function ``make_task`` returns the task):

    optimlab compare --task examples/my_task.py:make_task --opt adam:lr=0.01 --opt momentum:lr=0.1,momentum=0.9 --seeds 2
    optimlab sweep --task examples/my_task.py:make_task --opt adam --space lr=log:1e-4:1e-1 --trials 8 --epochs 3
    optimlab analyze --task examples/my_task.py:make_task --opt sgd:lr=0.1 --epochs 2 --examples 512

(``--task examples.my_task:make_task`` works too, from the repository root.) From Python:

    python examples/my_task.py

The data set is two interleaved spirals whose example ``i`` is computed on demand from
``(seed, i)``: nothing is held in memory, which is the point of a DataLoader-backed task. Any
map-style ``torch.utils.data.Dataset`` (images read from disk, token windows of a corpus...)
plugs in the same way.
"""

from __future__ import annotations

import math
import random

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from optimlab.tasks import LoaderTask


class Spirals(Dataset):
    """``size`` points of two spirals (label = arm), with Gaussian noise; example ``i`` is a pure
    function of ``(seed, i)``, generated when asked for."""

    def __init__(self, size: int, seed: int, noise: float = 0.1) -> None:
        self.size, self.seed, self.noise = size, seed, noise

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        draw = random.Random(self.seed * 1_000_003 + index)  # this example's own generator
        label = index % 2
        turn = 0.25 + draw.random()  # how far along the arm: 0.25 to 1.25 turns
        angle = 2 * math.pi * turn + math.pi * label
        point = [turn * math.cos(angle) + self.noise * draw.gauss(0, 1),
                 turn * math.sin(angle) + self.noise * draw.gauss(0, 1)]
        return torch.tensor(point), label


def make_model() -> nn.Module:
    """A fresh 2-64-64-2 tanh MLP (optimlab calls this once per run, after seeding torch)."""
    return nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))


def make_task() -> LoaderTask:
    """The task: model factory, train/val/test DataLoaders, loss and metric."""
    return LoaderTask(
        name="spirals-mlp",
        model=make_model,
        train=DataLoader(Spirals(2048, seed=0), batch_size=64, shuffle=True),
        val=DataLoader(Spirals(512, seed=1), batch_size=256),
        test=DataLoader(Spirals(512, seed=2), batch_size=256),
        loss=F.cross_entropy,  # mean over the batch
        metric="accuracy",  # or "r2", or a function metric(output, target) -> mean over the batch
        epochs=10,
        description="two spirals (2-D points, 2 classes) generated per example",
    )


def main() -> None:
    from optimlab.engine.compare import compare_optimizers
    from optimlab.report.tables import aggregate, render_text

    task = make_task()
    results = compare_optimizers(task, ["adam:lr=0.01", "momentum:lr=0.1,momentum=0.9"], seeds=2)
    headers, rows = aggregate([result.to_json() for result in results], task.metric_name)
    print(render_text(headers, rows))


if __name__ == "__main__":
    main()
