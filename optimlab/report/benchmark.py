"""The benchmark's leaderboard page: ranking, raw per-workload times to target, targets and
budgets, and the performance profiles on both clocks (PNG, embedded in one HTML file)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..summary import json_safe  # noqa: E402
from .html import write_html  # noqa: E402
from .sweep import _color  # noqa: E402

CLOCK_LABELS = {"steps": "optimizer steps", "seconds": "training seconds"}


def plot_profiles(board: dict[str, Any], path: Path) -> Path:
    """rho(tau) per optimizer, one panel per clock, tau from 1 to tau_max."""
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.2))
    for ax, (clock, data) in zip(axes, board["clocks"].items()):
        for index, (optimizer, rho) in enumerate(sorted(data["rho"].items())):
            nudge = 0.006 * index  # keeps equal curves visible
            ax.plot(data["taus"], [v + nudge for v in rho], drawstyle="steps-post", color=_color(optimizer),
                    label=f"{optimizer} (score {data['score'][optimizer]:.2f})")
        ax.set_xlim(1, board["tau_max"])
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel(f"tau: {CLOCK_LABELS[clock]} to target / fastest optimizer's")
        ax.set_ylabel("fraction of workloads with ratio <= tau")
        ax.set_title(f"performance profile on {CLOCK_LABELS[clock]} ({len(data['times'])} workloads)", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(value: Any, digits: str = ".3g") -> str:
    if isinstance(value, (int, float)) and not math.isfinite(value):
        return "never"
    return format(value, digits) if isinstance(value, (int, float)) else str(value)


def write_benchmark_report(board: dict[str, Any], meta: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``profiles.png``, ``leaderboard.json`` and the leaderboard page ``index.html``; return the page."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = plot_profiles(board, out / "profiles.png")
    (out / "leaderboard.json").write_text(json.dumps(json_safe({"meta": meta, **board}), indent=1, default=str))
    ranking = [[str(i + 1), r["optimizer"], f"{r['score_seconds']:.3f}", f"{r['score_steps']:.3f}",
                f"{r['workloads_reached']}/{r['workloads']}", f"{r['trials_reached']}/{r['trials']}"]
               for i, r in enumerate(board["ranking"])]
    raw = [[r["workload"], r["optimizer"], _fmt(r["steps"], ".0f"), _fmt(r["seconds"]), _fmt(r["ratio_steps"], ".2f"),
            _fmt(r["ratio_seconds"], ".2f"), f"{r['reached']}/{r['trials']}",
            ", ".join(f"{k}={_fmt(v)}" for k, v in (r["best_params"] or {}).items()) or "-"]
           for r in sorted(board["raw"], key=lambda r: (r["workload"], r["optimizer"]))]
    workloads = {}
    for r in board["raw"]:
        target, budget = r["target"] or {}, r["budget"] or {}
        workloads.setdefault(r["workload"], [r["workload"], _target_text(target),
                                             f"{budget.get('trials', '?')} trials x {budget.get('epochs', '?')} epochs"])
    tables = [
        ("Leaderboard (score: area under the performance profile for tau in [1, 4], normalized; 1 = fastest on every workload)",
         ["rank", "optimizer", "score (seconds)", "score (steps)", "workloads reached", "trials reached"], ranking),
        ("Raw numbers: fastest trial's time to target per workload (ratio = time / fastest optimizer's time)",
         ["workload", "optimizer", "steps to target", "seconds to target", "ratio (steps)", "ratio (seconds)",
          "trials reached", "fastest trial (seconds clock)"], raw),
        ("Workloads: fixed validation targets and the tuning budget every optimizer gets",
         ["workload", "target", "budget per optimizer"], list(workloads.values())),
    ]
    intro = [f"Benchmark {meta.get('name')} at scale {meta.get('scale')}: {meta.get('trials')} random trials per optimizer "
             f"and workload from its declared search space (external tuning, one study); each trial stops at the "
             f"workload's target. Seconds are training seconds (evaluation excluded) on the machine that ran the trial.",
             f"Search spaces: {'; '.join(f'{k}: {v}' for k, v in (meta.get('spaces') or {}).items())}.",
             f"Wall time of this run: {_fmt(meta.get('wall_seconds'), '.0f')} s on {meta.get('machine', '?')}."]
    return write_html(out / "index.html", f"optimlab benchmark {meta.get('name')}: leaderboard", intro, tables,
                      [("performance profiles: steps (left) and training seconds (right)", figure)])


def _target_text(target: dict[str, Any]) -> str:
    if not target:
        return "?"
    return f"{target['column']} {'>=' if target['higher_is_better'] else '<='} {target['value']:.4g}"


__all__ = ["write_benchmark_report", "plot_profiles"]
