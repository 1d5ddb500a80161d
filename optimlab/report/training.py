"""Figures of training runs, drawn from stored Traces (never by training):

- loss vs epoch (objective on the whole training set, log scale);
- loss vs training seconds, log-log (as the notes plot minibatch SGD vs GD vs SGD);
- train vs validation loss and metric;
- the learning rate of every step.

Runs are ``(label, trace)`` pairs; runs with the same label (seeds) share a colour: thin lines per
seed, a bold line for their mean when they share the same x values.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..trace import DIVERGED, Trace  # noqa: E402

Run = tuple[str, Trace]
METRIC_NAMES = {"acc": "accuracy", "r2": "R²"}
TIME_LABEL = "training time (s, evaluation excluded; log scale)"


def _finite_points(xs: Sequence[Any], ys: Sequence[Any], positive_x: bool = False) -> tuple[list[float], list[float]]:
    points = [(x, y) for x, y in zip(xs, ys)
              if isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isfinite(x) and math.isfinite(y)
              and (x > 0 or not positive_x)]
    return [p[0] for p in points], [p[1] for p in points]


def _groups(runs: Sequence[Run]) -> dict[str, list[Trace]]:
    groups: dict[str, list[Trace]] = {}
    for label, trace in runs:
        groups.setdefault(label, []).append(trace)
    return groups


def _colors(labels: Sequence[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(labels)}


def _draw(ax: Any, traces: list[Trace], x: str, y: str, color: Any, label: str, *, table: str = "epochs",
          positive_x: bool = False, style: str = "-", mean: bool = True) -> None:
    """One colour per label: each trace thin, the mean bold when all traces share their x values."""
    curves = [_finite_points(t.column(x, table), t.column(y, table), positive_x) for t in traces]
    diverged = any(t.outcome == DIVERGED for t in traces)
    text = f"{label} (diverged)" if diverged else label
    same_x = len(curves) > 1 and all(c[0] == curves[0][0] for c in curves) and curves[0][0]
    for i, (xs, ys) in enumerate(curves):
        ax.plot(xs, ys, style, color=color, lw=0.8 if same_x and mean else 1.6, alpha=0.35 if same_x and mean else 0.9,
                label=None if (same_x and mean) or i else text)
        if traces[i].outcome == DIVERGED and xs:
            ax.plot(xs[-1], ys[-1], "x", color=color, ms=8, mew=2)
    if same_x and mean:
        xs = curves[0][0]
        ys = [sum(c[1][j] for c in curves) / len(curves) for j in range(len(xs))]
        ax.plot(xs, ys, style, color=color, lw=2, label=text)


def _log_if_positive(ax: Any, axis: str = "y") -> None:
    lines = [line.get_ydata() if axis == "y" else line.get_xdata() for line in ax.get_lines()]
    values = [v for data in lines for v in data]
    if values and min(values) > 0 and max(values) / min(values) > 5:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def _seed_note(runs: Sequence[Run]) -> str | None:
    counts = {len(traces) for traces in _groups(runs).values()}
    return None if counts == {1} else "bold: mean over seeds; thin: each seed"


def _finish(fig: Any, ax: Any, path: Path, legend_title: str | None = None) -> Path:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, title=legend_title, title_fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _title(runs: Sequence[Run]) -> str:
    problems = sorted({trace.problem for _, trace in runs})
    return ", ".join(problems)


def plot_loss_vs_epoch(runs: Sequence[Run], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    groups = _groups(runs)
    for label, color in _colors(list(groups)).items():
        _draw(ax, groups[label], "epoch", "train_loss", color, label)
    _log_if_positive(ax)
    ax.set(xlabel="epoch", ylabel="training loss (whole training set)", title=f"Loss vs epoch: {_title(runs)}")
    return _finish(fig, ax, path, _seed_note(runs))


def plot_loss_vs_time(runs: Sequence[Run], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    groups = _groups(runs)
    for label, color in _colors(list(groups)).items():
        _draw(ax, groups[label], "time", "train_loss", color, label, positive_x=True, mean=False)
    ax.set_xscale("log")
    _log_if_positive(ax)
    ax.set(xlabel=TIME_LABEL, ylabel="training loss (whole training set)",
           title=f"Loss vs wall-clock time: {_title(runs)}")
    return _finish(fig, ax, path, "one line per seed" if _seed_note(runs) else None)


def plot_train_vs_val(runs: Sequence[Run], path: Path) -> Path:
    """Two panels: loss and metric; solid = training split, dashed = validation split."""
    from matplotlib.lines import Line2D

    metric = runs[0][1].meta.get("metric", "acc") if runs else "acc"
    metric_name = METRIC_NAMES.get(metric, metric)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.5))
    groups = _groups(runs)
    colors = _colors(list(groups))
    has_val = any(v is not None for _, t in runs for v in t.column("val_loss", "epochs"))
    for label, color in colors.items():
        for ax, column in ((left, "loss"), (right, "metric")):
            _draw(ax, groups[label], "epoch", f"train_{column}", color, label)
            if has_val:
                _draw(ax, groups[label], "epoch", f"val_{column}", color, label, style="--")
    _log_if_positive(left)
    left.set(xlabel="epoch", ylabel="loss", title="Train vs validation loss")
    right.set(xlabel="epoch", ylabel=metric_name, title=f"Train vs validation {metric_name}")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    handles = [Line2D([], [], color=color, lw=2, label=label) for label, color in colors.items()]
    handles.append(Line2D([], [], color="black", lw=2, label="training split (solid)"))
    if has_val:
        handles.append(Line2D([], [], color="black", lw=2, ls="--", label="validation split (dashed)"))
    else:
        handles.append(Line2D([], [], color="white", label="(no validation split)"))
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    rows = -(-len(handles) // 3)
    fig.tight_layout(rect=(0, 0.045 * rows + 0.01, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_learning_rates(runs: Sequence[Run], path: Path) -> Path:
    """lr of every step (seed 0 of each label); earlier labels are drawn wider so equal lrs stay visible."""
    fig, ax = plt.subplots(figsize=(8, 4))
    groups = _groups(runs)
    for i, (label, color) in enumerate(_colors(list(groups)).items()):
        xs, ys = _finite_points(groups[label][0].column("step"), groups[label][0].column("lr"))
        ax.plot(xs, ys, color=color, lw=1.2 + 4.0 * (len(groups) - 1 - i) / max(len(groups), 1), label=label)
    _log_if_positive(ax)
    ax.set(xlabel="optimizer step", ylabel="learning rate (group 0)",
           title="Learning rate per step (base lr x schedule; adaptive methods rescale it per coordinate)")
    return _finish(fig, ax, path)


FIGURES = (
    ("loss_vs_epoch.png", "Training loss vs epoch", plot_loss_vs_epoch),
    ("loss_vs_time.png", "Training loss vs wall-clock training seconds (log-log)", plot_loss_vs_time),
    ("train_vs_val.png", "Train vs validation loss and metric", plot_train_vs_val),
    ("learning_rate.png", "Learning rate per step", plot_learning_rates),
)


def write_training_figures(runs: Sequence[Run], out_dir: str | Path) -> list[tuple[str, Path]]:
    """Draw every figure into ``out_dir``; return (caption, path) pairs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [(caption, draw(runs, out / name)) for name, caption, draw in FIGURES]


__all__ = ["plot_loss_vs_epoch", "plot_loss_vs_time", "plot_train_vs_val", "plot_learning_rates",
           "write_training_figures", "FIGURES"]
