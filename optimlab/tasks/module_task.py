"""A Task whose model comes from a factory instead of :func:`optimlab.tasks.models.build_model`.

The built-in workloads (MNIST-1D, shakespeare-char, cifar10-resnet) use it: same split, loss,
metric, penalty and evaluation as :class:`Task`, only ``make_model`` differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .models import initialize
from .task import Task


@dataclass
class ModuleTask(Task):
    """``model_factory()`` builds the network; ``init`` (default: torch's own) is applied on top."""

    model_factory: Callable[[], nn.Module] | None = None
    convex_model: bool = False
    model_dtype: torch.dtype | None = None  # None: the inputs' float dtype (float32 for integer inputs)

    @property
    def convex(self) -> bool:
        return self.convex_model

    def make_model(self) -> nn.Module:
        if self.model_factory is None:
            return super().make_model()
        model = initialize(self.model_factory(), self.init)
        inputs = self.split.x_train.dtype
        return model.to(self.model_dtype or (inputs if inputs.is_floating_point else torch.float32))


__all__ = ["ModuleTask"]
