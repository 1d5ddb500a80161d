"""`optimlab reproduce`: the notes' experiments, one command each.

Every experiment is a function ``(budget) -> ExperimentResult``; :func:`run_experiment` times it
and writes its figures, printed numbers and one page (Markdown and HTML) under ``out/<name>/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import cs231n_landscapes, d2l_landscapes, ensembles, training_scenes
from .context import Budget
from .page import ExperimentResult, write_result


@dataclass(frozen=True)
class Experiment:
    name: str
    summary: str
    run: Callable[[Budget], ExperimentResult]


def _momentum(budget: Budget) -> ExperimentResult:
    result = d2l_landscapes.momentum(budget)
    training_scenes.airfoil_optimizers(result, [
        ("momentum lr 0.02, beta 0.5", "momentum:lr=0.02,momentum=0.5"),
        ("momentum lr 0.01, beta 0.9", "momentum:lr=0.01,momentum=0.9"),
        ("momentum lr 0.005, beta 0.9", "momentum:lr=0.005,momentum=0.9")], "momentum_airfoil.png")
    return result


def _adaptive(budget: Budget) -> ExperimentResult:
    result = d2l_landscapes.adaptive(budget)
    training_scenes.airfoil_optimizers(result, [
        ("AdaGrad lr 0.1", "adagrad:lr=0.1"), ("RMSProp lr 0.01, gamma 0.9", "rmsprop:lr=0.01,alpha=0.9"),
        ("Adam lr 0.01", "adam:lr=0.01")], "adaptive_airfoil.png")
    return result


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    Experiment("gd", "gradient descent on x^2 (lr 0.2 / 0.05 / 1.1), x*cos(cx), x1^2 + 2*x2^2", d2l_landscapes.gradient_descent),
    Experiment("newton", "Newton's method on cosh(cx) and x*cos(cx), with and without a learning rate", d2l_landscapes.newton),
    Experiment("sgd-noise", "SGD with gradient noise: constant vs exponential vs polynomial decay", d2l_landscapes.sgd_noise),
    Experiment("minibatch", "GD vs SGD vs minibatch 10 / 100 on airfoil: loss vs seconds", training_scenes.minibatch),
    Experiment("momentum", "GD vs momentum on 0.1*x1^2 + 2*x2^2; effective window 1/(1-beta); airfoil", _momentum),
    Experiment("adaptive", "AdaGrad, RMSProp, Adam on the valley and on airfoil", _adaptive),
    Experiment("cs231n-sgd-problems", "zig-zag, saddle, noise, local minimum: SGD vs momentum", cs231n_landscapes.sgd_problems),
    Experiment("cs231n-optimizers", "SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam on Rosenbrock", cs231n_landscapes.optimizer_zoo),
    Experiment("adam-bias-correction", "Adam's first steps without and with bias correction", cs231n_landscapes.adam_bias_correction),
    Experiment("lr-decay", "step / exponential / 1/t decay vs constant lr for SGD on digits", training_scenes.lr_decay),
    Experiment("lbfgs-batch", "L-BFGS full batch vs minibatch on softmax regression", training_scenes.lbfgs_batch),
    Experiment("ensembles", "seed ensembles, snapshot ensembles with cyclic lr, EMA/SWA averaging", ensembles.ensembles),
    Experiment("normalization", "standardized vs raw features: condition number, sensitivity, GD", training_scenes.normalization),
    Experiment("initialization", "too small / too large / Xavier init: activations per layer", training_scenes.initialization),
    Experiment("overfitting", "training vs validation loss on a small training set", training_scenes.overfitting),
]}


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)} (or 'all')") from None


def run_experiment(name: str, out_dir: str | Path, budget: Budget = Budget()) -> tuple[ExperimentResult, Path]:
    """Run one experiment and write its page; returns the result and its folder."""
    experiment = get_experiment(name)
    started = time.perf_counter()
    result = experiment.run(budget)
    result.seconds = time.perf_counter() - started
    return result, write_result(result, Path(out_dir))


def write_index(results: list[tuple[ExperimentResult, Path]], out_dir: str | Path) -> Path:
    """An index.html / index.md linking every experiment's page."""
    out_dir = Path(out_dir)
    lines = ["# optimlab reproduce", ""] + [
        f"- [{r.title}]({folder.name}/index.md): {r.findings[0] if r.findings else ''}" for r, folder in results]
    (out_dir / "index.md").write_text("\n".join(lines) + "\n")
    items = "".join(f"<li><a href='{folder.name}/index.html'>{r.title}</a> ({r.seconds:.0f} s)</li>" for r, folder in results)
    (out_dir / "index.html").write_text(f"<!doctype html><meta charset='utf-8'><title>optimlab reproduce</title>"
                                        f"<body style='font-family:system-ui;max-width:900px;margin:2em auto'>"
                                        f"<h1>optimlab reproduce</h1><ul>{items}</ul></body>")
    return out_dir / "index.html"


__all__ = ["EXPERIMENTS", "Experiment", "Budget", "get_experiment", "run_experiment", "write_index"]
