"""``run_benchmark``: create (or join) the benchmark's studies, run workers until every trial is
done, and build the leaderboard and its page."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from ..sweep.plan import create_studies
from ..sweep.runner import run_workers
from ..sweep.storage import open_storage, release
from .leaderboard import leaderboard, load_cells
from .plans import benchmark_plans
from .workloads import NOTES_OPTIMIZERS, TRIALS, WORKLOADS, Workload, target_for, workloads_for


def default_scale() -> str:
    """``full`` on a machine with a CUDA GPU, ``smoke`` otherwise."""
    import torch

    return "full" if torch.cuda.is_available() else "smoke"


def machine() -> str:
    return f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)"


def create_benchmark(name: str, url: str, *, scale: str, optimizers: list[str], trials: int | None,
                     workload_names: list[str] | None = None, data_dir: str | None = None, seed: int = 0,
                     targets: dict[str, Any] | None = None, spaces: dict[str, list[str]] | None = None) -> list[Workload]:
    """Create the studies (or check that the existing ones have the same plans); return the workloads."""
    workloads = workloads_for(scale, workload_names, include_gpu=bool(data_dir))
    for workload in workloads:
        if workload.needs_data_dir and not data_dir:
            raise ValueError(f"workload {workload.name} reads the CIFAR-10 files from your disk: pass --data-dir DIR")
    stored = {w.name: target_for(w, scale, targets) for w in workloads}
    plans = benchmark_plans(name, workloads, stored, optimizers, trials=trials or TRIALS[scale], seed=seed,
                            data_dir=data_dir, spaces=spaces)
    storage = open_storage(url)
    try:
        create_studies(url, storage, plans)
    finally:
        release(storage)
    return workloads


def run_benchmark(name: str, url: str, db_path: str | None, *, scale: str, optimizers: list[str] | None = None,
                  trials: int | None = None, workload_names: list[str] | None = None, data_dir: str | None = None,
                  workers: int = 1, seed: int = 0, resume: bool = False, out: str | Path | None = None,
                  targets: dict[str, Any] | None = None, torch_threads: int | None = None,
                  spaces: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Run benchmark ``name`` to the end on this machine; return the leaderboard (and write its page to ``out``)."""
    started = time.perf_counter()
    optimizers = list(optimizers or NOTES_OPTIMIZERS)
    if not resume:
        create_benchmark(name, url, scale=scale, optimizers=optimizers, trials=trials, workload_names=workload_names,
                         data_dir=data_dir, seed=seed, targets=targets, spaces=spaces)
    threads = torch_threads or max(1, (os.cpu_count() or 1) // workers)
    codes = run_workers(workers, url=url, sweep=name, db_path=db_path, torch_threads=threads)
    if any(code != 0 for code in codes):
        raise RuntimeError(f"a benchmark worker failed (exit codes {codes}); `--resume --study {name}` goes on")
    names = {w.task: w.name for by_name in WORKLOADS.values() for w in by_name.values()}
    cells, spaces_used = load_cells(url, name, names)
    board = leaderboard(cells)
    board["meta"] = {"name": name, "scale": scale, "trials": cells[0].budget.get("trials") if cells else trials,
                     "optimizers": sorted({c.optimizer for c in cells}), "spaces": spaces_used,
                     "wall_seconds": time.perf_counter() - started, "machine": machine(), "storage": url,
                     "db": db_path}
    if out is not None:
        from ..report.benchmark import write_benchmark_report

        board["page"] = str(write_benchmark_report(board, board["meta"], out))
    return board


__all__ = ["run_benchmark", "create_benchmark", "default_scale"]
