"""A sweep's results as one JSON-able summary: budgets, best and default configurations,
learning-rate robustness, search convergence per sampler, and the performance profile."""

from __future__ import annotations

import math
from typing import Any, Sequence

from ..analysis.sweep import (best_so_far, lr_sensitivity, performance_profile, performance_ratios,
                              profile_score, robust_lr_range, targets_from_best, time_to_target)
from .plan import DEFAULT_SAMPLER
from .results import StudyResult

PROFILE_TAUS = [1 + 0.05 * i for i in range(61)]  # r from 1 to 4


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def lr_points(studies: Sequence[StudyResult]) -> list[tuple[float, float]]:
    """(lr, final loss) of every completed, non-diverged trial of these studies."""
    return [(t.params["lr"], t.value) for s in studies for t in s.complete
            if "lr" in t.params and t.outcome != "diverged" and _finite(t.value) is not None]


def summarize(results: Sequence[StudyResult], within: float = 0.1, slack: float = 0.1) -> dict[str, Any]:
    """Everything `optimlab sweep report` shows, as plain data (see the module docstring)."""
    groups: dict[tuple[str, str], list[StudyResult]] = {}
    for study in results:
        groups.setdefault((study.plan.task, study.plan.optimizer), []).append(study)
    rows, tuned_curves = [], {}
    for (task, optimizer), studies in groups.items():
        tuned = [s for s in studies if s.plan.sampler != DEFAULT_SAMPLER]
        default = [s for s in studies if s.plan.sampler == DEFAULT_SAMPLER]
        rows.append(_optimizer_row(task, optimizer, tuned, default, within))
        best_study = min((s for s in tuned if s.best()), key=lambda s: s.best().value, default=None)
        if best_study is not None:
            tuned_curves.setdefault(task, {})[optimizer] = best_study.best().curve
    convergence = [{"task": s.plan.task, "optimizer": s.plan.optimizer, "sampler": s.plan.sampler,
                    "best_so_far": best_so_far([t.value for t in s.finished])}
                   for s in results if s.plan.sampler != DEFAULT_SAMPLER]
    return {"sweep": results[0].plan.sweep if results else None, "within": within, "rows": rows,
            "convergence": convergence, "profile": _profile(tuned_curves, slack)}


def _optimizer_row(task: str, optimizer: str, tuned: list[StudyResult], default: list[StudyResult],
                   within: float) -> dict[str, Any]:
    row: dict[str, Any] = {"task": task, "optimizer": optimizer,
                           "budget": tuned[0].plan.budget if tuned else None,
                           "samplers": {}}
    for study in tuned:
        best = study.best()
        finished = study.finished
        row["samplers"][study.plan.sampler] = {
            "trials": len(finished), "best_value": best.value if best else None,
            "best_params": best.params if best else None,
            "diverged": sum(t.outcome == "diverged" for t in finished),
            "pruned": sum(t.state == "PRUNED" for t in finished),
            "failed": sum(t.state == "FAIL" and t.retried_from is None for t in study.trials)}
    overall = [s.best() for s in tuned if s.best()]
    best = min(overall, key=lambda t: t.value) if overall else None
    row["tuned_value"] = best.value if best else None
    row["tuned_params"] = best.params if best else None
    default_best = default[0].best() if default and default[0].best() else None
    row["default_value"] = default_best.value if default_best else None
    row["default_params"] = default_best.params if default_best else None
    row["default_outcome"] = default_best.outcome if default_best else None
    points = lr_points(tuned)
    row["bins_per_decade"] = _bins_per_decade([lr for lr, _ in points])
    row["lr_curve"] = lr_sensitivity(points, row["bins_per_decade"]) if points else []
    row["lr_points"] = points
    row["diverged_lrs"] = [t.params["lr"] for s in tuned for t in s.finished
                           if t.outcome == "diverged" and "lr" in t.params]
    row["robustness"] = robust_lr_range(points, within) if points else None
    return row


def _bins_per_decade(lrs: list[float]) -> int:
    """About two distinct learning rates per bin, between 1 and 6 bins per decade."""
    distinct = sorted(set(lrs))
    if len(distinct) < 2:
        return 2
    span = max(math.log10(distinct[-1] / distinct[0]), 1e-9)
    return max(1, min(6, round(len(distinct) / span / 2)))


def _profile(curves: dict[str, dict[str, list[float]]], slack: float) -> dict[str, Any] | None:
    """Time-to-target (epochs) of each optimizer's tuned best trial; profile over the tasks."""
    if not curves:
        return None
    finals = {task: {opt: c[-1] for opt, c in by_opt.items() if c} for task, by_opt in curves.items()}
    targets = targets_from_best(finals, slack)
    times = {task: {opt: time_to_target(c, targets[task]) for opt, c in by_opt.items()} for task, by_opt in curves.items()}
    ratios = performance_ratios(times)
    breakpoints = {r for by_opt in ratios.values() for r in by_opt.values() if 1 <= r <= 4}
    taus = sorted(set(PROFILE_TAUS) | breakpoints)  # the exact steps of rho
    return {"slack": slack, "targets": targets, "epochs_to_target": times, "ratios": ratios, "taus": taus,
            "rho": performance_profile(ratios, taus),
            "score": {opt: profile_score(ratios, opt) for opt in performance_profile(ratios, [1.0])}}


def format_table(summary: dict[str, Any]) -> str:
    """The summary as an aligned text table."""
    lines = [f"{'task':<18} {'optimizer':<10} {'budget':<16} {'default':>9} {'tuned':>9} {'robust (decades)':>17}  best configuration"]
    for row in summary["rows"]:
        budget = row["budget"]
        budget_text = f"{budget['trials']}x{budget['epochs']}ep x{budget['seeds']}s" if budget else "-"
        robust = f"{row['robustness']['decades']:.2f}" if row["robustness"] else "-"
        lines.append(f"{row['task']:<18} {row['optimizer']:<10} {budget_text:<16} {_num(row['default_value']):>9} "
                     f"{_num(row['tuned_value']):>9} {robust:>17}  "
                     f"{_params(row['tuned_params'])}")
    lines.append("")
    lines.append(f"{'task':<18} {'optimizer':<10} {'sampler':<8} {'trials':>6} {'best':>9} {'diverged':>8} {'pruned':>6}")
    for row in summary["rows"]:
        for sampler, info in row["samplers"].items():
            lines.append(f"{row['task']:<18} {row['optimizer']:<10} {sampler:<8} {info['trials']:>6} "
                         f"{_num(info['best_value']):>9} {info['diverged']:>8} {info['pruned']:>6}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _params(params: dict[str, Any] | None) -> str:
    if not params:
        return "-"
    return ",".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
