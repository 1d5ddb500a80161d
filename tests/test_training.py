"""The training engine against independent references: least squares (torch.linalg.lstsq),
closed forms, scikit-learn's LogisticRegression; and the structure of its records."""

import math

import pytest
import torch

from optimlab.engine.training import train
from optimlab.tasks import get_task
from optimlab.trace import DIVERGED


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train fastest on one thread, and far faster on a shared, loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def least_squares_loss(task) -> float:
    """min over (w, b) of mean((Xw + b - y)^2) / 2, by torch.linalg.lstsq in float64."""
    x, y = task.split.x_train.double().flatten(1), task.split.y_train.double()
    design = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design, y.unsqueeze(1)).solution
    return 0.5 * ((design @ solution).squeeze(1) - y).pow(2).mean().item()


# D2L chapter 11 settings on airfoil: (spec, batch size, epochs)
BOOK_SETTINGS = [
    ("sgd:lr=1", "full", 10),  # gradient descent
    ("sgd:lr=0.005", 1, 1),  # SGD (the book runs 2 epochs; 1 keeps the test fast)
    ("sgd:lr=0.4", 100, 2),
    ("sgd:lr=0.05", 10, 2),
    ("momentum:lr=0.02,momentum=0.5", 10, 2),
    ("momentum:lr=0.01,momentum=0.9", 10, 2),
    ("nesterov:lr=0.01,momentum=0.9", 10, 2),
    ("adagrad:lr=0.1,eps=1e-6", 10, 2),
    ("rmsprop:lr=0.01,alpha=0.9,eps=1e-6", 10, 2),
    ("adam:lr=0.01", 10, 2),
]


@pytest.fixture(scope="module")
def airfoil():
    task = get_task("airfoil-linear")
    return task, least_squares_loss(task)


