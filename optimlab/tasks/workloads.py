"""The built-in workload tasks whose model is not one of :data:`optimlab.tasks.models.MODELS`:
MNIST-1D's four models, shakespeare-char and cifar10-resnet. :func:`optimlab.tasks.get_task`
looks names up here first; each builder takes get_task's keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from .cifar import build_cifar10_resnet
from .mnist1d import MNIST1D_MODELS, build_mnist1d_task
from .module_task import ModuleTask
from .text import build_shakespeare_char


@dataclass(frozen=True)
class WorkloadTask:
    build: Callable[..., ModuleTask]
    batch_size: int
    epochs: int
    options: tuple[str, ...]
    needs_data_dir: bool = False
    data: str = "generated"


WORKLOAD_TASKS: dict[str, WorkloadTask] = {
    **{f"mnist1d-{model}": WorkloadTask(partial(build_mnist1d_task, model), 100, 150,
                                        {"logistic": (), "mlp": ("hidden",), "cnn": ("channels",),
                                         "gru": ("hidden",)}[model] + ("data_seed",))
       for model in MNIST1D_MODELS},
    "shakespeare-char": WorkloadTask(build_shakespeare_char, 32, 2, ("block", "width", "depth", "heads"), data="bundled"),
    "cifar10-resnet": WorkloadTask(build_cifar10_resnet, 128, 10, ("blocks", "width"), needs_data_dir=True,
                                   data="--data-dir DIR"),
}

__all__ = ["WORKLOAD_TASKS", "WorkloadTask"]
