"""CS231n "Training Neural Networks II" on landscapes: SGD's three problems, the optimizer zoo, Adam's bias correction."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..engine.trajectory import steps_to_tolerance
from ..optim import rules
from ..report.landscape import plot_traces
from .context import Budget, final_point, trajectories
from .page import ExperimentResult, Table

ZOO = ["sgd:lr=0.001", "momentum:lr=0.001,momentum=0.9", "nesterov:lr=0.001,momentum=0.9",
       "adagrad:lr=1", "rmsprop:lr=0.003,alpha=0.99", "adam:lr=0.05"]


def sgd_problems(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "cs231n-sgd-problems", "What goes wrong with SGD: zig-zag, saddle points, noisy gradients",
        "CS231n Training Neural Networks II, Problems with SGD",
        "Why does plain SGD zig-zag on a high condition number, crawl near a saddle, and wander with noise, "
        "and what does momentum change?")
    # SGD at its best lr 2/(L+mu); momentum at the tuned lr 4/(sqrt(L)+sqrt(mu))^2 and beta ((sqrt(k)-1)/(sqrt(k)+1))^2
    zigzag = trajectories("quadratic:kappa=50", ["sgd:lr=0.039", "momentum:lr=0.06,momentum=0.57"], 250, start=[-5.0, -1.0])
    result.add_figure("zigzag.png", plot_traces(zigzag, title="Condition number 50: SGD at its best lr zig-zags; tuned momentum converges 5x faster"))
    saddle = trajectories("saddle", ["sgd:lr=0.05", "momentum:lr=0.05,momentum=0.9"], 100, start=[-1.5, 1e-3])
    result.add_figure("saddle.png", plot_traces(saddle, title="x^2 - y^2 from (-1.5, 0.001): escaping the saddle"))
    noisy = trajectories("bowl", ["sgd:lr=0.05", "momentum:lr=0.05,momentum=0.9"], 100, start=[-5.0, -2.0],
                         noise=2.0, seed=0)
    result.add_figure("noise.png", plot_traces(noisy, title="Gradient noise N(0, 2^2) on x1^2 + 2*x2^2"))
    local = trajectories("xcos:c=3.1416", ["sgd:lr=0.02", "momentum:lr=0.02,momentum=0.9"], 100, start=[-1.0])
    result.add_figure("local_minimum.png", plot_traces(local, title="x*cos(pi*x) from -1: local minimum vs momentum"))

    def escape_step(trace) -> int | None:  # first step with |y| > 1: the iterate has left the saddle
        return next((row["step"] for row in trace.steps if abs(row["x"][1]) > 1.0), None)

    f_star = 0.0
    rows = [
        ["zig-zag (kappa 50)", t.optimizer, steps_to_tolerance(t, 1e-6, f_star), t.steps[-1]["f"]] for t in zigzag
    ] + [["saddle x^2 - y^2", t.optimizer, escape_step(t), t.steps[-1]["f"]] for t in saddle] + [
        ["noisy bowl", t.optimizer, None, float(np.mean([r["f"] for r in t.steps[-20:]]))] for t in noisy
    ] + [["x*cos(pi*x)", t.optimizer, None, t.steps[-1]["f"]] for t in local]
    result.tables.append(Table("Each scene, SGD vs momentum", ["scene", "optimizer", "steps (to f<1e-6 / to leave saddle)",
                                                              "final f (noisy: mean of last 20)"], rows))
    result.findings += [
        f"Condition number 50: SGD needs lr < 2/50 for the steep direction and then crawls along the flat one "
        f"(rate (kappa-1)/(kappa+1) = 0.96 per step); at its best lr it reaches f < 1e-6 in "
        f"{steps_to_tolerance(zigzag[0], 1e-6, f_star)} steps, tuned momentum (rate (sqrt(kappa)-1)/(sqrt(kappa)+1) "
        f"= 0.75) in {steps_to_tolerance(zigzag[1], 1e-6, f_star)}.",
        f"Near the saddle the gradient along y is tiny: y grows only by 1 + 2*lr = 1.1 per step, so SGD leaves it "
        f"(|y| > 1) at step {escape_step(saddle[0])} (closed form: 73); momentum at step {escape_step(saddle[1])}.",
        f"x*cos(pi*x) from -1: SGD ends at x = {final_point(local[0])[0]:.3f} (f = {local[0].steps[-1]['f']:.3f}), "
        f"momentum at x = {final_point(local[1])[0]:.3f} (f = {local[1].steps[-1]['f']:.3f}).",
    ]
    result.numbers = {"rows": rows}
    return result


def optimizer_zoo(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "cs231n-optimizers", "SGD vs momentum vs Nesterov vs AdaGrad vs RMSProp vs Adam on Rosenbrock",
        "CS231n Training Neural Networks II, the optimizer animations",
        "How do the six optimizers of the lecture move through a curved, ill-conditioned valley?")
    steps = budget.count(2000, 500)
    specs = [*ZOO, *budget.also]  # the lecture's six first: the findings below name them by position
    traces = trajectories("rosenbrock", specs, steps, start=[-1.5, 2.0])
    rows = [[t.optimizer, *final_point(t), t.steps[-1]["f"], steps_to_tolerance(t, 1e-4, 0.0), t.outcome_text]
            for t in traces]
    result.tables.append(Table(f"Rosenbrock from (-1.5, 2), {steps} steps", ["optimizer", "x", "y", "f",
                                                                             "steps to f < 1e-4", "outcome"], rows))
    result.add_figure("zoo_rosenbrock.png", plot_traces(traces, title=f"{len(traces)} optimizers on Rosenbrock"))
    best = min(rows, key=lambda row: row[3])
    result.findings += [
        f"At lr 0.001 (Nesterov already diverges at 0.0015 from this start) plain SGD ends at f = {rows[0][3]:.3g} "
        f"({rows[0][5]}); momentum and Nesterov reach f < 1e-4 in {rows[1][4]} and {rows[2][4]} steps.",
        f"Lowest final f here: {best[0]} (f = {best[3]:.3g}).",
        "The adaptive methods rescale each coordinate, so they take the bend of the valley with one lr for both axes.",
    ]
    result.numbers = {row[0]: {"final": row[1:3], "f": row[3], "steps_to_1e-4": row[4]} for row in rows}
    return result


def _adam_steps(bias_corrected: bool, steps: int, lr: float = 0.1) -> np.ndarray:
    """Drive rules.adam_ directly on f = 0.1*x1^2 + 2*x2^2: the iterates, from (-5, -2)."""
    x = torch.tensor([-5.0, -2.0], dtype=torch.float64)
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    points = [x.clone()]
    for t in range(1, steps + 1):
        grad = torch.tensor([0.2, 4.0], dtype=torch.float64) * x
        rules.adam_(x, grad, m, v, None, lr=lr, beta1=0.9, beta2=0.999, eps=1e-8, step=t, amsgrad=False,
                    bias_corrected=bias_corrected)
        points.append(x.clone())
    return torch.stack(points).numpy()


def adam_bias_correction(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "adam-bias-correction", "Adam without and with bias correction: the huge first step",
        "CS231n Training Neural Networks II, Adam (full form)",
        "The moments start at zero; what does that do to the first steps, and how does bias correction fix it?")
    steps = 30
    raw, corrected = _adam_steps(False, steps), _adam_steps(True, steps)
    length_raw = np.abs(np.diff(raw, axis=0))
    length_corrected = np.abs(np.diff(corrected, axis=0))
    predicted = 0.1 * (1 - 0.9) / np.sqrt(1 - 0.999)
    for t in (1, 2, 5, 10):
        result.print_line(f"step {t}: |dx1| without correction {length_raw[t - 1, 0]:.4f}, with {length_corrected[t - 1, 0]:.4f}")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(range(1, steps + 1), length_raw[:, 0], "o-", label="no bias correction")
    ax.plot(range(1, steps + 1), length_corrected[:, 0], "s-", label="bias corrected (Adam)")
    ax.axhline(0.1, color="gray", ls="--", label="lr = 0.1")
    ax.set(xlabel="step t", ylabel="|x1_t - x1_{t-1}|", title="Adam's step along x1 on 0.1*x1^2 + 2*x2^2 (lr 0.1)")
    ax.legend()
    fig.tight_layout()
    result.add_figure("adam_first_steps.png", fig)
    result.tables.append(Table("First step along x1", ["variant", "step length", "in units of lr"], [
        ["no correction", length_raw[0, 0], length_raw[0, 0] / 0.1],
        ["bias corrected", length_corrected[0, 0], length_corrected[0, 0] / 0.1],
        ["(1-beta1)/sqrt(1-beta2) * lr", predicted, predicted / 0.1]]))
    result.findings += [
        f"Without correction m_1 = 0.1 g and v_1 = 0.001 g^2, so the first step is lr * 0.1/sqrt(0.001) = "
        f"{predicted / 0.1:.2f} lr: measured {length_raw[0, 0] / 0.1:.2f} lr.",
        f"With the corrections m_1/(1-0.9) = g and v_1/(1-0.999) = g^2: the first step is lr * sign(g), "
        f"measured {length_corrected[0, 0] / 0.1:.3f} lr.",
        "The uncorrected step shrinks as v builds up; it is too large early on, exactly when the gradients "
        "of a fresh network are least reliable.",
    ]
    result.numbers = {"first_step_raw": float(length_raw[0, 0]), "first_step_corrected": float(length_corrected[0, 0]),
                      "predicted_raw": float(predicted)}
    return result