@pytest.mark.parametrize("spec, batch_size, epochs", BOOK_SETTINGS)
def test_airfoil_book_settings_reach_least_squares(airfoil, spec, batch_size, epochs):
    """With a constant lr the last minibatch iterate wanders in a noise ball around the optimum
    (momentum 0.9 most: its effective step is lr / (1 - 0.9)), so we take the median over 5 seeds."""
    task, optimum = airfoil
    seeds = [0] if batch_size == "full" else range(5)
    finals = []
    for seed in seeds:
        trace = train(spec, task, epochs=epochs, batch_size=batch_size, seed=seed)
        assert trace.meta["steps"] == epochs * math.ceil(1500 / (1500 if batch_size == "full" else batch_size))
        assert trace.epochs[0]["train_loss"] > 1.8 * optimum  # it did have to travel
        finals.append(trace.epochs[-1]["train_loss"])
    median = sorted(finals)[len(finals) // 2]
    assert optimum <= min(finals) * (1 + 1e-6)  # nobody beats least squares
    assert median < 1.04 * optimum, f"{spec}: median {median:.4f} vs optimum {optimum:.4f}"
    assert max(finals) < 1.10 * optimum, f"{spec}: worst seed {max(finals):.4f} vs optimum {optimum:.4f}"


def test_linear_regression_reaches_closed_form():
    """Heavy-ball momentum with Polyak's optimal constants for the Hessian's extreme eigenvalues
    (diabetes: condition number ~500) reaches the least-squares loss in a few hundred steps."""
    task = get_task("diabetes-linear", dtype=torch.float64)
    optimum = least_squares_loss(task)
    x = task.split.x_train
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    eigenvalues = torch.linalg.eigvalsh(design.T @ design / len(x))
    root_l, root_mu = eigenvalues.max().sqrt().item(), eigenvalues.min().sqrt().item()
    lr, momentum = 4 / (root_l + root_mu) ** 2, ((root_l - root_mu) / (root_l + root_mu)) ** 2
    trace = train(f"momentum:lr={lr},momentum={momentum}", task, epochs=600, batch_size="full")
    assert trace.epochs[-1]["train_loss"] == pytest.approx(optimum, rel=1e-7)


def softmax_optimum_from_sklearn(task) -> float:
    """Our objective evaluated at scikit-learn's LogisticRegression solution with the same penalty.

    sklearn minimizes C * sum_i CE_i + ||W||^2 / 2 (intercepts free); dividing by C n gives
    mean CE + l2/2 ||W||^2 with l2 = 1 / (C n): our task's objective.
    """
    from sklearn.linear_model import LogisticRegression

    x, y = task.split.x_train.flatten(1).numpy(), task.split.y_train.numpy()
    classifier = LogisticRegression(C=1.0 / (task.l2 * len(x)), tol=1e-10, max_iter=10000).fit(x, y)
    model = task.make_model()
    with torch.no_grad():
        model.linear.weight.copy_(torch.as_tensor(classifier.coef_))
        model.linear.bias.copy_(torch.as_tensor(classifier.intercept_))
    return task.evaluate(model, "train")[0]


LBFGS_SPEC = "lbfgs:max_iter=100,history_size=20,line_search_fn=strong_wolfe,tolerance_grad=1e-9,tolerance_change=1e-12"


def test_softmax_lbfgs_full_batch_reaches_sklearn_optimum():
    task = get_task("digits-softmax", dtype=torch.float64, l2=1e-3)
    reference = softmax_optimum_from_sklearn(task)
    trace = train(LBFGS_SPEC, task, epochs=10)  # closure optimizer: full batch by default
    assert trace.meta["batch_size"] == task.num_train and trace.meta["steps"] == 10
    assert abs(trace.epochs[-1]["train_loss"] - reference) < 1e-4


def test_engine_matches_torch_lbfgs_factory():
    """A factory ``params -> Optimizer`` works too (closure detected for torch.optim.LBFGS)."""
    task = get_task("wine-softmax", dtype=torch.float64, l2=1e-2)
    reference = softmax_optimum_from_sklearn(task)
    trace = train(lambda p: torch.optim.LBFGS(p, max_iter=100, line_search_fn="strong_wolfe",
                                              tolerance_grad=1e-10, tolerance_change=1e-14), task, epochs=5)
    assert abs(trace.epochs[-1]["train_loss"] - reference) < 1e-6


def test_newton_full_batch_solves_least_squares_in_one_step(airfoil):
    """The squared loss is quadratic: one exact Newton step lands on the lstsq solution."""
    task, optimum = airfoil
    trace = train("newton", task, epochs=1)  # closure optimizer: full batch by default
    assert trace.meta["batch_size"] == 1500 and trace.meta["steps"] == 1
    assert trace.epochs[-1]["train_loss"] == pytest.approx(optimum, rel=1e-5)


def test_minibatch_experiment_structure():
    """The notes' experiment: 10^5 rows, batch 1 / 64 / full: updates per epoch and loss vs time."""
    task = get_task("synthetic-linear:n=100000,d=10,noise=0.1", val_fraction=0.0)
    n = task.num_train
    runs = {1: train("sgd:lr=0.005", task, batch_size=1, epochs=1, max_steps=3000),
            64: train("sgd:lr=0.05", task, batch_size=64, epochs=1),
            "full": train("gd:lr=0.5", task, batch_size="full", epochs=3)}
    per_epoch = {size: trace.meta["steps_per_epoch"] for size, trace in runs.items()}
    assert per_epoch == {1: n, 64: math.ceil(n / 64), "full": 1}
    assert per_epoch["full"] < per_epoch[64] < per_epoch[1]
    assert runs[1].meta["steps"] == 3000 and runs[1].epochs[-1]["epoch"] == pytest.approx(3000 / n)
    for trace in runs.values():
        times = trace.column("time")
        assert all(b >= a for a, b in zip(times, times[1:])) and times[-1] > 0
        assert trace.epochs[-1]["train_loss"] < trace.epochs[0]["train_loss"]
        assert trace.epochs[-1]["time"] == pytest.approx(trace.meta["train_seconds"])


def test_rows_and_budgets():
    trace = train("sgd:lr=0.1", "wine-softmax", epochs=3, batch_size=50)
    assert [row["epoch"] for row in trace.epochs] == [0, 1, 2, 3]
    assert set(trace.steps[0]) == {"step", "epoch", "loss", "lr", "time"}
    assert set(trace.epochs[0]) == {"epoch", "step", "train_loss", "val_loss", "train_metric", "val_metric", "time", "lr"}
    assert trace.meta["steps"] == 9 and trace.steps[-1]["step"] == 9
    short = train("sgd:lr=0.1", "wine-softmax", epochs=3, batch_size=50, max_steps=4)
    assert short.meta["steps"] == 4 and short.epochs[-1]["epoch"] == pytest.approx(4 / 3)
    timed = train("sgd:lr=0.1", "wine-softmax", epochs=1000, batch_size=1, max_seconds=0.05)
    assert timed.meta["train_seconds"] < 1.0 and timed.meta["steps"] < 1000 * 142


def test_same_seed_same_run_and_schedule_applied_per_step():
    a = train("momentum", "wine-softmax", epochs=2, seed=3)
    b = train("momentum", "wine-softmax", epochs=2, seed=3)
    assert a.column("loss") == b.column("loss")
    c = train("sgd:lr=0.1", "wine-softmax", epochs=1, batch_size=16, schedule="exponential:gamma=0.5")
    assert c.column("lr")[:4] == [0.1, 0.05, 0.025, 0.0125]


def test_divergence_is_an_outcome():
    trace = train("sgd:lr=1000", "airfoil-linear", epochs=5, batch_size=10)
    assert trace.outcome == DIVERGED and trace.diverged_at is not None
    assert trace.meta["steps"] == trace.diverged_at < 5 * 150
    assert "diverged at step" in trace.outcome_text


def test_callbacks_see_state_and_may_add_keys():
    events = []

    def callback(event, state):
        events.append(event)
        assert state.model is not None and state.optimizer is not None and state.task.name == "wine-softmax"
        if event == "step_end":
            state.row["grad_norm"] = math.sqrt(sum(p.grad.pow(2).sum().item() for p in state.model.parameters()))
        if event == "epoch_end" and state.epoch >= 1:
            state.stop = True

    trace = train("sgd", "wine-softmax", epochs=5, batch_size=32, callbacks=[callback])
    assert events[0] == "epoch_end" and events[-1] == "train_end"
    assert all("grad_norm" in row for row in trace.steps) and trace.epochs[-1]["epoch"] == 1


def test_bad_input_is_one_line_value_error():
    with pytest.raises(ValueError, match="batch size 'half'"):
        train("sgd", "wine-softmax", batch_size="half")
    with pytest.raises(ValueError, match="epochs=-1"):
        train("sgd", "wine-softmax", epochs=-1)
    with pytest.raises(ValueError, match="unknown optimizer"):
        train("sgdd", "wine-softmax")


def test_engine_run_dispatches_task_names_to_train():
    from optimlab.engine import run

    trace = run("sgd", "wine-softmax", epochs=1)
    assert trace.problem == "wine-softmax" and trace.meta["steps"] == math.ceil(142 / 16)
