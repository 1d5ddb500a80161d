"""Table columns for `compare --average/--ensemble`: test metric of raw, averaged and ensembled models."""

from __future__ import annotations

from typing import Any, Sequence

from .tables import format_mean_std

# (record key suffix, column label) in the order the columns appear
VARIANTS = (("", "raw"), ("_ema", "ema"), ("_swa", "swa"), ("_snapshot_ensemble", "snapshot ens."),
            ("_seed_ensemble", "seed ens."))


def add_held_out_columns(headers: list[str], rows: list[list[str]], records: Sequence[dict[str, Any]],
                         metric: str) -> None:
    """Insert 'test <metric> raw / ema / snapshot ens. / seed ens.' columns before 'outcome', in place.

    Rows are one per optimizer spec in order of appearance (as ``tables.aggregate`` makes them);
    each cell is mean ± std over the spec's seeds (the seed ensemble is one number per spec).
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["optimizer"], []).append(record)
    present = [(suffix, label) for suffix, label in VARIANTS
               if any(f"test_metric{suffix}" in record for record in records)]
    if not present:
        return
    at = headers.index("outcome") if "outcome" in headers else len(headers)
    headers[at:at] = [f"test {metric} {label}" for _, label in present]
    for row, runs in zip(rows, groups.values()):
        cells = []
        for suffix, _ in present:
            values = [r.get(f"test_metric{suffix}") for r in runs]
            if suffix == "_seed_ensemble":
                values = values[:1]  # the same ensemble in every seed's record
            cells.append(format_mean_std(values))
        row[at:at] = cells
