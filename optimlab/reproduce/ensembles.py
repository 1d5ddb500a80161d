"""CS231n's "train 1, get M for free": model ensembles, snapshot ensembles with cyclic lr, Polyak averaging."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from ..engine.ensembles import held_out_record, train_evaluated
from ..schedules import parse_schedule, snapshot_steps
from ..tasks import get_task
from .context import Budget
from .page import ExperimentResult, Table

TASK = "digits-mlp"


def _percent(value: float) -> float:
    return 100 * value


def ensembles(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "ensembles", "Model ensembles, snapshot ensembles with cyclic lr, Polyak averaging",
        "CS231n Training Neural Networks II, model ensembles; D2L 11.11",
        "Do ensembles of independently trained models, snapshots of one cyclic-lr run, or averaged weights "
        "improve test accuracy, and by how much?")
    epochs = budget.epochs(20, 4)
    seeds = budget.count(5, 2)
    rows: list[list] = []

    members = train_evaluated("sgd:lr=0.3", TASK, ensemble=f"seeds:{seeds}", epochs=epochs, batch_size=32)
    single = [held_out_record(t)["test_metric"] for t in members]
    seed_ensemble = held_out_record(members[0])["test_metric_seed_ensemble"]
    rows.append(["independent models (sgd lr 0.3)", f"{seeds} seeds", _percent(np.mean(single)),
                 _percent(np.std(single)), _percent(seed_ensemble), _percent(seed_ensemble - np.mean(single))])

    snapshot_runs = train_evaluated("sgd:lr=0.3", TASK, ensemble="snapshot:cycles=5", average="ema:decay=0.99",
                                    epochs=epochs, batch_size=32)
    snap = held_out_record(snapshot_runs[0])
    rows.append(["snapshot ensemble (cosine restarts, 5 cycles)", "1 run", _percent(snap["test_metric"]), 0.0,
                 _percent(snap["test_metric_snapshot_ensemble"]),
                 _percent(snap["test_metric_snapshot_ensemble"] - snap["test_metric"])])

    averaged = {}
    for label, batch, lr in (("moderate noise: batch 32, lr 0.3", 32, 0.3), ("high noise: batch 8, lr 0.5", 8, 0.5)):
        half = int(epochs * math.ceil(get_task(TASK).num_train / batch)) // 2  # SWA over the second half
        for average in ("ema:decay=0.99", f"swa:start={half}"):
            record = held_out_record(train_evaluated(f"sgd:lr={lr}", TASK, average=average, epochs=epochs,
                                                      batch_size=batch)[0])
            name = average.split(":")[0]
            averaged[(label, name)] = record
            rows.append([f"{name.upper()} averaging, {label}", "1 run", _percent(record["test_metric"]), 0.0,
                         _percent(record[f"test_metric_{name}"]),
                         _percent(record[f"test_metric_{name}"] - record["test_metric"])])
    test_images = len(get_task(TASK).data("test")[0])
    result.tables.append(Table(f"{TASK}, {epochs:g} epochs, test accuracy (%) on {test_images} images",
                               ["method", "runs", "single model", "std over seeds", "ensemble / averaged", "gain (points)"],
                               rows))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    labels = [row[0] for row in rows]
    ax.barh(np.arange(len(rows)) - 0.2, [row[2] for row in rows], height=0.4, label="single / raw model")
    ax.barh(np.arange(len(rows)) + 0.2, [row[4] for row in rows], height=0.4, label="ensemble / averaged")
    ax.set_yticks(np.arange(len(rows)), labels, fontsize=8)
    low = min(min(row[2], row[4]) for row in rows)
    ax.set_xlim(max(0.0, low - 3), 100)
    ax.set(xlabel="test accuracy (%)", title=f"Ensembles and averaging on {TASK}")
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    fig.tight_layout()
    result.add_figure("ensembles.png", fig)

    trace = snapshot_runs[0]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    steps = trace.column("step")
    ax.plot(steps, trace.column("lr"), label="lr (cosine with warm restarts)")
    for index, step in enumerate(snapshot_steps(parse_schedule(trace.meta["schedule"]), trace.meta["steps"])):
        ax.axvline(step, color="gray", ls=":", label="snapshot taken" if index == 0 else None)
    ax.set(xlabel="step", ylabel="learning rate", title="Snapshot ensemble: one model saved at the end of each cycle")
    ax.legend(loc="upper right")
    fig.tight_layout()
    result.add_figure("snapshot_schedule.png", fig)

    noisy_ema = averaged[("high noise: batch 8, lr 0.5", "ema")]
    result.findings += [
        f"An ensemble of {seeds} independently trained models: {_percent(seed_ensemble):.2f}% vs "
        f"{_percent(np.mean(single)):.2f} ± {_percent(np.std(single)):.2f}% for its members "
        f"({_percent(seed_ensemble - np.mean(single)):+.2f} points, at {seeds}x the training cost).",
        f"Snapshot ensemble of one cyclic-lr run: {_percent(snap['test_metric_snapshot_ensemble']):.2f}% vs its final model's "
        f"{_percent(snap['test_metric']):.2f}% ({_percent(snap['test_metric_snapshot_ensemble'] - snap['test_metric']):+.2f} points, "
        "for free).",
        f"Polyak/EMA averaging matters where the iterates are noisy: with batch 8 and lr 0.5 the raw model scores "
        f"{_percent(noisy_ema['test_metric']):.2f}% and its EMA {_percent(noisy_ema['test_metric_ema']):.2f}%.",
        f"The test split has {test_images} images: one image is {100 / test_images:.2f} points, so differences "
        "below ~1 point are within noise.",
    ]
    result.numbers = {row[0]: {"single": row[2], "ensemble_or_averaged": row[4], "gain": row[5]} for row in rows}
    return result
