"""`optimlab runs list|show|export`: look into the results store."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from ..report.tables import format_number, render_text
from ..summary import json_safe
from ..store import DEFAULT_DB
from .report import parse_run_ranges, select_run_ids

if TYPE_CHECKING:
    from ..store import Store


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("runs", help="list, show or export stored runs",
                                   description="Look into the results store (read only: a missing database "
                                               "is an error, never created).")
    parser.add_argument("--db", help=f"results database (default: $OPTIMLAB_DB or ./{DEFAULT_DB})")
    actions = parser.add_subparsers(dest="action", metavar="<action>", required=True)
    listing = actions.add_parser("list", help="one line per run", description="One line per stored run, oldest first.")
    listing.add_argument("--task", help="only runs of this task (exact name, e.g. digits-mlp)")
    listing.add_argument("--optimizer", help="only runs of this exact optimizer spec, e.g. adam:lr=0.003")
    listing.add_argument("--experiment", help="only runs of this experiment (e.g. one compare invocation)")
    listing.add_argument("--limit", type=_positive_int, help="only the newest N runs")
    listing.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    show = actions.add_parser("show", help="a run's summary, config and epoch rows")
    show.add_argument("run", type=_positive_int, help="run id (see `optimlab runs list`)")
    show.add_argument("--json", action="store_true", help="the whole trace and config as JSON")
    export = actions.add_parser("export", help="rows of runs as CSV")
    export.add_argument("runs", nargs="+", help="run ids, e.g. 1 2 or 1-18 (ranges are not expanded: only stored runs count)")
    export.add_argument("--csv", action="store_true", required=True, help="CSV (the only format)")
    export.add_argument("--table", choices=("epochs", "steps", "runs"), default="epochs",
                        help="epochs: one row per evaluation; steps: one row per optimizer step; "
                             "runs: one summary row per run (default epochs)")
    export.add_argument("-o", "--output", help="file (default: standard output)")
    for action in (listing, show, export):  # `optimlab runs list --db X` works as well as `runs --db X list`
        action.add_argument("--db", default=argparse.SUPPRESS, help="results database")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..store import Store

    if getattr(args, "output", None):
        from ..outputs import check_output_file

        check_output_file(args.output, "--output")
    if args.action == "export":
        parse_run_ranges(args.runs)  # a malformed id fails before the database is opened
    with Store(args.db, create=False) as store:
        return {"list": _list, "show": _show, "export": _export}[args.action](store, args)


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse prints the message as one line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _list(store: "Store", args: argparse.Namespace) -> int:
    rows = store.list_runs(task=args.task, optimizer=args.optimizer, experiment=args.experiment, limit=args.limit)
    if args.json:
        print(json.dumps(json_safe(rows), indent=1))
        return 0
    headers = ["id", "task", "optimizer", "seed", "batch", "epochs", "final train loss", "best val metric",
               "s/epoch", "outcome", "created (UTC)"]
    table = [[str(r["id"]), r["task"], r["optimizer"], str(r["seed"]), str(r["batch_size"]), format_number(r["epochs"], 3),
              format_number(r["final_train_loss"]), format_number(r["best_val_metric"]),
              format_number(r["seconds_per_epoch"], 3), r["outcome"], r["created_at"]] for r in rows]
    print(render_text(headers, table) if rows else f"no runs in {store.location}")
    return 0


def _show(store: "Store", args: argparse.Namespace) -> int:
    trace, config = store.load_run(args.run)
    if args.json:
        print(json.dumps(json_safe({"run_id": args.run, "config": config, "trace": trace.to_dict()}), indent=1))
        return 0
    print(f"run {args.run}: {trace.optimizer} on {trace.problem}, {trace.outcome_text}")
    print("config: " + json.dumps(config, default=str))
    columns = ["epoch", "step", "train_loss", "val_loss", "train_metric", "val_metric", "time", "lr"]
    rows = [[format_number(row.get(c)) if isinstance(row.get(c), float) else str(row.get(c, "-")) for c in columns]
            for row in trace.epochs]
    print(render_text(columns, rows))
    return 0


def _export(store: "Store", args: argparse.Namespace) -> int:
    ids = select_run_ids(store, args.runs)
    if args.output:
        with open(args.output, "w", newline="") as handle:
            count = store.export_csv(ids, handle, args.table)
        print(f"wrote {count} rows to {args.output}", file=sys.stderr)
    else:
        store.export_csv(ids, sys.stdout, args.table)
    return 0
