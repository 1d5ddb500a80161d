"""Real training problems: named tasks = dataset + model + loss + metric, built without network.

``get_task("digits-mlp")``, ``get_task("airfoil-linear")``, ``get_task("synthetic-linear:n=100000,kappa=100")``,
``get_task("mnist-cnn", data_dir="~/data")``. See :mod:`optimlab.tasks.registry` for the names, and
:mod:`optimlab.tasks.workloads` for MNIST-1D (``mnist1d-cnn``...), ``shakespeare-char`` and ``cifar10-resnet``.
Your own model and data: ``LoaderTask(model=..., train=DataLoader(...), ...)`` (:mod:`optimlab.tasks.loaders`).
"""

from .datasets import CLASSIFICATION, REGRESSION, Dataset
from .loaders import LoaderTask
from .reference import is_task_reference, load_task_reference, resolve_task
from .registry import DATASETS, TASKS, get_task, task_names
from .task import Task

__all__ = ["get_task", "LoaderTask", "resolve_task", "load_task_reference", "is_task_reference", "task_names",
           "Task", "Dataset", "TASKS", "DATASETS", "REGRESSION", "CLASSIFICATION"]
