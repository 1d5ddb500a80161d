"""optimlab.optim: drop-in replacements for torch.optim, each update rule written once in rules.py."""

from __future__ import annotations

from typing import Any

from .adaptive import Adagrad, Adam, AdamW, RMSprop
from .beyond import AdEMAMix, Lion, ScheduleFreeAdamW, ScheduleFreeSGD
from .registry import OPTIMIZERS, create, get_entry, resolve
from .sgd import SGD
from .torch_classes import ASGD, Adadelta, Adafactor, Adamax, Muon, MuonAdamW, NAdam, RAdam, Rprop, SparseAdam

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Newton", "LBFGS", "Lion", "ScheduleFreeAdamW",
           "ScheduleFreeSGD", "AdEMAMix", "SOAP", "OPTIMIZERS", "create", "get_entry", "resolve"]
__all__ += ["ASGD", "Adadelta", "Adafactor", "Adamax", "Muon", "MuonAdamW", "NAdam", "RAdam", "Rprop", "SparseAdam"]


def __getattr__(name: str) -> Any:  # Newton, LBFGS and SOAP import on first use
    if name in ("Newton", "LBFGS"):
        return get_entry(name.lower()).cls
    if name == "SOAP":
        return get_entry("soap").cls
    raise AttributeError(name)
