"""Figures of trajectories on a landscape, drawn from Traces only.

``plot_traces(traces)`` draws two panels: the landscape (2-D: filled contours, log-spaced levels
where the values span decades; 1-D: the curve) with every trajectory, the start, the minima and
the other critical points marked; and f(x_k) - f* against the step on a log axis. ``save_figure``
writes PNG, SVG or PDF by the file's extension.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.colors import BoundaryNorm  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..analysis.critical_points import CriticalPoint, find_critical_points  # noqa: E402
from ..landscapes import Landscape, get_landscape  # noqa: E402
from ..trace import Trace  # noqa: E402

COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
MAX_MARKED = {"minimum": 30, "saddle": 12, "maximum": 12, "degenerate": 12}
MARKERS = {  # kind -> (marker, size, face colour, label)
    "global": ("*", 260, "gold", "global minimum"),
    "minimum": ("*", 150, "white", "local minimum"),
    "saddle": ("X", 110, "white", "saddle point"),
    "maximum": ("^", 100, "white", "maximum"),
    "degenerate": ("D", 80, "white", "degenerate critical point"),
}
SAVE_FORMATS = (".png", ".svg", ".pdf")
TRACE_MARKERS = ["o", "s", "^", "D", "v", "P", "h", "<"]
OUTLINE = [patheffects.withStroke(linewidth=3.2, foreground="white")]  # lines stay visible on any colour


def _points(trace: Trace) -> np.ndarray:
    rows = [row["x"] for row in trace.steps]
    return np.array(rows, dtype=float).reshape(len(rows), -1)


def _format_point(point: Sequence[float]) -> str:
    if len(point) == 1:
        return f"x0={point[0]:.3g}"
    return "(" + ", ".join(f"{v:.3g}" for v in point) + ")"


def _labels(traces: Sequence[Trace]) -> list[str]:
    """'spec (outcome)', plus the start or seed where those tell otherwise-equal runs apart."""
    labels = []
    starts = {tuple(t.steps[0]["x"]) for t in traces}
    for trace in traces:
        parts = [trace.optimizer]
        if len(starts) > 1:
            parts.append("from " + _format_point(trace.steps[0]["x"]))
        if trace.meta.get("schedule"):
            parts.append(f"[{trace.meta['schedule']}]")
        if trace.meta.get("noise"):
            parts.append(f"+ noise {trace.meta['noise']:g} (seed {trace.meta.get('seed', 0)})")
        labels.append(" ".join(parts) + f" ({trace.outcome_text})")
    return labels


def _limits(low: float, high: float, values: np.ndarray) -> tuple[float, float]:
    """The domain, widened to show iterates that leave it, but by at most one domain width."""
    finite = values[np.isfinite(values)]
    width = high - low
    if finite.size:
        low = max(min(low, float(finite.min())), low - width)
        high = min(max(high, float(finite.max())), high + width)
    pad = 0.02 * (high - low)
    return low - pad, high + pad


def _levels(z: np.ndarray, count: int, log_levels: bool | None) -> tuple[np.ndarray, bool]:
    """Contour levels: log-spaced above the minimum when the values span decades, else linear."""
    low, high = float(np.nanmin(z)), float(np.nanmax(z))
    span = high - low
    if span <= 0:
        return np.linspace(low - 1, high + 1, count), False
    small = float(np.nanquantile(z - low, 0.05))
    if log_levels is None:
        log_levels = span > 100 * max(small, 1e-300)
    if not log_levels:
        return MaxNLocator(nbins=count, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high), False
    first = max(float(np.nanquantile(z - low, 0.002)), span * 1e-7)
    return low + np.concatenate([[0.0], np.geomspace(first, span, count - 1)]), True


def _critical_points(landscape: Landscape, given: Sequence[CriticalPoint] | None) -> list[CriticalPoint]:
    return list(given) if given is not None else find_critical_points(landscape)


def _mark_critical_points(ax: plt.Axes, landscape: Landscape, points: list[CriticalPoint]) -> None:
    """Known minima and the critical points found by the analysis (too many of one kind: skipped)."""
    groups: dict[str, list[tuple[float, ...]]] = {}
    for cp in points:
        key = "global" if cp.is_global_min else cp.kind
        groups.setdefault(key, []).append(cp.point)
    for m in landscape.minima:  # known minima, in case the grid search missed one
        key = "global" if m.is_global else "minimum"
        if all(math.dist(m.point, p) > 1e-6 for p in groups.get(key, [])):
            groups.setdefault(key, []).append(m.point)
    for key, (marker, size, face, label) in MARKERS.items():
        if key == "global" and landscape.global_min is None:  # f unbounded below: no global minimum exists
            label = "lowest minimum in the domain"
        found = groups.get(key, [])
        if not found or len(found) > MAX_MARKED.get(key, 30):
            continue
        xy = np.array(found, dtype=float)
        if landscape.dim == 1:
            ys = landscape.f(torch.tensor(xy, dtype=torch.float64)).numpy()
            ax.scatter(xy[:, 0], ys, marker=marker, s=size, c=face, edgecolors="black", linewidths=1.0,
                       zorder=5, label=label)
        else:
            ax.scatter(xy[:, 0], xy[:, 1], marker=marker, s=size, c=face, edgecolors="black", linewidths=1.0,
                       zorder=5, label=label)


def _draw_2d(ax: plt.Axes, fig: Figure, landscape: Landscape, traces: Sequence[Trace], labels: list[str],
             log_levels: bool | None) -> None:
    (x_low, x_high), (y_low, y_high) = landscape.bounds
    paths = [_points(t) for t in traces]
    all_points = np.concatenate(paths) if paths else np.zeros((0, 2))
    xlim = _limits(x_low, x_high, all_points[:, 0])
    ylim = _limits(y_low, y_high, all_points[:, 1])
    xs, ys = np.linspace(*xlim, 300), np.linspace(*ylim, 300)
    grid = torch.tensor(np.stack(np.meshgrid(xs, ys), axis=-1), dtype=torch.float64)
    z = landscape.f(grid).numpy()
    if log_levels is None and landscape.contour_scale != "auto":
        log_levels = landscape.contour_scale == "log"
    levels, is_log = _levels(z, 24, log_levels)
    cmap = plt.get_cmap("YlGnBu_r")
    filled = ax.contourf(xs, ys, z, levels=levels, cmap=cmap, norm=BoundaryNorm(levels, cmap.N), alpha=0.55)
    ax.contour(xs, ys, z, levels=levels, colors="0.35", linewidths=0.4, alpha=0.5)
    bar = fig.colorbar(filled, ax=ax, spacing="uniform", format="%.3g", shrink=0.9)
    bar.set_label("f(x1, x2)" + ("  (log-spaced levels)" if is_log else ""))
    for i, (label, trace, path) in enumerate(zip(labels, traces, paths)):
        color, marker = COLORS[i % len(COLORS)], TRACE_MARKERS[i % len(TRACE_MARKERS)]
        every = max(1, len(path) // 30)
        zorder = 4 + (len(traces) - i) / (len(traces) + 1)  # the first trace on top
        ax.plot(path[:, 0], path[:, 1], "-", color=color, lw=1.8, zorder=zorder, path_effects=OUTLINE)
        ax.plot(path[::every, 0], path[::every, 1], marker, color=color, ms=4.5, mec="white", mew=0.6,
                zorder=zorder)
        ax.plot([], [], "-", color=color, lw=1.8, marker=marker, ms=5, label=label)  # legend entry
        if trace.outcome == "diverged":
            ax.plot(*path[-1], "x", color=color, ms=10, mew=2.5, zorder=6)
    starts = {tuple(p[0]) for p in paths}
    for k, start in enumerate(sorted(starts)):
        ax.plot(*start, "o", ms=10, mfc="white", mec="black", mew=2, zorder=6, label="start" if k == 0 else None)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")


def _draw_1d(ax: plt.Axes, landscape: Landscape, traces: Sequence[Trace], labels: list[str]) -> None:
    low, high = landscape.bounds[0]
    paths = [_points(t)[:, 0] for t in traces]
    all_points = np.concatenate(paths) if paths else np.zeros(0)
    xlim = _limits(low, high, all_points)
    xs = np.linspace(*xlim, 800)
    ys = landscape.f(torch.tensor(xs, dtype=torch.float64).unsqueeze(-1)).numpy()
    ax.plot(xs, ys, color="0.25", lw=2, label=f"f(x) = {landscape.formula}", zorder=2)
    for i, (label, trace, path) in enumerate(zip(labels, traces, paths)):
        color, marker = COLORS[i % len(COLORS)], TRACE_MARKERS[i % len(TRACE_MARKERS)]
        values = np.array(trace.column("f"), dtype=float)
        every = max(1, len(path) // 60)
        zorder = 3 + (len(traces) - i) / (len(traces) + 1)  # the first trace on top
        ax.plot(path, values, "-", color=color, lw=1.0, alpha=0.7, zorder=zorder)
        ax.plot(path[::every], values[::every], marker, color=color, ms=6, alpha=0.9, mec="white", mew=0.6,
                zorder=zorder, label=label)
    starts = sorted({float(p[0]) for p in paths})
    start_values = landscape.f(torch.tensor(starts, dtype=torch.float64).unsqueeze(-1)).numpy()
    ax.plot(starts, start_values, "o", ms=10, mfc="white", mec="black", mew=2, zorder=6, label="start")
    in_domain = (xs >= low) & (xs <= high) & np.isfinite(ys)  # the y range of the curve on the domain,
    y_low, y_high = float(ys[in_domain].min()), float(ys[in_domain].max())  # widened for the iterates
    span = y_high - y_low + 1e-12                                          # by at most one such range
    visible = np.concatenate([np.array(t.column("f"), dtype=float) for t in traces] + [ys[in_domain]])
    visible = visible[np.isfinite(visible)]
    y_low, y_high = max(float(visible.min()), y_low - span), min(float(visible.max()), y_high + span)
    pad = 0.08 * (y_high - y_low + 1e-12)
    ax.set_ylim(y_low - pad, y_high + pad)
    ax.set_xlim(*xlim)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.grid(alpha=0.3)


def _symlog_ticks(series: list[np.ndarray], linthresh: float) -> list[float]:
    """0 and the powers of ten beyond the linear band, with the signs the data takes (at most ~12)."""
    values = np.concatenate(series)
    values = values[np.isfinite(values)]
    low_power = math.ceil(math.log10(linthresh))
    ticks = [0.0]
    for sign in (1, -1):
        reach = values.max() if sign > 0 else -values.min()
        if reach >= 10**low_power:
            ticks += [sign * 10.0**k for k in range(low_power, math.floor(math.log10(reach)) + 1)]
    stride = max(1, math.ceil(len(ticks) / 12))
    return sorted(ticks[:1] + ticks[1:][::stride])


def _draw_progress(ax: plt.Axes, landscape: Landscape, traces: Sequence[Trace], labels: list[str]) -> None:
    """f(x_k) - f* on a log axis when f* is known; otherwise f itself (log when positive, else
    symmetric-log when it spans decades, else linear)."""
    f_star = landscape.global_min
    series = [np.array(t.column("f"), dtype=float) for t in traces]
    if f_star is None and landscape.minima:  # f unbounded below: the lowest minimum in the domain, unless passed
        lowest = min(m.value for m in landscape.minima)
        passed = any(np.any(s[np.isfinite(s)] < lowest - 1e-9 * max(1.0, abs(lowest))) for s in series)
        f_star = None if passed else lowest
    if f_star is not None:
        series = [s - f_star for s in series]
        ylabel = f"f(x_k) - f*   (f* = {f_star:.6g})"
        floor = 1e-16 * max(1.0, abs(f_star))
        if any(np.any(s < floor) for s in series):
            ylabel += f"; below {floor:.0e} drawn at {floor:.0e}"
        series = [np.maximum(s, floor) for s in series]
        log = True
    else:
        ylabel = "f(x_k)"
        log = all(np.all(s[np.isfinite(s)] > 0) for s in series)
    for i, (label, trace, values) in enumerate(zip(labels, traces, series)):
        color = COLORS[i % len(COLORS)]
        steps = np.array(trace.column("step"), dtype=float)
        ax.plot(steps, values, "-", color=color, lw=1.6, marker="o" if len(steps) <= 3 else None, ms=4)
        finite = np.isfinite(values)
        if trace.outcome == "diverged" and finite.any():  # the X on the last finite value
            last = int(np.flatnonzero(finite)[-1])
            ax.plot(steps[last], values[last], "x", color=color, ms=10, mew=2.5)
    magnitudes = np.abs(np.concatenate(series))
    magnitudes = magnitudes[np.isfinite(magnitudes)]
    linthresh = max([abs(float(s[0])) for s in series if np.isfinite(s[0])] + [1e-12])
    positive = magnitudes[magnitudes > 0]
    if log and positive.size and positive.max() < 10 * positive.min():
        log = False  # less than a decade: a log axis would only show one or two tick labels
    if log:
        ax.set_yscale("log")
    elif magnitudes.size and magnitudes.max() > 100 * linthresh:  # e.g. f -> -inf on an unbounded landscape
        ax.set_yscale("symlog", linthresh=linthresh, linscale=0.6)
        ax.set_yticks(_symlog_ticks(series, linthresh))
        ylabel += "   (symmetric log scale)"
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(left=0, right=max([1] + [len(t.steps) - 1 for t in traces]))
    ax.set_xlabel("step k")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both" if not log else "major")
    ax.set_title("progress")


def plot_traces(traces: Sequence[Trace], landscape: Landscape | str | None = None, *,
                critical_points: Sequence[CriticalPoint] | None = None, title: str | None = None,
                log_levels: bool | None = None) -> Figure:
    """The landscape with every trajectory, and f - f* against the step (one Figure, two panels).

    ``landscape`` defaults to the one the first trace ran on (``trace.problem``); ``critical_points``
    to those found by :func:`optimlab.analysis.critical_points.find_critical_points`.
    """
    if not traces:
        raise ValueError("plot_traces needs at least one trace")
    landscape = get_landscape(landscape if landscape is not None else traces[0].problem)
    points = _critical_points(landscape, critical_points)
    labels = _labels(traces)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13.5, 6.4), gridspec_kw={"width_ratios": [1.25, 1]})
    if landscape.dim == 2:
        _draw_2d(left, fig, landscape, traces, labels, log_levels)
    else:
        _draw_1d(left, landscape, traces, labels)
    _mark_critical_points(left, landscape, points)
    left.set_title(f"{landscape.spec}:  f = {landscape.formula}", fontsize=11)
    _draw_progress(right, landscape, traces, labels)
    handles, names = left.get_legend_handles_labels()  # one legend under both panels, covering nothing
    columns = 3 if len(handles) > 4 else 2
    rows = math.ceil(len(handles) / columns)
    fig.legend(handles, names, loc="lower center", ncol=columns, fontsize=9, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, min(0.45, 0.02 + 0.048 * rows), 1, 1))
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 130) -> Path:
    """Write ``fig`` as PNG, SVG or PDF (by the extension) and close it; returns the path."""
    path = Path(path)
    if path.suffix.lower() not in SAVE_FORMATS:
        raise ValueError(f"figure file {str(path)!r} must end in one of {', '.join(SAVE_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


__all__ = ["plot_traces", "save_figure"]
