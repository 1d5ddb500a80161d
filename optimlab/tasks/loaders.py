"""Bring your own model and data: a task over ``torch.utils.data`` DataLoaders or Datasets.

``LoaderTask(model=make_net, train=train_loader, val=val_loader, test=test_loader,
loss=F.cross_entropy, metric="accuracy")`` is a task the engine trains exactly like a built-in one
(compare, sweep, curvature, store, reports, schedules, averaging, ensembles, tracking, ``--json``).

Data: each split is a DataLoader or a map-style Dataset yielding ``(input, target)``.

- A **Dataset** is batched by optimlab: every epoch a fresh permutation of its indices drawn from
  the run's seeded generator (the same draws as a built-in task, so a TensorDataset of a built-in
  task's tensors gives the same batches), ``batch_size`` examples per step, the last batch smaller.
- A **DataLoader** is iterated as you built it (sampler, workers, collate, pin_memory). Its
  shuffling draws from torch's global generator, which ``train`` seeds with the run's seed, so a
  seed still reproduces the run. Asking for another batch size (``--batch-size``, ``batch_size=``
  in a spec) rebuilds it on the same dataset, sampler and options with that batch size.

Evaluation reads every example of a split once, in order (a DataLoader's dataset with its batch
size, collate and workers), drawing nothing from torch's global generator, so evaluating does not
change the batches or dropout masks of the training that follows. Nothing is held in memory
beyond one batch: evaluation streams the split and accumulates
``loss`` (mean per target element, weighted by the batch's target count) and the metric.

Metric: ``"accuracy"`` (argmax over the last output dimension equals the target), ``"r2"``
(1 - SS_res / SS_tot over the whole split, accumulated exactly), or a callable
``metric(output, target) -> float`` that is a mean over the batch's target elements (averaged over
batches with those weights). ``higher_is_better`` says which way it points.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from .datasets import CLASSIFICATION, REGRESSION

BUILT_IN_METRICS = {"accuracy": "acc", "acc": "acc", "r2": "r2"}
SPLITS = ("train", "val", "test")


class LoaderTask:
    """A training task from a model factory and DataLoaders/Datasets (see the module docstring)."""

    init = "default"
    l2 = 0.0
    model_kind = "custom"
    model_options: dict[str, Any] = {}

    def __init__(self, *, model: Callable[[], nn.Module], train: DataLoader | Dataset,
                 val: DataLoader | Dataset | None = None, test: DataLoader | Dataset | None = None,
                 loss: Callable[[Any, Any], torch.Tensor] = F.cross_entropy,
                 metric: str | Callable[[Any, Any], float] = "accuracy", metric_name: str | None = None,
                 higher_is_better: bool = True, name: str = "custom", kind: str | None = None,
                 batch_size: int | None = None, epochs: float = 10, eval_batch_size: int = 1024,
                 device: str | torch.device | None = None, convex: bool = False, description: str = "",
                 options: dict[str, Any] | None = None) -> None:
        if not callable(model) or isinstance(model, nn.Module):
            raise ValueError("model must be a function returning a fresh nn.Module (a factory), not a module")
        if not callable(loss):
            raise ValueError(f"loss must be a function loss(output, target) -> tensor, got {type(loss).__name__}")
        self.model_factory, self.loss = model, loss
        self.splits = {"train": _check_data("train", train), "val": _check_data("val", val),
                       "test": _check_data("test", test)}
        if isinstance(metric, str):
            if metric.lower() not in BUILT_IN_METRICS:
                raise ValueError(f"metric {metric!r}: give 'accuracy', 'r2' or a function metric(output, target)")
            self._metric: str | Callable = BUILT_IN_METRICS[metric.lower()]
            higher_is_better = True
        elif callable(metric):
            self._metric = metric
        else:
            raise ValueError(f"metric must be 'accuracy', 'r2' or a function, got {type(metric).__name__}")
        self.metric_name = metric_name or (self._metric if isinstance(self._metric, str)
                                           else getattr(metric, "__name__", "metric"))
        self.higher_is_better = bool(higher_is_better)
        self.kind = kind or (REGRESSION if self._metric == "r2" else CLASSIFICATION)
        if self.kind not in (CLASSIFICATION, REGRESSION):
            raise ValueError(f"kind {self.kind!r} must be {CLASSIFICATION!r} or {REGRESSION!r}")
        self.name, self.description, self.convex = name, description or f"user task {name}", convex
        self.default_batch_size = _positive_int("batch_size", batch_size) if batch_size is not None else \
            _loader_batch_size(self.splits["train"], self.num_train)
        if not (isinstance(epochs, (int, float)) and epochs > 0):
            raise ValueError(f"epochs={epochs!r} must be positive")
        self.default_epochs = epochs
        self.eval_batch_size = _positive_int("eval_batch_size", eval_batch_size)
        self.device = torch.device(device) if device is not None else None
        self.options = dict(options or {})
        self._rebuilt: dict[int, DataLoader] = {}
        self._evaluation: dict[str, DataLoader] = {}

    # ---- sizes and batches -------------------------------------------------------------------

    @property
    def num_train(self) -> int:
        return self.num_examples("train")

    def num_examples(self, which: str) -> int:
        """The number of examples of a split (0 when the task has none)."""
        data = self.splits[_check_split(which)]
        if data is None:
            return 0
        return len(data.dataset if isinstance(data, DataLoader) else data)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Optimizer steps in one pass over the training data at ``batch_size``."""
        data = self.splits["train"]
        if isinstance(data, DataLoader):
            return len(self._train_loader(batch_size))
        return math.ceil(self.num_train / batch_size)

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple[Any, Any]]:
        """One epoch of ``(input, target)`` training batches (on the task's device)."""
        data = self.splits["train"]
        if isinstance(data, DataLoader):
            batches: Any = self._train_loader(batch_size)
        else:
            n = len(data)
            order = torch.randperm(n, generator=generator) if batch_size < n else torch.arange(n)
            batches = _index_batches(data, [order[i:i + batch_size] for i in range(0, n, batch_size)])
        for batch in batches:
            yield self._pair(batch, "train")

    def eval_batches(self, which: str) -> Iterator[tuple[Any, Any]]:
        """The split's ``(input, target)`` batches: every example once, in dataset order (a
        DataLoader's dataset is read with its batch size, collate and workers, but in order and
        without drop_last), drawing nothing from torch's global generator."""
        data = self.splits[_check_split(which)]
        if data is None:
            return
        if isinstance(data, DataLoader):
            batches: Any = self._eval_loader(which, data)
        else:
            n, size = len(data), self.eval_batch_size
            batches = _index_batches(data, [torch.arange(i, min(i + size, n)) for i in range(0, n, size)])
        for batch in batches:
            yield self._pair(batch, which)

    def _train_loader(self, batch_size: int) -> DataLoader:
        loader = self.splits["train"]
        if batch_size == (loader.batch_size or self.default_batch_size):
            return loader
        if loader.batch_size is None:
            raise ValueError(f"the train DataLoader of task {self.name!r} has its own batch sampler: "
                             f"its batch size cannot be changed to {batch_size}")
        if batch_size not in self._rebuilt:
            self._rebuilt[batch_size] = DataLoader(
                loader.dataset, batch_size=batch_size, sampler=loader.sampler, drop_last=loader.drop_last,
                collate_fn=loader.collate_fn, num_workers=loader.num_workers, pin_memory=loader.pin_memory,
                timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                persistent_workers=loader.persistent_workers and loader.num_workers > 0)
        return self._rebuilt[batch_size]

    def _eval_loader(self, which: str, loader: DataLoader) -> DataLoader:
        if which not in self._evaluation:
            self._evaluation[which] = DataLoader(
                loader.dataset, batch_size=loader.batch_size or self.eval_batch_size, shuffle=False,
                collate_fn=loader.collate_fn, num_workers=loader.num_workers, pin_memory=loader.pin_memory,
                timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                generator=torch.Generator())  # its base seed is drawn from this one, not the global one
        return self._evaluation[which]

    def _pair(self, batch: Any, which: str) -> tuple[Any, Any]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            size = f" of length {len(batch)}" if hasattr(batch, "__len__") else ""
            raise ValueError(f"the {which} data of task {self.name!r} must yield (input, target) pairs, "
                             f"got {type(batch).__name__}{size}")
        x, y = batch
        return (_to_device(x, self.device), _to_device(y, self.device)) if self.device is not None else (x, y)

    # ---- model, loss, metric -----------------------------------------------------------------

    def make_model(self) -> nn.Module:
        model = self.model_factory()
        if not isinstance(model, nn.Module):
            raise ValueError(f"the model factory of task {self.name!r} returned {type(model).__name__}, "
                             "not an nn.Module")
        return model.to(self.device) if self.device is not None else model

    def loss_fn(self, output: Any, target: Any) -> torch.Tensor:
        """The data loss of a batch (mean over its target elements, as ``loss`` computes it)."""
        return self.loss(output, target)

    def penalty(self, model: nn.Module) -> float:
        return 0.0  # a regularizer belongs in the loss or the optimizer's weight decay

    def objective(self, model: nn.Module, x: Any, y: Any) -> torch.Tensor:
        """What the optimizer minimizes on a batch: ``loss(model(x), y)``."""
        return self.loss(model(x), y)

    def metric(self, output: Any, target: Any) -> float:
        """The metric of one batch (or of whole-split outputs, as the ensembles pass them)."""
        accumulator = _MetricSum(self._metric)
        accumulator.add(output, target)
        return accumulator.value()

    @torch.no_grad()
    def evaluate(self, model: nn.Module, which: str = "train") -> tuple[float | None, float | None]:
        """(mean loss, metric) over a whole split, streamed batch by batch in eval mode; (None, None)
        when the task has no such split."""
        if self.num_examples(which) == 0:
            return None, None
        was_training = model.training
        model.eval()
        loss_sum, weight_sum, metric = 0.0, 0, _MetricSum(self._metric)
        try:
            for x, y in self.eval_batches(which):
                output = model(x)
                weight = _weight(x, y)
                loss_sum += float(self.loss(output, y)) * weight
                weight_sum += weight
                metric.add(output, y)
        finally:
            model.train(was_training)
        return loss_sum / weight_sum, metric.value()

    def data(self, which: str, limit: int | None = None) -> tuple[Any, Any]:
        """The first ``limit`` examples of a split (all when None) as two tensors, in the split's
        evaluation order: for the curvature analysis and the test-split ensembles, which need them."""
        if self.num_examples(which) == 0:
            raise ValueError(f"task {self.name!r} has no {which} split")
        inputs, targets, count = [], [], 0
        for x, y in self.eval_batches(which):
            inputs.append(x)
            targets.append(y)
            count += len(x)
            if limit is not None and count >= limit:
                break
        x, y = torch.cat(inputs), torch.cat(targets)
        return (x[:limit], y[:limit]) if limit is not None else (x, y)


