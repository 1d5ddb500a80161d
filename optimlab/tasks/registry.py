"""Task names ``<dataset>-<model>`` (``digits-mlp``, ``airfoil-linear``, ``mnist-cnn``...) and
``get_task``, which also accepts options in spec form: ``synthetic-linear:n=100000,kappa=100``,
``digits-mlp:hidden=128,depth=2``, ``digits-softmax:l2=1e-3``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..spec import parse_spec
from .datasets import CLASSIFICATION, Dataset, load_airfoil, load_sklearn, make_synthetic_linear
from .files import load_cifar10, load_mnist
from .models import check_init
from .task import Split, Task, split_dataset, standardize_split
from .workloads import WORKLOAD_TASKS

MODEL_OPTIONS = {"hidden", "depth", "channels"}
# (smallest, largest) of each model option: a zero-width model trains nothing, a huge one takes the machine
MODEL_OPTION_RANGES = {"hidden": (1, 65536), "depth": (1, 64), "channels": (1, 1024)}
MAX_SYNTHETIC_ELEMENTS = 50_000_000  # n * d of synthetic-linear (float64: 400 MB)


@dataclass(frozen=True)
class DatasetEntry:
    load: Callable[..., Dataset]
    models: tuple[str, ...]
    batch_size: int
    epochs: int
    options: tuple[str, ...] = ()  # dataset keyword arguments a spec may set
    needs_data_dir: bool = False
    val_fraction: float = 0.2
    test_fraction: float = 0.0


DATASETS: dict[str, DatasetEntry] = {
    # D2L trains on all 1500 rows and reports the training loss: no validation split by default.
    "airfoil": DatasetEntry(load_airfoil, ("linear", "mlp"), 10, 2, val_fraction=0.0),
    "digits": DatasetEntry(lambda: load_sklearn("digits"), ("softmax", "mlp", "cnn"), 64, 10, test_fraction=0.1),
    "breast_cancer": DatasetEntry(lambda: load_sklearn("breast_cancer"), ("softmax", "mlp"), 32, 20),
    "wine": DatasetEntry(lambda: load_sklearn("wine"), ("softmax", "mlp"), 16, 30),
    "diabetes": DatasetEntry(lambda: load_sklearn("diabetes"), ("linear", "mlp"), 32, 30),
    "synthetic": DatasetEntry(make_synthetic_linear, ("linear", "mlp"), 64, 5,
                              options=("n", "d", "noise", "kappa")),
    "mnist": DatasetEntry(load_mnist, ("softmax", "mlp", "cnn"), 128, 3, needs_data_dir=True, val_fraction=1 / 12),
    "fashion-mnist": DatasetEntry(lambda data_dir: load_mnist(data_dir, fashion=True), ("softmax", "mlp", "cnn"),
                                  128, 3, needs_data_dir=True, val_fraction=1 / 12),
    "cifar10": DatasetEntry(load_cifar10, ("softmax", "mlp", "cnn"), 128, 3, needs_data_dir=True, val_fraction=0.1),
}

TASKS: dict[str, str] = {
    f"{dataset}-{model}": dataset for dataset, entry in DATASETS.items() for model in entry.models
}

DEFAULT_INITS = {"airfoil-linear": "normal:std=0.01"}  # D2L: w ~ N(0, 0.01^2), b = 0


def task_names(include_file_tasks: bool = True) -> list[str]:
    names = [name for name, ds in TASKS.items() if include_file_tasks or not DATASETS[ds].needs_data_dir]
    return names + [name for name, entry in WORKLOAD_TASKS.items() if include_file_tasks or not entry.needs_data_dir]


def get_task(name: str, seed: int = 0, standardize: bool = True, init: str | None = None, *,
             data_dir: str | None = None, val_fraction: float | None = None,
             test_fraction: float | None = None, dtype: torch.dtype = torch.float32,
             l2: float = 0.0, limit: int | None = None, **options: Any) -> Task:
    """Build task ``name`` (e.g. ``"digits-mlp"`` or ``"synthetic-linear:n=100000,kappa=100"``).

    ``seed`` fixes the split (and the synthetic data); the training seed is ``train``'s.
    ``standardize``: features (and regression targets) to zero mean, unit population std using the
    training split's statistics (airfoil: D2L's way, over all 1503 rows). ``init``: default,
    xavier, kaiming, too-small, too-large or normal:std=S. ``limit``: keep the first N training rows.
    """
    spec = parse_spec(name, "task name")
    options = {**spec.kwargs, **options}
    if spec.name in WORKLOAD_TASKS:  # MNIST-1D, shakespeare-char, cifar10-resnet: their own builders
        extra = {"data_dir": data_dir, "standardize": standardize} if WORKLOAD_TASKS[spec.name].needs_data_dir else {}
        if val_fraction is not None:
            extra["val_fraction"] = val_fraction
        l2 = float(options.pop("l2", l2))
        return WORKLOAD_TASKS[spec.name].build(seed=seed, init=init, dtype=dtype, l2=l2, limit=limit,
                                               name=str(spec) if spec.kwargs else None, **extra, **options)
    if spec.name not in TASKS:
        raise ValueError(f"unknown task {spec.name!r}; choose one of: {', '.join(task_names())}")
    dataset_name = TASKS[spec.name]
    model_kind = spec.name[len(dataset_name) + 1:]
    entry = DATASETS[dataset_name]
    l2 = options.pop("l2", l2)
    if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not math.isfinite(l2) or l2 < 0:
        raise ValueError(f"l2={l2!r} must be a finite number >= 0")
    l2 = float(l2)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be an integer >= 0")
    model_options = {key: _check_model_option(key, options.pop(key)) for key in list(options) if key in MODEL_OPTIONS}
    unknown = set(options) - set(entry.options)
    if unknown:
        allowed = sorted(set(entry.options) | MODEL_OPTIONS | {"l2"})
        raise ValueError(f"unknown option {sorted(unknown)[0]!r} for task {spec.name}; allowed: {', '.join(allowed)}")
    dataset = _load(dataset_name, entry, data_dir, seed, options, standardize)
    split = split_dataset(dataset, entry.val_fraction if val_fraction is None else val_fraction,
                          entry.test_fraction if test_fraction is None else test_fraction, seed)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit={limit!r} must be a positive number of training rows")
        split.x_train, split.y_train = split.x_train[:limit], split.y_train[:limit]
    if standardize and dataset_name != "airfoil":
        split = standardize_split(split, targets=dataset.kind != CLASSIFICATION)
    split = _cast(split, dtype)
    init = check_init(init or DEFAULT_INITS.get(spec.name, "default"))
    built_with = {"seed": seed, "standardize": standardize, "init": init, "l2": l2, "limit": limit,
                  "data_dir": data_dir, **options, **model_options}
    return Task(name=str(spec) if spec.kwargs else spec.name, kind=dataset.kind, split=split, model_kind=model_kind,
                num_classes=dataset.num_classes, init=init, l2=l2, model_options=model_options,
                default_batch_size=entry.batch_size, default_epochs=entry.epochs,
                description=f"{dataset.description}; model: {model_kind}", options=built_with)


def _check_model_option(key: str, value: Any) -> int:
    low, high = MODEL_OPTION_RANGES[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key}={value!r} must be an integer from {low} to {high}")
    return value


def _check_synthetic(options: dict[str, Any]) -> None:
    n, d = options.get("n", 1000), options.get("d", 10)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (n, d)) and n * d > MAX_SYNTHETIC_ELEMENTS:
        raise ValueError(f"synthetic-linear n*d = {n * d} is more than {MAX_SYNTHETIC_ELEMENTS} numbers; "
                         "choose a smaller n or d")


def _load(dataset_name: str, entry: DatasetEntry, data_dir: str | None, seed: int,
          options: dict[str, Any], standardize: bool) -> Dataset:
    if entry.needs_data_dir:
        if not data_dir:
            raise ValueError(f"task data set {dataset_name!r} reads files from your disk: pass --data-dir DIR")
        return entry.load(data_dir)
    if dataset_name == "airfoil":
        return entry.load(standardize=standardize)
    if dataset_name == "synthetic":
        _check_synthetic(options)
        return entry.load(seed=seed, **options)
    return entry.load()


def _cast(split: Split, dtype: torch.dtype) -> Split:
    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.to(dtype) if t.is_floating_point() else t

    return Split(*(cast(t) for t in (split.x_train, split.y_train, split.x_val, split.y_val,
                                     split.x_test, split.y_test)))


__all__ = ["DATASETS", "TASKS", "get_task", "task_names"]
