"""The notes' experiments on real data: minibatch SGD, optimizers on airfoil, lr decay, L-BFGS
batch size, normalization, initialization, overfitting."""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ..engine.training import train
from ..report.training import plot_learning_rates, plot_loss_vs_epoch, plot_loss_vs_time, plot_train_vs_val
from ..tasks import get_task
from ..tasks.models import initialize
from ..trace import Trace
from .context import Budget
from .page import ExperimentResult, Table

Run = tuple[str, Trace]


def with_bias_column(x: torch.Tensor) -> torch.Tensor:
    """[X 1] in float64: linear regression's weights and bias as one vector."""
    return torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)


def squared_loss(design: torch.Tensor, weights: torch.Tensor, y: torch.Tensor) -> float:
    """mean((design @ w - y)^2) / 2, the loss of the linear tasks."""
    return float(0.5 * (design @ weights - y.double()).pow(2).mean())


def least_squares(design: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The minimizer of :func:`squared_loss`, by torch.linalg.lstsq."""
    return torch.linalg.lstsq(design, y.double().unsqueeze(1)).solution.squeeze(1)


def least_squares_loss(task_name: str = "airfoil-linear", **options: Any) -> float:
    """The optimum of mean((Xw + b - y)^2)/2 on the training split."""
    x, y = get_task(task_name, **options).data("train")
    design = with_bias_column(x)
    return squared_loss(design, least_squares(design, y), y)


def final_loss(trace: Trace) -> float:
    return trace.epochs[-1]["train_loss"]


def loss_at_epoch(trace: Trace, epoch: float) -> float:
    return next(row["train_loss"] for row in trace.epochs if row["epoch"] >= epoch)


def _evaluation_every(batch_size: int, examples: int = 200) -> int:
    """D2L records the loss every 200 examples."""
    return max(1, examples // batch_size)


def airfoil_runs(settings: Sequence[tuple[str, str, int | str, float]]) -> list[Run]:
    """(label, spec, batch size, epochs) -> trained runs on airfoil-linear, loss recorded every 200 examples."""
    runs = []
    for label, spec, batch, epochs in settings:
        size = 1500 if batch == "full" else int(batch)
        runs.append((label, train(spec, "airfoil-linear", epochs=epochs, batch_size=batch,
                                  eval_every=_evaluation_every(size))))
    return runs


def add_airfoil_table(result: ExperimentResult, runs: Sequence[Run], title: str) -> float:
    optimum = least_squares_loss()
    rows = [[label, trace.meta["batch_size"], trace.meta["epochs"], final_loss(trace),
             100 * (final_loss(trace) / optimum - 1), trace.meta["train_seconds"] / trace.meta["epochs"],
             trace.meta["steps_per_epoch"], trace.outcome_text] for label, trace in runs]
    result.tables.append(Table(f"{title} (least-squares optimum of the same loss: {optimum:.5f})",
                               ["run", "batch", "epochs", "final loss", "% above optimum", "s / epoch",
                                "updates / epoch", "outcome"], rows))
    return optimum


def minibatch(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "minibatch", "Minibatch SGD on airfoil: GD vs SGD vs batch 10 vs 100",
        "D2L 11.5 Minibatch Stochastic Gradient Descent",
        "Statistical vs computational efficiency: which batch size reaches a low loss soonest in seconds?")
    runs = airfoil_runs([("GD (lr 1, full batch)", "sgd:lr=1", "full", 10),
                         ("SGD (lr 0.005, batch 1)", "sgd:lr=0.005", 1, 2),
                         ("minibatch 100 (lr 0.4)", "sgd:lr=0.4", 100, 2),
                         ("minibatch 10 (lr 0.05)", "sgd:lr=0.05", 10, 2)])
    optimum = add_airfoil_table(result, runs, "airfoil-linear, D2L's settings")
    for label, trace in runs:
        result.print_line(f"{label}: loss: {final_loss(trace):.3f}, {trace.meta['train_seconds'] / trace.meta['epochs']:.3f} sec/epoch")
    result.add_figure("loss_vs_time.png", partial(plot_loss_vs_time, runs))
    result.add_figure("loss_vs_epoch.png", partial(plot_loss_vs_epoch, runs))
    per_epoch = {label: trace.meta["train_seconds"] / trace.meta["epochs"] for label, trace in runs}
    gd, sgd, mb100, mb10 = (trace for _, trace in runs)
    result.findings += [
        f"One epoch of GD is 1 update and takes {per_epoch[runs[0][0]] * 1e3:.1f} ms; one epoch of SGD is 1500 updates "
        f"and takes {per_epoch[runs[1][0]] * 1e3:.0f} ms: per example, vectorized work is far cheaper.",
        f"Per example seen: after 2 epochs SGD is {100 * (final_loss(sgd) / optimum - 1):.1f}% above the optimum and GD "
        f"{100 * (loss_at_epoch(gd, 2) / optimum - 1):.1f}% ({100 * (final_loss(gd) / optimum - 1):.1f}% after 10 epochs); "
        f"SGD's 1500 noisy updates buy it little per example here and cost "
        f"{per_epoch[runs[1][0]] / per_epoch[runs[0][0]]:.0f}x more time per epoch.",
        f"Minibatches combine both: batch 10 ends {100 * (final_loss(mb10) / optimum - 1):.1f}% and batch 100 "
        f"{100 * (final_loss(mb100) / optimum - 1):.1f}% above the optimum (loss vs seconds, log scale, in the figure).",
    ]
    result.numbers = {"optimum": optimum, **{label: {"final_loss": final_loss(t), "s_per_epoch": per_epoch[label]}
                                            for label, t in runs}}
    return result


def airfoil_optimizers(result: ExperimentResult, settings: Sequence[tuple[str, str]], filename: str) -> None:
    """Append the notes' real-task comparison (airfoil-linear, batch 10, 2 epochs) to an experiment."""
    runs = airfoil_runs([(label, spec, 10, 2) for label, spec in settings])
    optimum = add_airfoil_table(result, runs, "airfoil-linear, batch 10, 2 epochs")
    result.add_figure(filename, partial(plot_loss_vs_epoch, runs))
    result.findings.append("On airfoil (batch 10, 2 epochs): " + "; ".join(
        f"{label} ends {100 * (final_loss(trace) / optimum - 1):.1f}% above the optimum" for label, trace in runs) + ".")
    result.numbers["airfoil"] = {label: final_loss(trace) for label, trace in runs}


def lr_decay(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "lr-decay", "Learning-rate decay on digits: constant vs step vs exponential vs 1/t",
        "CS231n Training Neural Networks II, learning rate decay; D2L 11.11",
        "Does decaying SGD's learning rate over time beat a constant one on a real network?")
    epochs = int(budget.epochs(10, 3))
    seeds = range(budget.count(2, 1))
    steps = epochs * math.ceil(get_task("digits-mlp").num_train / 64)
    schedules = {"constant": None, "step (x0.5 every 25%)": f"step:every={steps // 4},factor=0.5",
                 "exponential (to 1/10)": f"exponential:gamma={0.1 ** (1 / steps)}",
                 "1/t (to 1/10)": f"inverse_time:k={9 / steps}"}
    rows, shown = [], []
    for label, schedule in schedules.items():
        traces = [train("sgd:lr=0.5", "digits-mlp", epochs=epochs, batch_size=64, seed=seed, schedule=schedule)
                  for seed in seeds]
        shown += [(label, trace) for trace in traces]
        finals = [final_loss(t) for t in traces]
        accuracy = [t.epochs[-1]["val_metric"] for t in traces]
        rows.append([label, float(np.mean(finals)), float(np.std(finals)), float(np.mean(accuracy)),
                     float(np.std(accuracy)), len(traces)])
    result.tables.append(Table(f"digits-mlp, SGD lr 0.5, batch 64, {epochs} epochs (mean and std over seeds)",
                               ["schedule", "train loss", "std", "val accuracy", "std", "seeds"], rows))
    result.add_figure("lr_decay_loss.png", partial(plot_loss_vs_epoch, shown))
    result.add_figure("lr_decay_schedules.png", partial(plot_learning_rates, [(l, t) for l, t in shown if t.meta["seed"] == 0]))
    best = min(rows, key=lambda row: row[1])
    verdict = ("a decayed schedule beats constant lr here" if best[0] != "constant" else
               "constant lr wins here: in this budget the run is still limited by distance to the minimum, not by "
               "minibatch noise, so lowering the lr only slows it down")
    result.findings += [
        f"Lowest final training loss: {best[0]} ({best[1]:.4f}; constant: {rows[0][1]:.4f}): {verdict}.",
        "Validation accuracy: " + "; ".join(f"{row[0]} {row[3]:.4f} ± {row[4]:.4f}" for row in rows) + ".",
        "Decay pays off once the loss is noise-limited (bouncing around a minimum at a large lr, late in long "
        "training); which regime a run is in is a measurement, not a rule.",
    ]
    result.numbers = {row[0]: {"train_loss": row[1], "val_acc": row[3]} for row in rows}
    return result


def lbfgs_batch(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "lbfgs-batch", "L-BFGS full batch vs minibatch on softmax regression (digits)",
        "CS231n Training Neural Networks II, second-order optimization",
        "L-BFGS works well in full batch, deterministic mode; what happens with minibatches?")
    epochs = budget.epochs(1, 0.5)
    runs = [("L-BFGS full batch", train("lbfgs", "digits-softmax", epochs=budget.epochs(20, 5), batch_size="full")),
            ("L-BFGS batch 64", train("lbfgs", "digits-softmax", epochs=epochs, batch_size=64)),
            ("Adam batch 64 (reference)", train("adam:lr=0.01", "digits-softmax", epochs=budget.epochs(10, 2), batch_size=64))]
    rows = [[label, trace.meta["batch_size"], trace.meta["steps"], final_loss(trace), trace.epochs[-1]["val_metric"],
             trace.meta["train_seconds"], trace.outcome_text] for label, trace in runs]
    result.tables.append(Table("digits-softmax", ["run", "batch", "optimizer steps", "train loss", "val accuracy",
                                                  "seconds", "outcome"], rows))
    result.add_figure("lbfgs_loss_vs_time.png", partial(plot_loss_vs_time, runs))
    result.findings += [
        f"Full batch: each L-BFGS step builds its curvature pairs on the same objective; train loss {rows[0][3]:.3g} "
        "(unregularized softmax on separable data: the loss keeps falling towards 0).",
        f"Minibatch: the pairs come from different batches and the line search fits batch noise; "
        f"train loss {rows[1][3]:.4g} ({rows[1][6]}).",
        f"Adam with minibatches, for reference: {rows[2][3]:.4f}.",
    ]
    result.numbers = {row[0]: {"train_loss": row[3], "val_acc": row[4]} for row in rows}
    return result


def normalization(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "normalization", "Data normalization as conditioning (airfoil)",
        "CS231n Training Neural Networks II, recap: data preprocessing",
        "Before normalization the loss is very sensitive to small changes in the weights; how much, and what "
        "does it do to gradient descent?")
    rows, numbers, gaps = [], {}, {}
    for standardized in (False, True):
        task = get_task("airfoil-linear", standardize=standardized, dtype=torch.float64)
        x, y = task.data("train")
        design = with_bias_column(x)
        hessian = design.T @ design / len(x)  # of mean((Xw - y)^2)/2
        eigenvalues = torch.linalg.eigvalsh(hessian)
        kappa = float(eigenvalues[-1] / eigenvalues[0])
        w_star = least_squares(design, y)
        loss_star = squared_loss(design, w_star, y)
        generator = torch.Generator().manual_seed(0)
        direction = torch.randn(w_star.shape, generator=generator, dtype=torch.float64)
        perturbed = w_star + 1e-3 * w_star.norm() * direction / direction.norm()
        sensitivity = squared_loss(design, perturbed, y) / loss_star - 1
        lr = 1.0 / float(eigenvalues[-1])  # the largest stable-and-monotone step for GD
        trace = train(f"gd:lr={lr}", task, epochs=budget.epochs(100, 30), batch_size="full")
        gap = final_loss(trace) / loss_star - 1
        label = "standardized" if standardized else "raw units"
        gaps[f"{label} (condition number {kappa:.3g})"] = (trace.column("epoch", "epochs"),
                                                          [row["train_loss"] / loss_star - 1 for row in trace.epochs])
        rows.append([label, float(eigenvalues[-1]), float(eigenvalues[0]), kappa, sensitivity, lr, gap])
        numbers[label] = {"condition_number": kappa, "sensitivity": sensitivity, "gd_gap": gap}
    result.tables.append(Table("Linear regression on airfoil: Hessian X^T X / n (with bias column)",
                               ["features", "lambda_max", "lambda_min", "condition number",
                                "loss change for a 0.1% weight change", "GD lr = 1/lambda_max",
                                "GD: relative gap to optimum after the epochs"], rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (epochs, values) in gaps.items():
        ax.semilogy(epochs, [max(v, 1e-16) for v in values], label=label)
    ax.set(xlabel="epoch (one full-batch GD step each, lr = 1/lambda_max)", ylabel="(L - L*) / L*  (log)",
           title="Gradient descent on airfoil linear regression: raw vs standardized features")
    ax.legend()
    fig.tight_layout()
    result.add_figure("normalization_gd.png", fig)
    raw, scaled = rows
    result.findings += [
        f"In raw units (frequency in Hz up to 20,000, thickness in metres) the condition number is {raw[3]:.3g}; "
        f"standardized it is {scaled[3]:.3g}.",
        f"Moving the optimal weights by 0.1% of their norm in a random direction raises the loss by {100 * raw[4]:.3g}% "
        f"in raw units and by {100 * scaled[4]:.3g}% standardized.",
        f"Gradient descent at lr = 1/lambda_max for the same number of epochs ends with a relative gap "
        f"(L - L*)/L* of {raw[6]:.3g} in raw units and {scaled[6]:.3g} standardized: each step shrinks the error "
        "along the flattest direction only by a factor 1 - 1/condition number.",
    ]
    result.numbers = numbers
    return result


def _deep_tanh_net(width: int, depth: int, in_features: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index in range(depth):
        layers += [nn.Linear(in_features if index == 0 else width, width), nn.Tanh()]
    return nn.Sequential(*layers)


def initialization(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "initialization", "Weight initialization: too small, too large, Xavier (activation statistics)",
        "CS231n Training Neural Networks II, recap: weight initialization",
        "What happens to the activations of a deep tanh network when the weights start too small or too large?")
    inputs, _ = get_task("digits-mlp").data("train")
    inputs = inputs.reshape(len(inputs), -1)
    inits = {"too small N(0, 1e-3^2)": "too-small", "too large N(0, 1)": "too-large", "Xavier": "xavier"}
    depth, width = 8, 256
    stats: dict[str, list[tuple[float, float]]] = {}
    activations_by_init: dict[str, list[np.ndarray]] = {}
    for label, init in inits.items():
        torch.manual_seed(0)
        net = initialize(_deep_tanh_net(width, depth, inputs.shape[1]), init)
        h, layers = inputs, []
        with torch.no_grad():
            for module in net:
                h = module(h)
                if isinstance(module, nn.Tanh):
                    layers.append(h.numpy().ravel())
        activations_by_init[label] = layers
        stats[label] = [(float(a.mean()), float(a.std())) for a in layers]
    fig, axes = plt.subplots(len(inits), depth, figsize=(2.0 * depth, 2.2 * len(inits)), sharey="row")
    for row, (label, layers) in enumerate(activations_by_init.items()):
        for layer, values in enumerate(layers):
            ax = axes[row, layer]
            ax.hist(values, bins=40, range=(-1, 1), color="C%d" % row)
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"layer {layer + 1}")
            if layer == 0:
                ax.set_ylabel(label, fontsize=8)
            if row == len(inits) - 1:
                ax.set_xlabel("tanh output")
    fig.suptitle(f"Activations of a {depth}-layer tanh net ({width} units) on the digits inputs")
    fig.tight_layout()
    result.add_figure("activation_histograms.png", fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in stats.items():
        ax.semilogy(range(1, depth + 1), [std for _, std in values], "o-", label=label)
    ax.set(xlabel="layer", ylabel="std of the activations (log)", title="Activation scale through the layers")
    ax.legend()
    fig.tight_layout()
    result.add_figure("activation_std.png", fig)
    result.tables.append(Table("std of the tanh outputs per layer", ["init", *[f"layer {i + 1}" for i in range(depth)]],
                               [[label, *[std for _, std in values]] for label, values in stats.items()]))
    saturated = {label: float(np.mean(np.abs(layers[-1]) > 0.99)) for label, layers in activations_by_init.items()}
    result.findings += [
        f"Too small: the std shrinks by ~1000x per layer ({stats['too small N(0, 1e-3^2)'][-1][1]:.2g} at layer {depth}): "
        "all activations become zero and so do the gradients of the weights.",
        f"Too large: {100 * saturated['too large N(0, 1)']:.0f}% of the last layer's units are saturated at ±1: the local "
        "gradient of tanh is ~0 there (vanishing gradients).",
        f"Xavier keeps the std of every layer between {min(s for _, s in stats['Xavier']):.2f} and "
        f"{max(s for _, s in stats['Xavier']):.2f}.",
    ]
    result.numbers = {label: [std for _, std in values] for label, values in stats.items()}
    return result


def overfitting(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "overfitting", "Training vs validation: optimization is not generalization",
        "D2L 11.1 Optimization and Deep Learning; CS231n recap",
        "The optimizer minimizes the training loss (empirical risk); what happens to the validation loss (risk)?")
    epochs = budget.epochs(100, 40)
    trace = train("adam:lr=0.003", get_task("digits-mlp", limit=150, hidden=256), epochs=epochs, batch_size=32)
    runs = [("adam lr 0.003, 150 training examples", trace)]
    result.add_figure("train_vs_val.png", partial(plot_train_vs_val, runs))
    val = [row["val_loss"] for row in trace.epochs]
    best_epoch = int(np.argmin(val))
    result.tables.append(Table("digits-mlp trained on 150 examples", ["", "epoch", "train loss", "val loss", "val accuracy"], [
        ["best validation", trace.epochs[best_epoch]["epoch"], trace.epochs[best_epoch]["train_loss"], val[best_epoch],
         trace.epochs[best_epoch]["val_metric"]],
        ["end", trace.epochs[-1]["epoch"], trace.epochs[-1]["train_loss"], val[-1], trace.epochs[-1]["val_metric"]]]))
    result.findings += [
        f"The training loss keeps falling to {trace.epochs[-1]['train_loss']:.2g}; the validation loss is lowest at "
        f"epoch {trace.epochs[best_epoch]['epoch']} ({val[best_epoch]:.3f}) and rises to {val[-1]:.3f} by the end.",
        "The optimizer did its job on the objective it was given; the gap is a generalization problem "
        "(more data, regularization, early stopping), not an optimization one.",
    ]
    result.numbers = {"best_epoch": trace.epochs[best_epoch]["epoch"], "best_val_loss": val[best_epoch],
                      "final_val_loss": val[-1], "final_train_loss": trace.epochs[-1]["train_loss"]}
    return result
