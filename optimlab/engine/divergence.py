"""Divergence detection shared by every loop: a non-finite or exploding loss ends the run."""

from __future__ import annotations

import math

EXPLOSION_FACTOR = 1e6
GROWTH_FACTOR = 2.0  # a run that ends with more than twice its starting loss did not train


def has_diverged(loss: float, initial_loss: float, factor: float = EXPLOSION_FACTOR) -> bool:
    """True if `loss` is NaN/inf or has grown beyond `factor` times max(|initial_loss|, 1)."""
    if not math.isfinite(loss):
        return True
    return abs(loss) > factor * max(abs(initial_loss), 1.0)


def has_grown(final_loss: float, initial_loss: float, factor: float = GROWTH_FACTOR) -> bool:
    """True if a run that did not diverge ended worse than it began: the final loss is not finite
    or exceeds ``factor`` times the initial one (losses >= 0; a tiny initial loss counts as 1e-12)."""
    if not math.isfinite(final_loss):
        return True
    return final_loss > factor * max(initial_loss, 1e-12)
