"""Shared validators: reject bad hyperparameters at the door with one line naming the value."""

from __future__ import annotations

import math
from typing import Any


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_finite(name: str, value: Any) -> float:
    """Return `value` as a float if it is a finite real number, else raise ValueError."""
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number")
    return float(value)


def check_lr(value: Any, name: str = "lr") -> float:
    """A learning rate must be finite and >= 0."""
    lr = check_finite(name, value)
    if lr < 0:
        raise ValueError(f"{name}={value!r} must be >= 0")
    return lr


def check_nonnegative(name: str, value: Any) -> float:
    """eps, weight decay, momentum, damping...: finite and >= 0."""
    number = check_finite(name, value)
    if number < 0:
        raise ValueError(f"{name}={value!r} must be >= 0")
    return number


def check_unit_interval(name: str, value: Any, *, closed_right: bool = False) -> float:
    """A decay rate (beta, alpha, momentum): in [0, 1), or [0, 1] when `closed_right`."""
    number = check_finite(name, value)
    upper_ok = number <= 1 if closed_right else number < 1
    if number < 0 or not upper_ok:
        allowed = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(f"{name}={value!r} must be in {allowed}")
    return number


def check_betas(betas: Any) -> tuple[float, float]:
    """Adam's (beta1, beta2): a pair, each in [0, 1)."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas={betas!r} must be a pair (beta1, beta2)")
    return tuple(check_unit_interval(f"betas[{i}]", b) for i, b in enumerate(betas))  # type: ignore[return-value]


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return value


def check_unsupported_flag(name: str, value: Any) -> None:
    """torch flags that optimlab accepts for drop-in signatures but does not implement when True."""
    if value:
        raise ValueError(f"{name}={value!r} is not supported by optimlab (allowed: False)")
