"""Figures of curvature: sharpness vs step with the stability threshold, and the spectral density.

Both are drawn from stored results (a Trace with the tracker's columns, DensityResult dicts), so
they can be redrawn without training again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..analysis.sharpness import first_crossing, sharpness_rows, tracked_quantity  # noqa: E402
from ..trace import Trace  # noqa: E402

QUANTITY_LABELS = {
    "sharpness": "sharpness  λ_max(H)",
    "preconditioned_sharpness": "preconditioned sharpness  λ_max(P⁻¹H)",
}


def plot_sharpness(trace: Trace, path: str | Path, *, title: str | None = None) -> Path:
    """Sharpness (and preconditioned sharpness) vs step with the threshold line, over the loss."""
    rows = sharpness_rows(trace)
    if not rows:
        raise ValueError("the trace has no sharpness measurements (train with --track sharpness:every=N)")
    quantity = tracked_quantity(trace)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.5), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 2]})
    steps = [row["step"] for row in rows]
    for column, style in (("sharpness", "o-"), ("preconditioned_sharpness", "s-")):
        values = [row.get(column) for row in rows]
        if any(v is not None for v in values):
            top.plot(steps, [np.nan if v is None else v for v in values], style, markersize=3,
                     label=QUANTITY_LABELS[column], color="C0" if column == "sharpness" else "C2")
    thresholds = [row.get("stability_threshold") for row in rows]
    if any(t is not None for t in thresholds):
        formula = trace.meta.get("sharpness", {}).get("formula", "stability threshold")
        top.step(steps, [np.nan if t is None else t for t in thresholds], "--", where="post", color="C3",
                 label=f"stability threshold {formula}")
    plotted = [row.get(c) for row in rows for c in ("sharpness", "preconditioned_sharpness", "stability_threshold")]
    positive = [v for v in plotted if v is not None and np.isfinite(v) and v > 0]
    if positive and len(positive) == len([v for v in plotted if v is not None]) and max(positive) > 100 * min(positive):
        top.set_yscale("log")  # e.g. Adam's preconditioned sharpness right after the first step
    crossing = first_crossing(trace)
    if crossing is not None:
        top.axvline(crossing, color="C3", linestyle=":", linewidth=1,
                    label=f"first reaches the threshold: step {crossing}")
        bottom.axvline(crossing, color="C3", linestyle=":", linewidth=1)
    top.set_ylabel("largest eigenvalue" + (" of H" if quantity == "sharpness" else ""))
    top.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncol=2, fontsize=8, frameon=False)
    top.grid(alpha=0.3)
    figure.suptitle(title or f"{trace.optimizer} on {trace.problem}: sharpness and stability threshold", fontsize=11)
    loss_steps = [row["step"] for row in trace.steps if row.get("loss") is not None]
    losses = [row["loss"] for row in trace.steps if row.get("loss") is not None]
    bottom.plot(loss_steps, losses, color="C1", linewidth=1,
                label="training loss on the step's batch (before the update)")
    if losses and min(losses) > 0:
        bottom.set_yscale("log")
    bottom.set_xlabel("step")
    bottom.set_ylabel("loss")
    bottom.legend(loc="best", fontsize=9)
    bottom.grid(alpha=0.3)
    return _save(figure, path)


def plot_spectral_density(densities: Mapping[str, Mapping[str, Any]], path: str | Path, *,
                          title: str = "Hessian spectral density (stochastic Lanczos quadrature)") -> Path:
    """One curve per labelled DensityResult dict (e.g. {"at init": ..., "after training": ...}), log y."""
    if not densities:
        raise ValueError("no spectral densities to plot")
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    peak = 0.0
    for index, (label, result) in enumerate(densities.items()):
        grid, density = np.asarray(result["grid"]), np.asarray(result["density"])
        peak = max(peak, float(density.max()))
        axis.semilogy(grid, density, color=f"C{index}",
                      label=f"{label}: σ = {result['sigma']:.3g}, "
                            f"{result['runs']} SLQ runs × {result['iterations']} steps")
    axis.set_ylim(bottom=peak * 1e-6)  # below this the Gaussian tails say nothing
    axis.axvline(0, color="gray", linewidth=0.8)
    axis.set_xlabel("eigenvalue of the loss Hessian")
    axis.set_ylabel("density (log scale)")
    axis.set_title(title)
    axis.legend(fontsize=9)
    axis.grid(alpha=0.3)
    return _save(figure, path)


def _save(figure: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
