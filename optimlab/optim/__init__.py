"""optimlab.optim: drop-in replacements for torch.optim, each update rule written once in rules.py."""

from __future__ import annotations

from typing import Any

from .adaptive import Adagrad, Adam, AdamW, RMSprop
from .registry import OPTIMIZERS, create, get_entry, resolve
from .sgd import SGD
from .torch_classes import ASGD, Adadelta, Adafactor, Adamax, Muon, MuonAdamW, NAdam, RAdam, Rprop, SparseAdam

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Newton", "LBFGS",
           "OPTIMIZERS", "create", "get_entry", "resolve"]
__all__ += ["ASGD", "Adadelta", "Adafactor", "Adamax", "Muon", "MuonAdamW", "NAdam", "RAdam", "Rprop", "SparseAdam"]


def __getattr__(name: str) -> Any:  # Newton and LBFGS import on first use
    if name in ("Newton", "LBFGS"):
        return get_entry(name.lower()).cls
    raise AttributeError(name)
