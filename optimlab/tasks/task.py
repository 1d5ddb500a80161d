"""A Task = data split + model + loss + metric: what the training engine needs and nothing more.

Loss (what the optimizer minimizes, per example averaged over the batch):
- regression: mean((y_hat - y)^2) / 2 (D2L's squared loss);
- classification: cross-entropy of the softmax of the logits;
plus ``l2 / 2 * sum of squared weights`` (biases excluded) when ``l2 > 0``.
Metric: accuracy (``acc``) for classification, R^2 = 1 - SS_res / SS_tot (``r2``) for regression;
both are "higher is better".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .datasets import CLASSIFICATION, Dataset
from .models import build_model, initialize

EVAL_CHUNK = 4096  # rows per forward pass when evaluating a whole split


@dataclass
class Split:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def split_dataset(dataset: Dataset, val_fraction: float, test_fraction: float, seed: int) -> Split:
    """A seeded random train/val/test split; a published test set (MNIST, CIFAR) is kept as the test split."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{name}={value!r} must be in [0, 1)")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction = {val_fraction + test_fraction:g} must be < 1")
    n = len(dataset.x)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    has_test = dataset.x_test is not None
    n_test = 0 if has_test else int(round(test_fraction * n))
    n_val = int(round(val_fraction * n))
    # each split keeps the file's row order (training shuffles anyway): with no split, the data set as is
    test_idx, val_idx, train_idx = (part.sort().values for part in
                                    (order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]))
    if has_test:
        x_test, y_test = dataset.x_test, dataset.y_test
    else:
        x_test, y_test = dataset.x[test_idx], dataset.y[test_idx]
    return Split(dataset.x[train_idx], dataset.y[train_idx], dataset.x[val_idx], dataset.y[val_idx], x_test, y_test)


def standardize_split(split: Split, targets: bool) -> Split:
    """(x - mean) / std per feature with the TRAIN split's mean and population std (std 0 -> 1);
    the targets too when ``targets`` (regression)."""
    def scale(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
        mean = train.mean(dim=0)
        std = train.std(dim=0, unbiased=False)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return [(t - mean) / std for t in (train, *others)]

    x_train, x_val, x_test = scale(split.x_train, split.x_val, split.x_test)
    y = (split.y_train, split.y_val, split.y_test)
    if targets:
        y = tuple(scale(*y))
    return Split(x_train, y[0], x_val, y[1], x_test, y[2])


@dataclass
class Task:
    """A named training problem; ``make_model()`` builds a freshly initialized model."""

    name: str
    kind: str
    split: Split
    model_kind: str
    num_classes: int = 0
    init: str = "default"
    l2: float = 0.0
    model_options: dict[str, int] = field(default_factory=dict)
    default_batch_size: int = 32
    default_epochs: int = 10
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # how it was built, for the store

    @property
    def convex(self) -> bool:
        """Linear and softmax regression have convex losses (L-BFGS full batch is at home there)."""
        return self.model_kind in ("linear", "softmax")

    @property
    def metric_name(self) -> str:
        return "acc" if self.kind == CLASSIFICATION else "r2"

    @property
    def num_train(self) -> int:
        return len(self.split.x_train)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.split.x_train.shape[1:])

    def make_model(self) -> nn.Module:
        out = self.num_classes if self.kind == CLASSIFICATION else 1
        model = build_model(self.model_kind, self.input_shape, out, **self.model_options)
        model = initialize(model, self.init)
        return model.to(self.split.x_train.dtype)

    def loss_fn(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean data loss (no penalty): squared loss / 2 or cross-entropy."""
        if self.kind == CLASSIFICATION:
            return F.cross_entropy(output, target)
        return 0.5 * torch.mean((output - target) ** 2)

    def penalty(self, model: nn.Module) -> torch.Tensor | float:
        """l2 / 2 * sum of squared weights (parameters named '*weight'; biases are not penalized)."""
        if self.l2 == 0:
            return 0.0
        squares = [p.pow(2).sum() for name, p in model.named_parameters() if name.endswith("weight")]
        return 0.5 * self.l2 * torch.stack(squares).sum()

    def objective(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What the optimizer minimizes on a batch: loss_fn(model(x), y) + penalty(model)."""
        return self.loss_fn(model(x), y) + self.penalty(model)

    def metric(self, output: torch.Tensor, target: torch.Tensor) -> float:
        if self.kind == CLASSIFICATION:
            return (output.argmax(dim=1) == target).double().mean().item()
        residual = ((output - target) ** 2).sum()
        total = ((target - target.mean()) ** 2).sum()
        return float("nan") if total == 0 else (1 - residual / total).item()

    def data(self, which: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of a split; its first ``limit`` rows when given."""
        if which not in ("train", "val", "test"):
            raise ValueError(f"unknown split {which!r}; choose one of: train, val, test")
        x, y = getattr(self.split, f"x_{which}"), getattr(self.split, f"y_{which}")
        return (x, y) if limit is None else (x[:limit], y[:limit])

    def num_examples(self, which: str) -> int:
        return len(self.data(which)[0])

    def train_batches(self, batch_size: int, generator: torch.Generator):  # noqa: ANN201 (a generator)
        """One epoch of minibatches: a fresh permutation from ``generator`` (none for the full batch)."""
        x, y = self.split.x_train, self.split.y_train
        order = torch.randperm(len(x), generator=generator) if batch_size < len(x) else None
        for start in range(0, len(x), batch_size):
            index = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            yield x[index], y[index]

    @torch.no_grad()
    def evaluate(self, model: nn.Module, which: str = "train") -> tuple[float | None, float | None]:
        """(objective, metric) on a whole split, in eval mode; (None, None) for an empty split."""
        x, y = self.data(which)
        if len(x) == 0:
            return None, None
        was_training = model.training
        model.eval()
        outputs = torch.cat([model(x[i:i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)])
        model.train(was_training)
        loss = (self.loss_fn(outputs, y) + self.penalty(model)).item()
        return loss, self.metric(outputs, y)


__all__ = ["Task", "Split", "split_dataset", "standardize_split"]
