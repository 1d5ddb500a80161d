"""`optimlab report RUN_IDS`: redraw the figures and HTML page of stored runs (no training)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..store import DEFAULT_DB


def parse_run_ids(items: list[str]) -> list[int]:
    """``["3", "5-7", "9,10"]`` -> [3, 5, 6, 7, 9, 10]; ValueError naming a malformed item."""
    ids: list[int] = []
    for item in items:
        for part in item.split(","):
            match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
            if not match or (match.group(2) and int(match.group(2)) < int(match.group(1))):
                raise ValueError(f"run id {part!r} must be a number or a range like 3-8")
            first, last = int(match.group(1)), int(match.group(2) or match.group(1))
            ids.extend(range(first, last + 1))
    return ids


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="redraw figures + HTML report of stored runs",
                                   description="Redraw the comparison report (PNG figures, HTML page) from stored traces.")
    parser.add_argument("runs", nargs="*", help="run ids, e.g. 1 2 3 or 1-18 (see `optimlab runs list`)")
    parser.add_argument("--experiment", help="every run of one experiment (the `experiment` column of runs list)")
    parser.add_argument("--db", help=f"results database (default: $OPTIMLAB_DB or ./{DEFAULT_DB})")
    parser.add_argument("--out", default="report/runs", help="report folder (default report/runs)")
    parser.add_argument("--title", help="page title")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine.ensembles import held_out_record
    from ..report.compare_report import write_compare_report
    from ..store import Store
    from ..summary import summarize

    if not args.runs and not args.experiment:
        raise ValueError("give run ids (e.g. 1-18) or --experiment NAME")
    with Store(args.db) as store:
        ids = parse_run_ids(args.runs) if args.runs else [r["id"] for r in store.list_runs(experiment=args.experiment)]
        if not ids:
            raise ValueError(f"no runs in experiment {args.experiment!r}")
        runs = []
        for run_id in ids:
            trace, config = store.load_run(run_id)
            record = {**summarize(trace), **held_out_record(trace), "optimizer": config.get("spec", trace.optimizer),
                      "run_id": run_id}
            runs.append((trace, record))
    tasks = sorted({trace.problem for trace, _ in runs})
    title = args.title or f"optimlab report: {', '.join(tasks)} (runs {', '.join(args.runs) or args.experiment})"
    intro = [f"Redrawn from stored traces in {store.location}: runs {', '.join(str(i) for i in ids)}.",
             "Times are training seconds, evaluation excluded."]
    path = write_compare_report(runs, Path(args.out), title, intro)
    print(f"report: {path}")
    return 0
