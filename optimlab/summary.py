"""One-line summaries of a training Trace: what tables, the store and `--json` print per run."""

from __future__ import annotations

import math
from typing import Any

from .trace import Trace

HIGHER_IS_BETTER = {"acc": True, "r2": True, "bpc": False}  # bpc: bits per character (shakespeare-char)


def _finite(values: list[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def parse_target(text: str) -> tuple[str, float]:
    """``"val_acc=0.95"`` -> ("val_metric", 0.95)-style (column, threshold); metric names acc/r2/metric."""
    column, eq, value = text.partition("=")
    column = column.strip()
    aliases = {f"{split}_{name}": f"{split}_metric" for split in ("train", "val") for name in ("acc", "r2", "metric")}
    aliases.update({"train_loss": "train_loss", "val_loss": "val_loss"})
    if not eq or column not in aliases:
        raise ValueError(f"target {text!r} must look like val_acc=0.95 or train_loss=0.25 "
                         f"(columns: {', '.join(sorted(aliases))})")
    try:
        threshold = float(value)
    except ValueError:
        raise ValueError(f"target {text!r}: {value!r} is not a number") from None
    return aliases[column], threshold


def time_to_target(trace: Trace, column: str, threshold: float) -> float | None:
    """Training seconds at the first epoch row reaching the target (loss <= t, metric >= t); None if never."""
    for row in trace.epochs:
        value = row.get(column)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        reached = value <= threshold if column.endswith("loss") else value >= threshold
        if reached:
            return float(row["time"])
    return None


def json_safe(value: Any) -> Any:
    """NaN/inf -> None, recursively, so the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def summarize(trace: Trace) -> dict[str, Any]:
    """The per-run numbers: final train loss (whole training set, after the last step), best
    validation metric, the final model's test loss and metric (tasks with a test split), seconds
    per epoch (training time / epochs done), outcome."""
    meta = trace.meta
    last = trace.epochs[-1] if trace.epochs else {}
    steps = meta.get("steps", len(trace.steps))
    steps_per_epoch = meta.get("steps_per_epoch") or 1
    epochs_done = steps / steps_per_epoch
    seconds = meta.get("train_seconds", last.get("time"))
    metrics = _finite(trace.column("val_metric", "epochs"))
    higher = meta.get("higher_is_better", HIGHER_IS_BETTER.get(meta.get("metric", "acc"), True))
    final_test = meta.get("final_test") or {}
    best = (max(metrics) if higher else min(metrics)) if metrics else None
    return {
        "optimizer": trace.optimizer,
        "task": meta.get("task", trace.problem),
        "seed": meta.get("seed"),
        "batch_size": meta.get("batch_size_arg", meta.get("batch_size")),
        "epochs": epochs_done,
        "steps": steps,
        "outcome": trace.outcome_text,
        "final_train_loss": last.get("train_loss"),
        "final_val_loss": last.get("val_loss"),
        "final_val_metric": last.get("val_metric"),
        "best_val_metric": best,
        "final_test_loss": final_test.get("loss"),  # the final model on the test split (None: no test split)
        "final_test_metric": final_test.get("metric"),
        "metric": meta.get("metric"),
        "train_seconds": seconds,
        "seconds_per_epoch": (seconds / epochs_done) if seconds is not None and epochs_done > 0 else None,
    }


__all__ = ["summarize", "json_safe", "parse_target", "time_to_target"]
