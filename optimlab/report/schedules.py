"""Figure: learning rate vs optimizer step for one or more schedules."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_schedules(
    curves: Sequence[tuple[str, Sequence[float]]],
    out: str | Path,
    *,
    log: bool = False,
    snapshots: Sequence[Sequence[int]] | None = None,
    steps_per_epoch: int | None = None,
) -> Path:
    """Draw lr vs step, one line per (label, lrs); mark snapshot steps; save PNG (and SVG if asked)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    for index, (label, lrs) in enumerate(curves):
        line, = ax.plot(range(len(lrs)), lrs, label=label, linewidth=1.6)
        marks = snapshots[index] if snapshots else []
        if marks:
            ax.plot(marks, [lrs[m] for m in marks], "o", color=line.get_color(), markersize=5,
                    label=f"snapshots of {label}" if len(curves) > 1 else "snapshot (end of cycle)")
    ax.set_xlabel("optimizer step" + (f" ({steps_per_epoch} steps per epoch)" if steps_per_epoch else ""))
    ax.set_ylabel("learning rate" + (" (log scale)" if log else ""))
    if log:
        ax.set_yscale("log")
    else:  # a little room below 0 so that markers at lr = 0 stay visible
        ax.set_ylim(bottom=-0.03 * max(max(lrs) for _, lrs in curves))
    ax.set_xlim(0, max(len(lrs) for _, lrs in curves) - 1)
    ax.set_title("Learning-rate schedule" + ("s" if len(curves) > 1 else ""))
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
