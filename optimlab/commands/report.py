"""`optimlab report RUN_IDS`: redraw the figures and HTML page of stored runs (no training)."""

from __future__ import annotations

import argparse
import bisect
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..store import DEFAULT_DB

if TYPE_CHECKING:
    from ..store import Store


MAX_RANGES = 1000  # run-id items in one command
MAX_RUN_ID = 2**63 - 1  # SQL BIGINT
MAX_REPORT_RUNS = 500  # a page with more runs is unreadable (and slow to draw)


def parse_run_ranges(items: list[str]) -> list[tuple[int, int]]:
    """``["3", "5-7", "9,10"]`` -> [(3, 3), (5, 7), (9, 10)]: inclusive ranges, never expanded
    (``1-999999999`` stays one pair); ValueError naming a malformed item."""
    ranges: list[tuple[int, int]] = []
    for item in items:
        for part in item.split(","):
            match = re.fullmatch(r"\s*(\d{1,19})\s*(?:-\s*(\d{1,19})\s*)?", part)
            first = int(match.group(1)) if match else 0
            last = int(match.group(2) or first) if match else 0
            if not match or last < first or first < 1 or last > MAX_RUN_ID:
                raise ValueError(f"run id {part.strip()[:40]!r} must be a number >= 1 or a range like 3-8")
            ranges.append((first, last))
            if len(ranges) > MAX_RANGES:
                raise ValueError(f"more than {MAX_RANGES} run ids or ranges; use ranges like 1-500")
    return ranges


def select_run_ids(store: "Store", items: list[str]) -> list[int]:
    """The stored runs named by ``items`` (ids and ranges), ascending: a single id that is not
    stored, or a range with no stored run, is a ValueError."""
    ranges = parse_run_ranges(items)
    ids = store.existing_ids(ranges)
    for first, last in ranges:
        index = bisect.bisect_left(ids, first)
        if index == len(ids) or ids[index] > last:
            what = f"id {first}" if first == last else f"ids {first}-{last}"
            raise ValueError(f"no run with {what} in {store.location}")
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
    from ..outputs import check_output_dir
    from ..report.compare_report import stored_runs, write_compare_report
    from ..store import Store

    if not args.runs and not args.experiment:
        raise ValueError("give run ids (e.g. 1-18) or --experiment NAME")
    check_output_dir(args.out, "--out")
    parse_run_ranges(args.runs)  # a malformed id fails before the database is opened
    with Store(args.db, create=False) as store:
        ids = select_run_ids(store, args.runs) if args.runs else [r["id"] for r in store.list_runs(experiment=args.experiment)]
        if not ids:
            raise ValueError(f"no runs in experiment {args.experiment!r}")
        if len(ids) > MAX_REPORT_RUNS:
            raise ValueError(f"{len(ids)} runs selected; a report draws at most {MAX_REPORT_RUNS} (name fewer)")
        runs = stored_runs(store, ids)
    tasks = sorted({trace.problem for trace, _ in runs})
    title = args.title or f"optimlab report: {', '.join(tasks)} (runs {', '.join(args.runs) or args.experiment})"
    intro = [f"Redrawn from stored traces in {store.location}: runs {', '.join(str(i) for i in ids)}.",
             "Times are training seconds, evaluation excluded."]
    path = write_compare_report(runs, Path(args.out), title, intro)
    print(f"report: {path}")
    return 0
