"""Divergence detection shared by every loop: a non-finite or exploding loss ends the run."""

from __future__ import annotations

import math

EXPLOSION_FACTOR = 1e6


def has_diverged(loss: float, initial_loss: float, factor: float = EXPLOSION_FACTOR) -> bool:
    """True if `loss` is NaN/inf or has grown beyond `factor` times max(|initial_loss|, 1)."""
    if not math.isfinite(loss):
        return True
    return abs(loss) > factor * max(abs(initial_loss), 1.0)
