"""Figures and a self-contained HTML page for a sweep (``optimlab sweep report STUDY``).

1. lr sensitivity: final loss vs learning rate (log x) per optimizer, every trial as a dot,
   the best and median per lr bin (1 to 6 bins per decade, about two lrs each) as lines, diverged trials as crosses on the top edge,
   the robust range (within X% of the best loss) as a bar.
2. search convergence: best-so-far loss vs trial number per sampler (random vs grid vs TPE).
3. default vs tuned: each optimizer's final loss with its default hyperparameters and tuned.
4. performance profile: fraction of tasks each optimizer reaches the target within r times
   the fastest optimizer's epochs, r from 1 to 4.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..sweep.results import StudyResult  # noqa: E402
from ..sweep.summary import format_table, summarize  # noqa: E402

COLORS = {"sgd": "tab:gray", "momentum": "tab:blue", "nesterov": "tab:cyan", "adagrad": "tab:green",
          "rmsprop": "tab:purple", "adam": "tab:red", "adamw": "tab:orange", "gd": "black"}
SAMPLER_STYLE = {"random": "-", "grid": "--", "tpe": ":"}


def _color(optimizer: str) -> str:
    return COLORS.get(optimizer, "tab:brown")


def _tasks(summary: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(row["task"] for row in summary["rows"]))


def _objective_label(results: Sequence[StudyResult]) -> str:
    objective = results[0].plan.objective if results else "val_loss"
    epochs = results[0].plan.epochs if results else "?"
    return f"final {objective.replace('_', ' ')} after {epochs} epochs"


def plot_lr_sensitivity(summary: dict[str, Any], ylabel: str, path: Path) -> Path | None:
    rows = [r for r in summary["rows"] if r["lr_points"] or r["diverged_lrs"]]
    if not rows:
        return None
    tasks = _tasks(summary)
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.4 * len(tasks), 4.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        task_rows = [r for r in rows if r["task"] == task]
        finite = sorted(loss for r in task_rows for _, loss in r["lr_points"] if loss > 0)
        # clip at 10x the loss of the worst learning rate that still trains (the untrained level)
        top = min(finite[-1], 10 * _untrained_level(task_rows)) * 2 if finite else 1.0
        bottom = finite[0] / 2 if finite else 1e-3
        for row in task_rows:
            color, name = _color(row["optimizer"]), row["optimizer"]
            robust = row["robustness"]
            label = f"{name} (robust {robust['decades']:.2f} dec.)" if robust else name
            if row["lr_points"]:
                lrs, losses = zip(*row["lr_points"])
                inside = [(x, max(y, bottom)) for x, y in zip(lrs, losses) if y <= top]
                above = [x for x, y in zip(lrs, losses) if y > top]
                if inside:
                    ax.scatter(*zip(*inside), s=12, color=color, alpha=0.35)
                if above:
                    ax.scatter(above, [top] * len(above), marker="^", s=22, color=color, alpha=0.6)
            curve = row["lr_curve"]
            if curve:
                ax.plot([c["best_lr"] for c in curve], [c["best"] for c in curve], "-o", color=color, ms=3, label=label)
                ax.plot([c["lr"] for c in curve], [c["median"] for c in curve], ":", color=color)
            if row["diverged_lrs"]:
                ax.scatter(row["diverged_lrs"], [top] * len(row["diverged_lrs"]), marker="x", color=color, s=25)
            if robust:
                ax.plot([robust["lr_low"], robust["lr_high"]], [robust["threshold"]] * 2, color=color, lw=5, alpha=0.4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(bottom / 1.2, top * 1.3)
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel(f"{ylabel} (log scale)")
        ax.set_title(f"{task}: final loss vs learning rate\nline: best per lr bin, dotted: median, dots: trials\n"
                     f"x: diverged, ^: off the scale, bar: lr range within {summary['within']:.0%} of the best", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _untrained_level(rows: list[dict[str, Any]]) -> float:
    """The loss at the smallest learning rates (where training barely moves the weights)."""
    lowest = [r["lr_curve"][0]["median"] for r in rows if r["lr_curve"]]
    return max(lowest) if lowest else 1.0


def _grid(count: int, width: float, height: float, per_row: int = 4):  # noqa: ANN202
    rows = math.ceil(count / per_row)
    cols = min(count, per_row)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def plot_convergence(summary: dict[str, Any], ylabel: str, path: Path) -> Path | None:
    series = [c for c in summary["convergence"] if any(math.isfinite(v) for v in c["best_so_far"])]
    if not series:
        return None
    groups = list(dict.fromkeys((c["task"], c["optimizer"]) for c in series))
    fig, axes = _grid(len(groups), 4.6, 4.0)
    for ax, (task, optimizer) in zip(axes, groups):
        for c in series:
            if (c["task"], c["optimizer"]) != (task, optimizer):
                continue
            values = [v if math.isfinite(v) else float("nan") for v in c["best_so_far"]]
            ax.plot(range(1, len(values) + 1), values, SAMPLER_STYLE.get(c["sampler"], "-"),
                    color=_color(optimizer), label=f"{c['sampler']} (best {min(values):.4g})", drawstyle="steps-post")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("trials run (in queue order)")
        ax.set_ylabel(f"best {ylabel} so far")
        ax.set_title(f"{task} / {optimizer}: search convergence", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_default_vs_tuned(summary: dict[str, Any], ylabel: str, path: Path) -> Path | None:
    rows = [r for r in summary["rows"] if r["tuned_value"] is not None or r["default_value"] is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(rows) + 2), 4.2))
    labels = [f"{r['task']}\n{r['optimizer']}" for r in rows]
    xs = range(len(rows))
    positive = [r[k] for r in rows for k in ("default_value", "tuned_value") if r[k]]
    floor = min(positive) / 3 if positive else 1e-3
    for offset, key, hatch in ((-0.2, "default_value", "//"), (0.2, "tuned_value", "")):
        values = [max(r[key], floor) if r[key] is not None else float("nan") for r in rows]
        bars = ax.bar([x + offset for x in xs], values, width=0.4, color=[_color(r["optimizer"]) for r in rows],
                      alpha=0.55 if hatch else 0.9, hatch=hatch, edgecolor="black")
        for bar, row in zip(bars, rows):
            if row[key] is not None:
                ax.annotate(f"{row[key]:.3g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(facecolor="lightgray", hatch="//", edgecolor="black", label="default hyperparameters"),
                       Patch(facecolor="gray", edgecolor="black", label="tuned (best trial of the budget)")], fontsize=8)
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel(f"{ylabel} (log scale)")
    ax.set_title("default vs tuned hyperparameters (same epochs and seeds; colour = optimizer)", fontsize=9)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_profile(summary: dict[str, Any], path: Path) -> Path | None:
    profile = summary["profile"]
    if not profile:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    for index, (optimizer, rho) in enumerate(profile["rho"].items()):
        score = profile["score"][optimizer]  # area under rho over r in [1, 4], normalized
        nudge = 0.008 * index  # keeps equal curves visible
        ax.plot(profile["taus"], [v + nudge for v in rho], color=_color(optimizer), drawstyle="steps-post",
                label=f"{optimizer} (score {score:.2f})")
    ax.set_xlim(1, 4)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("r: epochs-to-target / fastest optimizer's epochs-to-target")
    ax.set_ylabel("fraction of tasks reaching the target")
    ax.set_title(f"performance profile over {len(profile['targets'])} task(s)\n(target = best final loss x {1 + profile['slack']:.2f})",
                 fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_sweep_report(results: Sequence[StudyResult], out_dir: str | Path, *, within: float = 0.1,
                       slack: float = 0.1) -> list[Path]:
    """Write the figures (PNG), ``summary.json`` and ``index.html`` into `out_dir`; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(results, within=within, slack=slack)
    ylabel = _objective_label(results)
    figures = [plot_lr_sensitivity(summary, ylabel, out / "lr_sensitivity.png"),
               plot_convergence(summary, ylabel.replace("final ", ""), out / "search_convergence.png"),
               plot_default_vs_tuned(summary, ylabel, out / "default_vs_tuned.png"),
               plot_profile(summary, out / "performance_profile.png")]
    figures = [f for f in figures if f is not None]
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "index.html").write_text(_html(summary, figures))
    return figures + [out / "summary.json", out / "index.html"]


def _html(summary: dict[str, Any], figures: list[Path]) -> str:
    images = "\n".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"<figcaption>{html.escape(p.stem.replace('_', ' '))}</figcaption></figure>" for p in figures)
    budget_note = ("Every optimizer and sampler ran the same declared budget (trials x epochs x seeds), shown in the "
                   "table; the default-hyperparameter run uses the same epochs and seeds.")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>optimlab sweep {html.escape(str(summary['sweep']))}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}
img{{max-width:100%}} pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}</style></head>
<body><h1>Sweep {html.escape(str(summary['sweep']))}</h1>
<p>{budget_note} Robustness: the width in decades of the widest run of learning rates, around the best one,
whose final loss stays within {summary['within']:.0%} of the best.</p>
<pre>{html.escape(format_table(summary))}</pre>
{images}
</body></html>
"""
