"""D2L chapter 11 on small landscapes: gradient descent, Newton, noisy SGD with decay, momentum, adaptive steps."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from ..optim.rules import effective_window
from ..report.landscape import plot_traces
from .context import Budget, final_point, notes_line, trajectories
from .page import ExperimentResult, Table

LR_CASES = {0.2: "converges", 0.05: "too small: slow", 1.1: "too large: diverges"}


def gradient_descent(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "gd", "Gradient descent: the learning rate, local minima, two dimensions",
        "D2L 11.3 Gradient Descent",
        "How does the learning rate decide whether gradient descent converges, crawls or diverges, "
        "and what happens on a non-convex function?")
    specs = [f"gd:lr={lr}" for lr in LR_CASES]
    traces = trajectories("square", specs, 10, start=[10.0])
    rows = []
    for (lr, verdict), trace in zip(LR_CASES.items(), traces):
        result.print_line(f"gd lr={lr}: {notes_line(trace)}")
        closed_form = 10.0 * (1 - 2 * lr) ** 10
        rows.append([lr, final_point(trace)[0], closed_form, verdict, trace.outcome_text])
    result.tables.append(Table("f(x) = x^2 from x0 = 10, 10 steps: x_k = (1 - 2 lr)^k x0",
                               ["lr", "x_10", "closed form", "expected", "outcome"], rows))
    result.add_figure("gd_lr.png", plot_traces(traces, title="Gradient descent on x^2: lr 0.2, 0.05, 1.1"))

    c = 0.15 * math.pi
    local = trajectories(f"xcos:c={c}", ["gd:lr=2"], 10, start=[10.0])[0]
    result.print_line(f"gd lr=2 on x*cos({0.15:g}*pi*x): {notes_line(local)}")
    result.add_figure("gd_local_minimum.png", plot_traces([local], title="x*cos(0.15*pi*x), lr 2: stuck in a local minimum"))

    bowl = trajectories("bowl", ["gd:lr=0.1"], 20, start=[-5.0, -2.0])[0]
    result.print_line(f"gd lr=0.1 on x1^2 + 2*x2^2: {notes_line(bowl)}")
    result.add_figure("gd_2d.png", plot_traces([bowl], title="Gradient descent on x1^2 + 2*x2^2, lr 0.1"))
    result.findings += [
        f"lr 0.2 contracts x by |1 - 2*lr| = 0.6 per step: x_10 = {final_point(traces[0])[0]:.6f}, the closed form.",
        f"lr 0.05 contracts by only 0.9 per step: after 10 steps x is still {final_point(traces[1])[0]:.3f}.",
        f"lr 1.1 overshoots: |1 - 2.2| = 1.2 > 1, so |x| grows to {abs(final_point(traces[2])[0]):.1f}.",
        f"On x*cos(0.15*pi*x) a large lr lands in a local minimum at x = {final_point(local)[0]:.4f}, "
        f"f = {local.steps[-1]['f']:.3f}, not the global one.",
        f"In 2-D the x2 direction (curvature 4) converges faster than x1 (curvature 2): {notes_line(bowl)}.",
    ]
    result.numbers = {"x10": {str(lr): final_point(t)[0] for lr, t in zip(LR_CASES, traces)},
                      "local_minimum_x": final_point(local)[0], "bowl_final": final_point(bowl)}
    return result


def newton(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "newton", "Newton's method: exact on cosh, wrong way on a non-convex function",
        "D2L 11.3.3 Multivariate Gradient Descent / Newton's Method",
        "Newton's method uses the Hessian to pick the step; what happens where the Hessian is negative?")
    cosh = trajectories("cosh:c=0.5", ["newton:mode=plain"], 10, start=[10.0])[0]
    c = 0.15 * math.pi
    wrong, damped = trajectories(f"xcos:c={c}", ["newton:mode=plain", "newton:mode=plain,lr=0.5"], 10, start=[10.0])
    safe = trajectories(f"xcos:c={c}", ["newton"], 10, start=[10.0])[0]
    for label, trace in (("cosh(0.5x)", cosh), ("x*cos(0.15*pi*x)", wrong),
                         ("x*cos(0.15*pi*x), lr 0.5", damped), ("x*cos(0.15*pi*x), saddle-free", safe)):
        result.print_line(f"newton on {label}: {notes_line(trace)}")
    result.tables.append(Table("Newton from x0 = 10, 10 steps", ["function", "variant", "x_10", "f(x_10)", "outcome"], [
        ["cosh(0.5x)", "plain", final_point(cosh)[0], cosh.steps[-1]["f"], cosh.outcome_text],
        ["x*cos(0.15*pi*x)", "plain", final_point(wrong)[0], wrong.steps[-1]["f"], wrong.outcome_text],
        ["x*cos(0.15*pi*x)", "plain, lr 0.5", final_point(damped)[0], damped.steps[-1]["f"], damped.outcome_text],
        ["x*cos(0.15*pi*x)", "saddle-free (default)", final_point(safe)[0], safe.steps[-1]["f"], safe.outcome_text],
    ]))
    result.add_figure("newton_cosh.png", plot_traces([cosh], title="Newton on cosh(0.5x): converges in a few steps"))
    result.add_figure("newton_xcos.png", plot_traces([wrong, damped, safe], title="Newton on x*cos(0.15*pi*x)"))
    result.findings += [
        f"On the convex cosh(0.5x) Newton reaches x = {final_point(cosh)[0]:.2g} in 10 steps (quadratic convergence).",
        f"On x*cos(0.15*pi*x) the plain step -f'/f'' follows a negative f'' uphill: x_10 = {final_point(wrong)[0]:.4f} "
        f"(f = {wrong.steps[-1]['f']:.2f}), a maximum-seeking iterate.",
        f"A learning rate of 0.5 changes where it ends (x_10 = {final_point(damped)[0]:.4f}) but not the cause.",
        f"optimlab's default (saddle-free: |eigenvalues| of the Hessian) always descends: x_10 = {final_point(safe)[0]:.4f}, "
        f"f = {safe.steps[-1]['f']:.2f}.",
    ]
    result.numbers = {"cosh_x10": final_point(cosh)[0], "xcos_plain_x10": final_point(wrong)[0],
                      "xcos_lr05_x10": final_point(damped)[0], "xcos_saddle_free_x10": final_point(safe)[0]}
    return result


def sgd_noise(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "sgd-noise", "SGD with noisy gradients: constant lr vs exponential vs polynomial decay",
        "D2L 11.4 Stochastic Gradient Descent",
        "With noisy gradients a constant lr keeps the iterate bouncing; does decaying it help?")
    seeds = range(budget.count(10, 3))
    schedules = {"constant": None, "exponential e^(-0.1t)": f"exponential:gamma={math.exp(-0.1)}",
                 "polynomial (1+0.1t)^-0.5": "inverse_time:k=0.1,power=0.5"}
    rows, shown = [], []
    for label, schedule in schedules.items():
        finals = []
        for seed in seeds:
            trace = trajectories("bowl", ["sgd:lr=0.1"], 50, start=[-5.0, -2.0], noise=1.0, seed=seed,
                                 schedule=schedule)[0]
            trace.optimizer = f"sgd lr 0.1, {label}"
            finals.append(trace.steps[-1]["f"])
            if seed == 0:
                shown.append(trace)
                result.print_line(f"{label}: {notes_line(trace)}")
        rows.append([label, float(np.mean(finals)), float(np.std(finals)), len(finals)])
    result.tables.append(Table("f(x) after 50 noisy steps (N(0,1) gradient noise), mean and std over seeds",
                               ["schedule", "mean f", "std f", "seeds"], rows))
    result.add_figure("sgd_noise.png", plot_traces(shown, title="SGD with gradient noise on x1^2 + 2*x2^2 (seed 0)"))
    best = min(rows, key=lambda row: row[1])
    result.findings += [
        f"Constant lr 0.1 keeps bouncing around the minimum: mean f = {rows[0][1]:.3f} after 50 steps.",
        f"Exponential decay shrinks the steps too fast and stops short of the minimum: mean f = {rows[1][1]:.3f}.",
        f"Polynomial decay (1 + 0.1t)^-0.5 keeps moving while damping the noise: mean f = {rows[2][1]:.3f}.",
        f"Best here: {best[0]}.",
    ]
    result.numbers = {row[0]: {"mean_f": row[1], "std_f": row[2]} for row in rows}
    return result


def momentum(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "momentum", "Momentum on the ill-conditioned valley 0.1*x1^2 + 2*x2^2",
        "D2L 11.6 Momentum",
        "Why does gradient descent fail on an ill-conditioned problem, and how does a velocity fix it?")
    specs = ["gd:lr=0.4", "gd:lr=0.6", "momentum:lr=0.6,momentum=0.5", "momentum:lr=0.6,momentum=0.25"]
    traces = trajectories("valley", specs, 20, start=[-5.0, -2.0])
    for trace in traces:
        result.print_line(f"{trace.optimizer}: {notes_line(trace)}")
    result.tables.append(Table("20 steps from (-5, -2)", ["optimizer", "x1", "x2", "f", "outcome"],
                               [[t.optimizer, *final_point(t), t.steps[-1]["f"], t.outcome_text] for t in traces]))
    result.add_figure("momentum_valley.png", plot_traces(traces, title="GD vs momentum on 0.1*x1^2 + 2*x2^2"))
    betas = [0.95, 0.9, 0.6, 0.0]
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = np.arange(40)
    for beta in betas:
        ax.plot(steps, beta**steps, label=f"beta = {beta:.2f} (window 1/(1-beta) = {effective_window(beta):.0f})")
    ax.set(xlabel="age of the gradient (steps)", ylabel="weight beta^t", title="Momentum as a leaky average of past gradients")
    ax.legend()
    fig.tight_layout()
    result.add_figure("momentum_weights.png", fig)
    result.tables.append(Table("Effective window of the velocity", ["beta", "1/(1-beta)"],
                               [[beta, effective_window(beta)] for beta in betas]))
    result.findings += [
        f"GD with lr 0.4 is stable but crawls along x1 (curvature 0.2): x1 = {final_point(traces[0])[0]:.6f} after 20 steps.",
        f"GD with lr 0.6 exceeds 2/4 = 0.5, the stability limit of x2 (curvature 4): x2 = {final_point(traces[1])[1]:.1f}.",
        f"Momentum 0.5 at the same lr 0.6 averages the oscillating x2 gradients away: "
        f"({final_point(traces[2])[0]:.6f}, {final_point(traces[2])[1]:.6f}).",
        f"Momentum 0.25 (window {effective_window(0.25):.2f} steps) damps less: "
        f"({final_point(traces[3])[0]:.6f}, {final_point(traces[3])[1]:.6f}).",
    ]
    result.numbers = {t.optimizer: final_point(t) for t in traces}
    return result


def adaptive(budget: Budget) -> ExperimentResult:
    result = ExperimentResult(
        "adaptive", "AdaGrad, RMSProp and Adam on the valley",
        "D2L 11.7 AdaGrad, 11.8 RMSProp, 11.10 Adam",
        "Per-coordinate step sizes: how do AdaGrad's shrinking steps, RMSProp's leaky average and Adam compare?")
    # eps inside the sqrt with eps = 1e-6, as D2L's code: the printed numbers match the book's digits
    d2l = "eps=1e-6,eps_inside_sqrt=true"
    specs = [f"adagrad:lr=0.4,{d2l}", f"adagrad:lr=2,{d2l}", f"rmsprop:lr=0.4,alpha=0.9,{d2l}", "adam:lr=0.4"]
    traces = trajectories("valley", specs, 20, start=[-5.0, -2.0])
    for trace in traces:
        result.print_line(f"{trace.optimizer}: {notes_line(trace)}")
    result.tables.append(Table("20 steps from (-5, -2)", ["optimizer", "x1", "x2", "f"],
                               [[t.optimizer, *final_point(t), t.steps[-1]["f"]] for t in traces]))
    result.add_figure("adaptive_valley.png", plot_traces(traces, title="AdaGrad, RMSProp, Adam on 0.1*x1^2 + 2*x2^2"))
    long = trajectories("valley", [specs[0], specs[2]], 200, start=[-5.0, -2.0])
    fig, ax = plt.subplots(figsize=(7, 4))
    lengths = {}
    for trace in long:
        points = np.array([row["x"] for row in trace.steps])
        lengths[trace.optimizer] = np.linalg.norm(np.diff(points, axis=0), axis=1)
        ax.semilogy(np.arange(1, len(points)), lengths[trace.optimizer], label=trace.optimizer)
    ax.set(xlabel="step", ylabel="step length ||x_t - x_{t-1}||", title="AdaGrad's steps shrink; RMSProp's stay of order lr")
    ax.legend()
    fig.tight_layout()
    result.add_figure("adaptive_step_size.png", fig)
    result.findings += [
        f"AdaGrad lr 0.4 slows down as squared gradients pile up: x1 = {final_point(traces[0])[0]:.6f} after 20 steps.",
        f"AdaGrad lr 2 compensates: x1 = {final_point(traces[1])[0]:.6f}.",
        f"RMSProp (gamma 0.9) forgets old gradients and keeps its step: x1 = {final_point(traces[2])[0]:.6f}.",
        f"Over 200 steps AdaGrad's step shrinks to {lengths[long[0].optimizer][-1]:.2g}; RMSProp's does not stall but, "
        f"at a constant lr, does not settle either: as g -> 0 its average s -> 0 too, g/sqrt(s) stays near +-1, and it "
        f"jitters around the minimum with steps of {np.mean(lengths[long[1].optimizer][-50:]):.2g} (lr = 0.4) over the "
        "last 50 steps, one reason to decay its lr.",
        f"Adam lr 0.4 ends at ({final_point(traces[3])[0]:.4f}, {final_point(traces[3])[1]:.4f}); "
        "with lr this large its momentum overshoots before settling.",
    ]
    result.numbers = {t.optimizer: final_point(t) for t in traces}
    return result
