"""The engine evaluates a schedule-free optimizer at its average x (eval mode), not at y where it steps.

The hand computation runs the paper's recursion on airfoil-linear and digits-softmax with the full batch:
y_t = (1 - beta) z_t + beta x_t,  z_{t+1} = z_t - lr grad f(y_t),  x_{t+1} = (1 - c) x_t + c z_{t+1}
with c = 1 / (t + 1) (constant lr: every weight lr^2 is equal, so x is the plain mean of the z's).
"""

from __future__ import annotations

import torch

from optimlab.engine.ensembles import train_evaluated
from optimlab.engine.training import train
from optimlab.tasks import get_task

LR, BETA, STEPS = 0.05, 0.9, 6
SPEC = f"sf-sgd:lr={LR},momentum={BETA}"


def hand_iterates(task):
    """(x_T, y_T, [x_1..x_T]) by the recursion, from the engine's initial model (seed 0)."""
    torch.manual_seed(0)
    model = task.make_model()
    params = list(model.parameters())
    z = [p.detach().clone() for p in params]
    x = [p.detach().clone() for p in params]
    history = []
    for t in range(STEPS):
        y = [(1 - BETA) * zi + BETA * xi for zi, xi in zip(z, x)]
        with torch.no_grad():
            for p, value in zip(params, y):
                p.copy_(value)
        model.zero_grad()
        task.objective(model, *task.data("train")).backward()
        z = [zi - LR * p.grad for zi, p in zip(z, params)]
        c = 1 / (t + 1)
        x = [(1 - c) * xi + c * zi for xi, zi in zip(x, z)]
        history.append(x)
    y = [(1 - BETA) * zi + BETA * xi for zi, xi in zip(z, x)]
    return model, x, y, history


def loss_at(task, model, weights, split):
    with torch.no_grad():
        for p, value in zip(model.parameters(), weights):
            p.copy_(value)
    return task.evaluate(model, split)[0]


def test_epoch_rows_evaluate_the_average():
    task = get_task("airfoil-linear")
    trace = train(SPEC, task, batch_size="full", epochs=STEPS, max_steps=STEPS)
    model, x, y, _ = hand_iterates(task)
    at_x, at_y = loss_at(task, model, x, "train"), loss_at(task, model, y, "train")
    assert abs(at_x - at_y) > 1e-3 * abs(at_x)  # the test can tell x from y
    assert abs(trace.epochs[-1]["train_loss"] - at_x) <= 1e-5 * abs(at_x)


def test_test_metrics_and_swa_see_the_average():
    """train_end (test metrics) and step_end (the averager) run at x: SWA averages x_1..x_T."""
    task = get_task("digits-softmax")  # airfoil has no test split
    (trace,) = train_evaluated(SPEC, task, average="swa", batch_size="full", epochs=STEPS, max_steps=STEPS)
    model, x, _, history = hand_iterates(task)
    x_test = task.data("test")
    mean_x = [torch.stack(values).mean(0) for values in zip(*history)]

    def test_loss(weights):
        with torch.no_grad():
            for p, value in zip(model.parameters(), weights):
                p.copy_(value)
            return float(task.loss_fn(model(x_test[0]), x_test[1]))

    test = trace.meta["test"]
    assert abs(test["raw_loss"] - test_loss(x)) <= 1e-5 * test_loss(x)
    assert abs(test["swa_loss"] - test_loss(mean_x)) <= 1e-5 * test_loss(mean_x)


def test_reference_schedulefree_class_is_put_in_train_mode():
    """A factory returning the reference's class (which starts in eval mode) trains too."""
    import pytest

    schedulefree = pytest.importorskip("schedulefree")
    task = get_task("airfoil-linear")
    trace = train(lambda params: schedulefree.SGDScheduleFree(params, lr=LR, momentum=BETA), task,
                  batch_size="full", epochs=STEPS, max_steps=STEPS)
    model, x, _, _ = hand_iterates(task)
    at_x = loss_at(task, model, x, "train")
    assert abs(trace.epochs[-1]["train_loss"] - at_x) <= 1e-5 * abs(at_x)


def test_trajectory_records_the_average():
    """`optimlab trace`: on f = (x^2 + 10 y^2) / 2 each row is x_t of the recursion, not y_t."""
    from optimlab.engine.trajectory import run_trajectory

    trace = run_trajectory(f"sf-sgd:lr=0.05,momentum={BETA}", "quadratic:kappa=10", STEPS, start=[1.0, 1.0])
    curvature = torch.tensor([1.0, 10.0], dtype=torch.float64)
    z = x = torch.tensor([1.0, 1.0], dtype=torch.float64)
    for t in range(STEPS):
        y = (1 - BETA) * z + BETA * x
        z = z - 0.05 * curvature * y
        x = (1 - 1 / (t + 1)) * x + z / (t + 1)
        torch.testing.assert_close(torch.tensor(trace.steps[t + 1]["x"], dtype=torch.float64), x, rtol=1e-12, atol=1e-12)


def test_looking_at_the_average_does_not_move_the_run():
    """A callback that reads the weights every step (eval, then back to train) must leave the run
    exactly as it is without one: the swap restores y from a copy, not by an inverse lerp that
    rounds. (The interpolation back drifted the losses by 2e-7 in float32 over 4 epochs.)"""
    task = get_task("digits-mlp")
    seen = []
    plain = train("sf-adamw", task, epochs=2, seed=0)
    watched = train("sf-adamw", task, epochs=2, seed=0,
                    callbacks=[lambda event, state: seen.append(event)])
    assert seen.count("step_end") == len(plain.steps)
    assert [row["loss"] for row in watched.steps] == [row["loss"] for row in plain.steps]
    assert [row["train_loss"] for row in watched.epochs] == [row["train_loss"] for row in plain.epochs]
