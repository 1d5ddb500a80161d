"""The report of a comparison (``optimlab compare`` / ``optimlab report``): figures + tables + HTML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..summary import json_safe
from ..trace import Trace
from .held_out import add_held_out_columns
from .html import write_html
from .tables import aggregate, format_number
from .training import write_training_figures

RUN_HEADERS = ["run", "optimizer", "seed", "batch", "epochs", "steps", "final train loss", "best val metric",
               "final test metric", "s/epoch", "outcome"]


def run_rows(records: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [[str(r.get("run_id") or "-"), r["optimizer"], str(r["seed"]), str(r["batch_size"]),
             format_number(r["epochs"], 3), str(r["steps"]), format_number(r["final_train_loss"]),
             format_number(r["best_val_metric"]), format_number(r.get("final_test_metric")),
             format_number(r["seconds_per_epoch"], 3), r["outcome"]]
            for r in records]


def sharpness_figures(runs: Sequence[tuple[Trace, dict[str, Any]]], out: Path) -> list[tuple[str, Path]]:
    """Sharpness vs the stability threshold, for the first tracked seed of each optimizer."""
    from .curvature import plot_sharpness

    figures, drawn = [], set()
    for trace, record in runs:
        if "sharpness" not in trace.meta or record["optimizer"] in drawn:
            continue
        drawn.add(record["optimizer"])
        path = plot_sharpness(trace, out / f"sharpness_{len(drawn)}.png",
                              title=f"{record['optimizer']} (seed {record['seed']})")
        figures.append((f"Sharpness and stability threshold: {record['optimizer']}", path))
    return figures


def stored_runs(store: Any, ids: Sequence[int]) -> list[tuple[Trace, dict[str, Any]]]:
    """(trace, record) of stored runs, the record as `compare --json` gives it (summary, test
    metrics of raw/averaged/ensembled models, optimizer label, run id): what a report redraws."""
    from ..engine.ensembles import held_out_record
    from ..summary import summarize

    runs = []
    for run_id in ids:
        trace, config = store.load_run(run_id)
        record = {**summarize(trace), **held_out_record(trace), "optimizer": config.get("spec", trace.optimizer),
                  "run_id": run_id}
        runs.append((trace, record))
    return runs


def write_compare_report(runs: Sequence[tuple[Trace, dict[str, Any]]], out_dir: str | Path, title: str,
                         intro: Sequence[str] = (), target: str | None = None) -> Path:
    """Figures (PNG), ``results.json`` and ``index.html`` in ``out_dir``; returns the HTML path.

    ``runs``: (trace, record) with record = the run's `--json` object (optimizer label, seed, ...).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = [record for _, record in runs]
    metric = runs[0][0].meta.get("metric", "acc") if runs else "acc"
    figures = write_training_figures([(record["optimizer"], trace) for trace, record in runs], out)
    figures += sharpness_figures(runs, out)
    headers, rows = aggregate(records, metric, target)
    add_held_out_columns(headers, rows, records, metric)  # test metrics of averaged/ensembled models
    (out / "results.json").write_text(json.dumps(json_safe(records), indent=1))
    tables = [(f"Summary (mean ± std over seeds; metric: {metric})", headers, rows), ("Runs", RUN_HEADERS, run_rows(records))]
    return write_html(out / "index.html", title, intro, tables, figures)


__all__ = ["write_compare_report", "stored_runs", "json_safe", "run_rows"]
