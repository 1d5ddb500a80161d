"""Edge of stability on digits: full-batch GD, sharpness every few steps, vs the threshold 2/lr.

    PYTHONPATH=. python benchmarks/edge_of_stability.py --loss mse --lr 2 --steps 2000 --every 20
    PYTHONPATH=. python benchmarks/edge_of_stability.py --task digits-mlp:depth=3 --loss ce --lr 1 --steps 200 --every 2

The same engine and tracker as ``optimlab analyze``; ``--loss mse`` swaps the task's cross-entropy for
the squared loss on one-hot targets, 0.5 * sum_k (f_k(x) - y_k)^2 averaged over examples, the loss of
Cohen et al.'s main experiments (progressive sharpening is clearest with it). Prints the numbers,
writes the figure and a JSON summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from optimlab.analysis.sharpness import SharpnessTracker, sharpness_overview
from optimlab.engine.training import train
from optimlab.report.curvature import plot_sharpness
from optimlab.tasks import Task, get_task


@dataclasses.dataclass
class SquaredLossTask(Task):
    """A classification task trained with 0.5 * ||logits - one_hot(y)||^2 (mean over examples)."""

    def loss_fn(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 0.5 * (output - F.one_hot(target, self.num_classes).to(output.dtype)).pow(2).sum(dim=1).mean()


def _increases_after(losses: list[float], step: int | None) -> int | None:
    """Steps after `step` whose loss is above the previous step's (losses[i] is step i + 1's)."""
    if step is None:
        return None
    return sum(b > a for a, b in zip(losses[step:], losses[step + 1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits-mlp")
    parser.add_argument("--loss", choices=("mse", "ce"), default="mse")
    parser.add_argument("--lr", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = parser.parse_args()
    task = get_task(args.task, limit=args.limit)
    if args.loss == "mse":
        task = SquaredLossTask(**{f.name: getattr(task, f.name) for f in dataclasses.fields(Task)})
    tracker = SharpnessTracker(every=args.every, iterations=args.iterations)
    started = time.perf_counter()
    trace = train(f"gd:lr={args.lr:g}", task, epochs=args.steps, batch_size="full", callbacks=[tracker])
    wall = time.perf_counter() - started
    overview = sharpness_overview(trace)
    name = f"eos_{args.task.replace(':', '_').replace('=', '').replace(',', '_')}_{args.loss}_lr{args.lr:g}"
    trace.problem = f"{args.task} ({'squared loss' if args.loss == 'mse' else 'cross-entropy'})"
    figure = plot_sharpness(trace, args.out / f"{name}.png")
    losses = [row["loss"] for row in trace.steps]
    summary = {"task": args.task, "loss": args.loss, "lr": args.lr, "threshold": 2 / args.lr,
               "steps": trace.meta["steps"], "outcome": trace.outcome_text, "num_train": task.num_train,
               "final_loss": losses[-1], "loss_increases": sum(b > a for a, b in zip(losses, losses[1:])),
               "loss_increases_after_crossing": _increases_after(losses, overview["first_crossing"]),
               "wall_seconds": wall, "threads": torch.get_num_threads(), "figure": str(figure),
               **{k: overview[k] for k in ("initial", "max", "max_step", "final", "mean_second_half", "first_crossing",
                                           "near_threshold_after",
                                           "measurements", "seconds", "training_seconds", "cost_vs_training")},
               "sharpness": [(row["step"], row["sharpness"]) for row in trace.epochs[:1] + trace.steps
                             if row.get("sharpness") is not None]}
    (args.out / f"{name}.json").write_text(json.dumps(summary, indent=1))
    print(f"{args.task}, {args.loss}, gd lr={args.lr:g} (2/lr = {2 / args.lr:.4g}), {summary['steps']} steps on "
          f"{task.num_train} examples: {summary['outcome']}, final loss {losses[-1]:.4g}, "
          f"loss went up at {summary['loss_increases']} steps "
          f"({summary['loss_increases_after_crossing']} after the first crossing)")
    print(f"sharpness: initial {overview['initial']:.4g}, max {overview['max']:.4g} (step {overview['max_step']}), "
          f"final {overview['final']:.4g}, mean over the second half {overview['mean_second_half']:.4g}, "
          f"first reaches 2/lr at step {overview['first_crossing']}; later measurements within 10% of 2/lr: "
          f"{overview['near_threshold_after']}")
    print(f"tracking: {overview['measurements']} measurements, {overview['seconds']:.1f} s vs "
          f"{overview['training_seconds']:.1f} s of training ({100 * overview['cost_vs_training']:.0f}%); "
          f"wall {wall:.1f} s; figure {figure}")


if __name__ == "__main__":
    main()