class _MetricSum:
    """Accumulates a metric over batches: accuracy counts, R^2's sums, or a weighted mean."""

    def __init__(self, metric: str | Callable) -> None:
        self.metric = metric
        self.total = 0.0
        self.count = 0
        self.sums = torch.zeros(3, dtype=torch.float64)  # sum y, sum y^2, sum residual^2

    def add(self, output: Any, target: Any) -> None:
        if self.metric == "acc":
            predicted = output.argmax(dim=-1) if output.dim() == target.dim() + 1 else output.argmax(dim=1)
            self.total += float((predicted == target).sum())
            self.count += target.numel()
        elif self.metric == "r2":
            output, target = output.double().reshape(target.shape), target.double()
            self.sums += torch.stack([target.sum(), (target ** 2).sum(), ((output - target) ** 2).sum()]).cpu()
            self.count += target.numel()
        else:
            weight = _weight(output, target)
            self.total += float(self.metric(output, target)) * weight
            self.count += weight

    def value(self) -> float:
        if self.count == 0:
            return float("nan")
        if self.metric == "r2":
            total_y, total_y2, residual = self.sums.tolist()
            spread = total_y2 - total_y ** 2 / self.count
            return float("nan") if spread <= 0 else 1 - residual / spread
        return self.total / self.count


