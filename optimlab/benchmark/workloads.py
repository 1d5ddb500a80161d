"""The benchmark's workloads, scales, optimizers and search spaces (all declared here), and the
targets stored with them (``targets.json``, written by ``benchmarks/derive_targets.py``).

A workload is a task (with options), a batch size, a per-trial budget in epochs, an evaluation
interval in steps (the resolution of time to target) and the validation column its target is on.
``smoke`` runs every CPU workload with small models and budgets in minutes; ``full`` uses the
workloads' real sizes and budgets (the paper's 6,000 steps for MNIST-1D) and adds CIFAR-10
(ResNet-20, needs ``--data-dir``), for GPUs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .targets import Target

SCALES = ("smoke", "full")
NOTES_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
# Each optimizer's declared search space (two decades of learning rate around the usual values;
# momentum 0.9, Adam's betas and RMSprop's alpha at their defaults). Same space at both scales.
SEARCH_SPACES: dict[str, list[str]] = {
    "sgd": ["lr=log:1e-2:1"],
    "momentum": ["lr=log:1e-3:1e-1"],
    "nesterov": ["lr=log:1e-3:1e-1"],
    "adagrad": ["lr=log:3e-3:3e-1"],
    "rmsprop": ["lr=log:1e-4:1e-2"],
    "adam": ["lr=log:3e-4:3e-2"],
    "adamw": ["lr=log:3e-4:3e-2"],
}
TRIALS = {"smoke": 3, "full": 20}
REFERENCE_OPTIMIZER = "adam"
REFERENCE_GRID = ("adam:lr=0.001", "adam:lr=0.003", "adam:lr=0.01")
TARGET_SLACK = 0.05
TARGETS_FILE = "targets.json"


@dataclass(frozen=True)
class Workload:
    """One benchmark workload at one scale (see the module docstring)."""

    name: str
    task: str
    batch_size: int
    epochs: int
    target_column: str
    higher_is_better: bool
    eval_every: int | None = None
    task_options: dict[str, Any] = field(default_factory=dict)
    needs_data_dir: bool = False
    gpu: bool = False

    def task_kwargs(self, data_dir: str | None = None) -> dict[str, Any]:
        """get_task's keyword arguments (the CIFAR-10 folder added for workloads that read files)."""
        return {**self.task_options, **({"data_dir": data_dir} if self.needs_data_dir else {})}


_MNIST1D_VAL = {"val_fraction": 0.1}  # 3,600 train / 400 validation (seeded) / the 1,000 test examples

WORKLOADS: dict[str, dict[str, Workload]] = {
    "smoke": {
        "mnist1d-logistic": Workload("mnist1d-logistic", "mnist1d-logistic", 100, 8, "val_metric", True,
                                     task_options=_MNIST1D_VAL),
        "mnist1d-mlp": Workload("mnist1d-mlp", "mnist1d-mlp", 100, 12, "val_metric", True, task_options=_MNIST1D_VAL),
        "mnist1d-cnn": Workload("mnist1d-cnn", "mnist1d-cnn", 100, 12, "val_metric", True, task_options=_MNIST1D_VAL),
        "mnist1d-gru": Workload("mnist1d-gru", "mnist1d-gru", 100, 4, "val_metric", True, task_options=_MNIST1D_VAL),
        "shakespeare-char": Workload("shakespeare-char", "shakespeare-char:depth=1,width=64,block=32,chars=200000", 32, 1,
                                     "val_loss", False, eval_every=40),
    },
    "full": {
        **{name: Workload(name, name, 100, 167, "val_metric", True, task_options=_MNIST1D_VAL)
           for name in ("mnist1d-logistic", "mnist1d-mlp", "mnist1d-cnn", "mnist1d-gru")},
        "shakespeare-char": Workload("shakespeare-char", "shakespeare-char", 64, 5, "val_loss", False, eval_every=100),
        "cifar10-resnet": Workload("cifar10-resnet", "cifar10-resnet:blocks=3", 128, 30, "val_metric", True,
                                   needs_data_dir=True, gpu=True),
    },
}


def workloads_for(scale: str, names: list[str] | None = None, *, include_gpu: bool = True) -> list[Workload]:
    """The workloads of ``scale`` (all, or those named; GPU-only ones dropped unless ``include_gpu``)."""
    if scale not in WORKLOADS:
        raise ValueError(f"--scale {scale!r}: choose one of {', '.join(SCALES)}")
    available = WORKLOADS[scale]
    if names:
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(f"--workload {unknown[0]!r} is not a {scale} workload; choose from {', '.join(available)}")
        return [available[n] for n in names]
    return [w for w in available.values() if include_gpu or not w.gpu]


def search_space(optimizer: str, declared: dict[str, list[str]] | None = None) -> list[str]:
    """The optimizer's search space: the one declared with the run (``--space opt.name=RANGE``) or the default."""
    if declared and declared.get(optimizer):
        return list(declared[optimizer])
    if optimizer not in SEARCH_SPACES:
        raise ValueError(f"--opt {optimizer!r} has no declared benchmark search space; choose from {', '.join(SEARCH_SPACES)} "
                         f"or declare one with --space {optimizer}.lr=log:LOW:HIGH")
    return list(SEARCH_SPACES[optimizer])


def load_targets() -> dict[str, dict[str, Any]]:
    """``{scale: {workload: record}}`` from the shipped targets file ({} when absent)."""
    path = resources.files("optimlab.benchmark").joinpath(TARGETS_FILE)
    return json.loads(path.read_text()) if path.is_file() else {}


def target_for(workload: Workload, scale: str, targets: dict[str, dict[str, Any]] | None = None) -> Target:
    """The stored target of ``workload`` at ``scale``; ValueError if it was never derived."""
    targets = load_targets() if targets is None else targets
    record = targets.get(scale, {}).get(workload.name)
    if record is None:
        raise ValueError(f"no target for workload {workload.name!r} at scale {scale!r}; derive it with "
                         f"`python benchmarks/derive_targets.py --scale {scale}`")
    target = Target.from_dict(record["target"])
    if (target.column, target.higher_is_better) != (workload.target_column, workload.higher_is_better):
        raise ValueError(f"the stored target of {workload.name} ({target}) is not on {workload.target_column}; re-derive it")
    return target


__all__ = ["Workload", "WORKLOADS", "SCALES", "NOTES_OPTIMIZERS", "SEARCH_SPACES", "TRIALS", "REFERENCE_GRID",
           "TARGET_SLACK", "workloads_for", "search_space", "parse_declared_spaces", "load_targets", "target_for"]


def parse_declared_spaces(items: list[str]) -> dict[str, list[str]]:
    """``["lion.lr=log:1e-5:1e-3", "lion.betas1=0.9"]`` -> ``{"lion": ["lr=log:1e-5:1e-3", "betas1=0.9"]}``."""
    spaces: dict[str, list[str]] = {}
    for item in items:
        name, eq, value = item.partition("=")
        optimizer, dot, dimension = name.partition(".")
        if not eq or not dot or not optimizer or not dimension:
            raise ValueError(f"--space {item!r} must look like OPTIMIZER.NAME=RANGE, e.g. adam.lr=log:1e-4:1e-2")
        spaces.setdefault(optimizer.strip(), []).append(f"{dimension.strip()}={value.strip()}")
    return spaces
