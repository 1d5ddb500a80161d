"""Tables of runs: per-optimizer aggregates (mean ± std over seeds) and plain-text rendering."""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from typing import Any, Iterable, Sequence


def mean_std(values: Iterable[Any]) -> tuple[float | None, float | None, int]:
    """(mean, sample std (n-1; 0 for one value), count) of the finite values; (None, None, 0) if none."""
    finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return None, None, 0
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return statistics.fmean(finite), std, len(finite)


def format_number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def format_mean_std(values: Sequence[Any], digits: int = 4) -> str:
    """'0.2431 ± 0.0012' over the finite values, '-' if none, with '(k/n)' when some are missing."""
    mean, std, count = mean_std(values)
    if mean is None:
        return "-"
    text = format_number(mean, digits) if count == 1 else f"{format_number(mean, digits)} ± {format_number(std, 2)}"
    return text if count == len(values) else f"{text} ({count}/{len(values)})"


def outcome_text(outcomes: Sequence[str]) -> str:
    """'completed' when all agree, else '2× completed, 1× diverged at step 37'."""
    counts = Counter(outcomes)
    if len(counts) == 1:
        return outcomes[0] if len(outcomes) == 1 else f"{outcomes[0]} ({len(outcomes)}/{len(outcomes)})"
    return ", ".join(f"{n}× {text}" for text, n in counts.items())


def aggregate(records: Sequence[dict[str, Any]], metric: str = "acc", target: str | None = None) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): one row per optimizer spec (in order of appearance) over its seeds; a
    'final test <metric>' column when the runs have a test split."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["optimizer"], []).append(record)
    with_test = any(r.get("final_test_metric") is not None for r in records)  # tasks with a test split
    headers = ["optimizer", "batch", "seeds", "final train loss", f"best val {metric}"]
    headers += [f"final test {metric}"] if with_test else []
    headers.append("s/epoch")
    if target:
        headers.append(f"s to {target}")
    headers.append("outcome")
    rows = []
    for spec, runs in groups.items():
        row = [spec, str(runs[0]["batch_size"]), str(len(runs)),
               format_mean_std([r["final_train_loss"] for r in runs]),
               format_mean_std([r["best_val_metric"] for r in runs])]
        if with_test:
            row.append(format_mean_std([r.get("final_test_metric") for r in runs]))
        row.append(format_mean_std([r["seconds_per_epoch"] for r in runs], 3))
        if target:
            times = [r.get("time_to_target") for r in runs]
            row.append("not reached" if all(t is None for t in times) else format_mean_std(times, 3))
        row.append(outcome_text([r["outcome"] for r in runs]))
        rows.append(row)
    return headers, rows


def is_numeric(cell: str) -> bool:
    """A number, 'x ± y', '-' or 'not reached': right-aligned in tables."""
    return cell in ("-", "", "not reached") or bool(re.match(r"^[-+]?(\d|\.\d|inf|nan)", cell))


def render_text(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: numeric columns right-aligned, text columns left-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(str(h))] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    right = [bool(cells) and all(is_numeric(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)).rstrip()

    return "\n".join([line([str(h) for h in headers]), line(["-" * w for w in widths]), *(line(r) for r in cells)])


__all__ = ["aggregate", "render_text", "mean_std", "format_mean_std", "format_number", "outcome_text"]