def _weight(x: Any, y: Any) -> int:
    """A batch's weight in split means: its target elements (examples, or tokens for sequences)."""
    return y.numel() if isinstance(y, torch.Tensor) else len(x)


def _index_batches(dataset: Dataset, chunks: list[torch.Tensor]) -> Iterator[Any]:
    """Batches of a map-style Dataset by index chunks: TensorDatasets by tensor indexing, others
    through a DataLoader with these batches (its default collate)."""
    if isinstance(dataset, TensorDataset):
        for chunk in chunks:
            yield tuple(tensor[chunk] for tensor in dataset.tensors)
        return
    yield from DataLoader(dataset, batch_sampler=[chunk.tolist() for chunk in chunks], generator=torch.Generator())


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


def _check_data(which: str, data: Any) -> DataLoader | Dataset | None:
    if data is None:
        if which == "train":
            raise ValueError("train data is required: a DataLoader or a Dataset of (input, target)")
        return None
    if isinstance(data, DataLoader):
        dataset = data.dataset
    elif isinstance(data, Dataset):
        dataset = data
    else:
        raise ValueError(f"{which} data must be a torch.utils.data DataLoader or Dataset, got {type(data).__name__}")
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        raise ValueError(f"{which} data must be a map-style Dataset with a length (len(dataset)); "
                         "IterableDatasets are not supported")
    if which == "train" and len(dataset) == 0:
        raise ValueError("train data is empty")
    return data


def _check_split(which: str) -> str:
    if which not in SPLITS:
        raise ValueError(f"unknown split {which!r}; choose one of: {', '.join(SPLITS)}")
    return which


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return value


def _loader_batch_size(data: DataLoader | Dataset, num_train: int) -> int:
    """A DataLoader's batch size (for a custom batch sampler: the mean batch); 32 for a Dataset."""
    if isinstance(data, DataLoader):
        return data.batch_size or max(1, round(num_train / max(1, len(data))))
    return min(32, num_train)


__all__ = ["LoaderTask"]
