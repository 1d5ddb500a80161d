"""Do decayed schedules, EMA and snapshot/seed ensembles help SGD on digits-mlp? mean ± std over seeds.

    PYTHONPATH=$PWD python benchmarks/schedules_digits.py --seeds 5 --epochs 30 \
        --out benchmarks/results/schedules_digits.json

Every configuration trains the same seeds with the same optimizer spec; each run also keeps an
EMA of the weights, so "raw" and "EMA" columns come from the same runs. The seed ensemble
combines the constant-lr runs' final models (mean of softmax probabilities).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from optimlab.averaging import average_predictions, predict_ensemble
from optimlab.engine.ensembles import AveragingCallback, planned_steps
from optimlab.engine.training import train
from optimlab.schedules import parse_schedule
from optimlab.tasks import get_task


def configurations(total: int, per_epoch: int, cycles: int) -> dict[str, str | None]:
    epochs = total // per_epoch
    return {
        "constant": None,
        "step (x0.3 every third of the run)": f"step:every={total // 3},factor=0.3",
        "inverse_time (1/t)": f"inverse_time:k={10 / total:.6g}",
        "cosine": f"cosine:total={total}",
        f"cosine restarts x{cycles} (snapshot)": f"cosine_restarts:period={total // cycles}",
        "warmup + cosine": f"cosine:total={total - epochs},warmup={epochs}",
    }


def run(args: argparse.Namespace) -> dict:
    task = get_task(args.task)
    total, per_epoch = planned_steps(task, epochs=args.epochs, batch_size=args.batch_size, max_steps=None)
    results: dict = {"task": args.task, "optimizer": args.optimizer, "epochs": args.epochs,
                     "batch_size": args.batch_size, "steps": total, "average": args.average,
                     "seeds": list(range(args.seeds)), "configs": {}, "torch": torch.__version__,
                     "machine": platform.machine(), "test_size": len(task.data("test")[0])}
    final_outputs = []
    for name, spec in configurations(total, per_epoch, args.cycles).items():
        if args.only and not any(word in name for word in args.only):
            continue
        schedule = parse_schedule(spec)
        snapshots = [s - 1 for s in getattr(schedule, "cycle_starts", lambda t: [])(total)]
        rows = []
        for seed in results["seeds"]:
            hook = AveragingCallback(args.average, snapshots)
            started = time.perf_counter()
            trace = train(args.optimizer, task, seed=seed, schedule=schedule, epochs=args.epochs,
                          batch_size=args.batch_size, callbacks=[hook])
            row = dict(trace.meta["test"], val=trace.epochs[-1]["val_metric"],
                       train_loss=trace.epochs[-1]["train_loss"], seconds=time.perf_counter() - started)
            row.update(last_snapshots(task, hook, (2, 3)))
            rows.append(row)
            print(f"{name:<36} seed {seed}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()), flush=True)
            if spec is None:
                final_outputs.append(hook.test_outputs)
        results["configs"][name] = {"schedule": spec, "runs": rows}
    x, y = task.data("test")
    if final_outputs:
        combined = average_predictions(final_outputs, task.kind)
        results["seed_ensemble_constant"] = task.metric(combined, y)
        results["seed_ensemble_constant_loss"] = float(task.loss_fn(combined, y))
    return results


def last_snapshots(task, hook: AveragingCallback, counts: tuple[int, ...]) -> dict[str, float]:
    """Test metric and loss of ensembles of only the last k snapshots (the early ones are weaker)."""
    if hook.snapshots is None:
        return {}
    x, y = task.data("test")
    row = {}
    for count in counts:
        combined = predict_ensemble(hook.snapshots.snapshots[-count:], x, task.kind, model=task.make_model())
        row[f"snapshot_last{count}"] = task.metric(combined, y)
        row[f"snapshot_last{count}_loss"] = float(task.loss_fn(combined, y))
    return row


def summarize(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    """mean ± sample standard deviation over seeds."""
    values = [scale * v for v in values]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def table(results: dict) -> str:
    average = results["average"].split(":")[0]
    columns = [("raw", "raw"), (average, average), ("snapshot_ensemble", "snapshot ens."),
               ("snapshot_last3", "last 3 snapshots")]
    header = " | ".join(f"test acc {label} (%)" for _, label in columns)
    header += " | " + " | ".join(f"test NLL {label}" for _, label in columns)
    header += " | final train loss"
    lines = [f"| schedule | {header} |", "|---" * (2 + 2 * len(columns)) + "|"]
    for name, config in results["configs"].items():
        runs = config["runs"]
        cells = [summarize([r[key] for r in runs]) if key in runs[0] else "—" for key, _ in columns]
        cells += [summarize([r[key + "_loss"] for r in runs], 1.0, 3) if key in runs[0] else "—" for key, _ in columns]
        cells.append(summarize([r["train_loss"] for r in runs], 1.0, 4))
        lines.append(f"| {name} (`{config['schedule'] or 'constant'}`) | " + " | ".join(cells) + " |")
    if "seed_ensemble_constant" in results:
        lines.append(f"\nSeed ensemble of the {len(results['seeds'])} constant-lr runs: "
                     f"{100 * results['seed_ensemble_constant']:.2f} % test accuracy, "
                     f"test NLL {results['seed_ensemble_constant_loss']:.3f}.")
    return "\n".join(lines)


def paired_differences(results: dict) -> str:
    """Same-seed differences in test accuracy (points): each schedule - constant, EMA - raw, ensembles - raw."""
    average = results["average"].split(":")[0]
    constant = results["configs"]["constant"]["runs"]
    lines = []
    for name, config in results["configs"].items():
        runs = config["runs"]
        parts = []
        if name != "constant":
            parts.append(f"vs constant {summarize([r['raw'] - c['raw'] for r, c in zip(runs, constant)])}")
        parts.append(f"{average} - raw {summarize([r[average] - r['raw'] for r in runs])}")
        for key in ("snapshot_ensemble", "snapshot_last3"):
            if key in runs[0]:
                parts.append(f"{key} - raw {summarize([r[key] - r['raw'] for r in runs])}")
        lines.append(f"- {name}: " + "; ".join(parts))
    return "Paired differences, test accuracy points (mean ± std over seeds):\n" + "\n".join(lines)


def plot_results(paths: list[str], out: str) -> None:
    """Test accuracy (mean ± std over seeds) per schedule, one series per result file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(Path(path).read_text()) for path in paths]
    names = list(runs[0]["configs"])
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(8.5, 5.4), dpi=120)
    for index, result in enumerate(runs):
        means, stds = [], []
        for name in names:
            values = [100 * r["raw"] for r in result["configs"][name]["runs"]]
            means.append(statistics.mean(values))
            stds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
        positions = [i + (index - (len(runs) - 1) / 2) * width for i in range(len(names))]
        line = ax.errorbar(positions, means, yerr=stds, fmt="o", capsize=3, label=f"{result['optimizer']}, single model")
        if "seed_ensemble_constant" in result:
            ax.plot(positions[0], 100 * result["seed_ensemble_constant"], "*", markersize=11,
                    color=line[0].get_color(), markeredgecolor="black",
                    label=f"{result['optimizer']}, ensemble of {len(result['seeds'])} seeds (constant)")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([name.replace(" (", "\n(") for name in names], fontsize=8)
    ax.set_ylabel("test accuracy (%), mean ± std over seeds")
    ax.set_title(f"{runs[0]['task']}: SGD with lr schedules ({runs[0]['epochs']} epochs, batch {runs[0]['batch_size']})")
    ax.set_xlabel("lr schedule")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits-mlp")
    parser.add_argument("--optimizer", default="sgd:lr=0.1")
    parser.add_argument("--average", default="ema:decay=0.99")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="run only the configurations whose name contains a word")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: fair on a shared machine)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--plot", nargs=2, metavar=("OUT", "JSONS"), help="draw OUT from comma-separated result files")
    args = parser.parse_args()
    if args.plot:
        plot_results(args.plot[1].split(","), args.plot[0])
        return
    torch.set_num_threads(args.threads)
    results = run(args)
    print(table(results))
    if "constant" in results["configs"]:
        print(paired_differences(results))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
