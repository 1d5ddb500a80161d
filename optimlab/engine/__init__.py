"""The one loop behind the CLI, sweeps, reports and the web app: spec -> engine -> Trace.

``run(spec, problem, ...)`` dispatches on the problem: a landscape (2-D or 1-D test function)
goes to :mod:`optimlab.engine.trajectory`, a training task to :mod:`optimlab.engine.training`.
"""

from __future__ import annotations

from typing import Any

from ..trace import Trace
from .divergence import has_diverged

__all__ = ["run", "has_diverged", "Trace"]


def run(spec: Any, problem: Any, *args: Any, **kwargs: Any) -> Trace:
    """Run optimizer `spec` on `problem` (a landscape or task, or its registered name)."""
    from .. import landscapes

    if landscapes.is_landscape(problem):
        from .trajectory import run_trajectory

        return run_trajectory(spec, problem, *args, **kwargs)
    from .training import train

    return train(spec, problem, *args, **kwargs)
