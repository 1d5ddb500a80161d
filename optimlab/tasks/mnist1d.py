"""MNIST-1D (Greydanus & Kobak, "Scaling down deep learning", 2020): 1-D signals of length 40,
10 classes, 4,000 training and 1,000 test examples, generated procedurally by the ``mnist1d``
package with its default arguments and seed (42); nothing is downloaded.

The paper's four models and training settings are the defaults (Adam, lr 1e-2, batch 100, 6,000
steps = 150 epochs of 4,000 examples, no weight decay); its test accuracies: logistic regression
32%, MLP 68%, CNN 94%, GRU 91%.

- ``logistic``: softmax regression on the 40 values;
- ``mlp``: h1 = relu(W1 x), h2 = h1 + relu(W2 h1) (a residual hidden layer), logits = W3 h2, width 100;
- ``cnn``: three Conv1d layers of 25 channels (kernel 5/3/3, stride 2, padding 1) with ReLU,
  lengths 40 -> 19 -> 10 -> 5, then a linear layer on the 125 flattened features;
- ``gru``: a bidirectional GRU with 6 hidden units per direction read over the 40 steps, every
  step's output (40 x 12 = 480 values) flattened into a linear layer.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from .datasets import CLASSIFICATION, Dataset
from .models import SoftmaxRegression, check_init
from .module_task import ModuleTask
from .task import Split, split_dataset

MNIST1D_MODELS = ("logistic", "mlp", "cnn", "gru")
SIGNAL_LENGTH = 40
NUM_CLASSES = 10
PAPER_SEED = 42
PAPER_TEST_ACCURACY = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}
PAPER_BATCH, PAPER_STEPS, PAPER_LR = 100, 6000, 1e-2


@lru_cache(maxsize=4)
def _generate(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    # make_dataset seeds numpy's and python's global generators; give the caller theirs back
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return data["x"], data["y"], data["x_test"], data["y_test"]


def load_mnist1d(seed: int = PAPER_SEED) -> Dataset:
    """The MNIST-1D data set generated with the package's defaults (``seed`` 42 = the paper's data)."""
    x, y, x_test, y_test = (np.array(a) for a in _generate(int(seed)))
    return Dataset("mnist1d", torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.int64),
                   CLASSIFICATION, NUM_CLASSES, f"MNIST-1D (mnist1d package, seed {seed}): 4000 train, 1000 test, length 40",
                   x_test=torch.as_tensor(x_test, dtype=torch.float64), y_test=torch.as_tensor(y_test, dtype=torch.int64))


class MNIST1DMLP(nn.Module):
    """logits = W3 (h1 + relu(W2 h1)), h1 = relu(W1 x): the paper's MLP."""

    def __init__(self, hidden: int = 100) -> None:
        super().__init__()
        self.linear1 = nn.Linear(SIGNAL_LENGTH, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear1(x.flatten(1)).relu()
        return self.linear3(h + self.linear2(h).relu())


class MNIST1DCNN(nn.Module):
    """Three stride-2 Conv1d + ReLU layers (40 -> 19 -> 10 -> 5 positions), then a linear classifier."""

    def __init__(self, channels: int = 25) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, 5, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        self.linear = nn.Linear(channels * 5, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x.reshape(len(x), 1, -1)))


class MNIST1DGRU(nn.Module):
    """A bidirectional GRU over the 40 values (one input feature per step, zero initial state);
    all steps' outputs, flattened, go through a linear layer."""

    def __init__(self, hidden: int = 6) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size=1, hidden_size=hidden, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(2 * hidden * SIGNAL_LENGTH, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.gru(x.reshape(len(x), -1, 1))
        return self.linear(output.flatten(1))


def make_mnist1d_model(model: str, **options: int) -> nn.Module:
    if model == "logistic":
        return SoftmaxRegression(SIGNAL_LENGTH, NUM_CLASSES)
    if model == "mlp":
        return MNIST1DMLP(**options)
    if model == "cnn":
        return MNIST1DCNN(**options)
    if model == "gru":
        return MNIST1DGRU(**options)
    raise ValueError(f"unknown MNIST-1D model {model!r}; choose one of: {', '.join(MNIST1D_MODELS)}")


MODEL_OPTIONS = {"mlp": ("hidden",), "cnn": ("channels",), "gru": ("hidden",), "logistic": ()}


def build_mnist1d_task(model: str, *, seed: int = 0, init: str | None = None, val_fraction: float | None = None,
                       dtype: torch.dtype = torch.float32, l2: float = 0.0, limit: int | None = None,
                       data_seed: int = PAPER_SEED, name: str | None = None, **options: Any) -> ModuleTask:
    """Task ``mnist1d-<model>``. ``val_fraction`` (default 0, the paper's 4000/1000 split) holds out
    part of the 4,000 training examples for validation (``seed`` picks which); the 1,000 test
    examples stay the test split. The data are used as generated (already centred and scaled)."""
    allowed = MODEL_OPTIONS[model]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for task mnist1d-{model}; allowed: "
                         f"{', '.join(list(allowed) + ['l2', 'data_seed'])}")
    if l2 < 0:
        raise ValueError(f"l2={l2!r} must be >= 0")
    model_options = {key: int(value) for key, value in options.items()}
    dataset = load_mnist1d(int(data_seed))
    split = split_dataset(dataset, 0.0 if val_fraction is None else val_fraction, 0.0, seed)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit={limit!r} must be a positive number of training rows")
        split.x_train, split.y_train = split.x_train[:limit], split.y_train[:limit]
    split = Split(*(t.to(dtype) if t.is_floating_point() else t for t in (
        split.x_train, split.y_train, split.x_val, split.y_val, split.x_test, split.y_test)))
    init = check_init(init or "default")
    built_with = {"seed": seed, "init": init, "l2": l2, "limit": limit, "val_fraction": val_fraction,
                  "data_seed": data_seed, **model_options}
    return ModuleTask(name=name or f"mnist1d-{model}", kind=CLASSIFICATION, split=split, model_kind=model,
                      num_classes=NUM_CLASSES, init=init, l2=l2, model_options=model_options,
                      default_batch_size=PAPER_BATCH, default_epochs=PAPER_STEPS * PAPER_BATCH // 4000,
                      description=f"{dataset.description}; model: {model} (Greydanus & Kobak 2020)",
                      options=built_with, model_factory=lambda: make_mnist1d_model(model, **model_options),
                      convex_model=model == "logistic")


__all__ = ["load_mnist1d", "build_mnist1d_task", "make_mnist1d_model", "MNIST1D_MODELS", "PAPER_TEST_ACCURACY",
           "MNIST1DMLP", "MNIST1DCNN", "MNIST1DGRU"]
