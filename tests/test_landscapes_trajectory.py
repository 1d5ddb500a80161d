"""run_trajectory against closed forms, D2L's printed numbers, torch.optim, and the outcome rules."""

import math

import pytest
import torch

from optimlab.engine import run
from optimlab.engine.trajectory import (LOCAL_MINIMUM, STALLED_AT_SADDLE, distance_to_nearest_minimum,
                                        run_trajectory, steps_to_tolerance)
from optimlab.landscapes import LANDSCAPES, get_landscape
from optimlab.optim import registry
from optimlab.trace import Trace


def test_rows_have_the_documented_columns_and_row_zero_is_the_start():
    trace = run_trajectory("gd:lr=0.1", "bowl", 5)
    assert [row["step"] for row in trace.steps] == list(range(6))
    assert trace.steps[0] == {"step": 0, "x": [-5.0, -2.0], "f": 33.0, "grad_norm": math.hypot(10, 8),
                              "lr": None, "time": 0.0}
    times = trace.column("time")
    assert all(b >= a for a, b in zip(times, times[1:]))
    assert trace.problem == "bowl" and trace.optimizer == "gd:lr=0.1"
    assert Trace.from_json(trace.to_json()) == trace


def test_d2l_gd_on_x_squared():
    """D2L 11.3.1: f(x) = x^2 from x = 10, eta = 0.2, 10 epochs prints 'epoch 10, x: 0.060466'."""
    trace = run_trajectory("gd:lr=0.2", "square", 10)
    assert f"{trace.steps[-1]['x'][0]:f}" == "0.060466"


def test_d2l_gd_on_the_2d_bowl():
    """D2L 11.3.2: x1^2 + 2*x2^2 from (-5, -2), eta = 0.1, 20 epochs: 'epoch 20, x1: -0.057646, x2: -0.000073'."""
    x1, x2 = run_trajectory("gd:lr=0.1", "bowl", 20).steps[-1]["x"]
    assert (f"{x1:f}", f"{x2:f}") == ("-0.057646", "-0.000073")


@pytest.mark.parametrize("spec, printed", [
    ("gd:lr=0.4", "epoch 20, x1: -0.943467, x2: -0.000073"),               # D2L 11.6.1
    ("gd:lr=0.6", "epoch 20, x1: -0.387814, x2: -1673.365109"),            # D2L 11.6.1: diverging in x2
    ("momentum:lr=0.6,momentum=0.5", "epoch 20, x1: 0.007188, x2: 0.002553"),   # D2L 11.6.2
    ("momentum:lr=0.6,momentum=0.25", "epoch 20, x1: -0.126340, x2: -0.186632"),
    ("adagrad:lr=2", "epoch 20, x1: -0.002295, x2: -0.000000"),            # D2L 11.7
])
def test_d2l_printed_runs_on_the_valley(spec, printed):
    """D2L's train_2d on f = 0.1*x1^2 + 2*x2^2 from (-5, -2), 20 steps, printed to 6 decimals."""
    x1, x2 = run_trajectory(spec, "valley", 20).steps[-1]["x"]
    assert f"epoch 20, x1: {x1:f}, x2: {x2:f}" == printed


@pytest.mark.parametrize("spec, d2l_x1", [("adagrad:lr=0.4", -2.382563), ("rmsprop:lr=0.4,alpha=0.9", -0.010599)])
def test_d2l_adaptive_runs_up_to_the_eps_convention(spec, d2l_x1):
    """D2L puts eps = 1e-6 inside the square root, torch (and optimlab) 1e-10 / 1e-8 outside: the last
    printed digit may differ (D2L 11.7 AdaGrad, 11.8 RMSProp)."""
    x1 = run_trajectory(spec, "valley", 20).steps[-1]["x"][0]
    assert x1 == pytest.approx(d2l_x1, abs=2e-6)


@pytest.mark.parametrize("lr, outcome", [(0.2, "converged"), (0.05, "still descending (slow)"), (1.1, "diverged")])
def test_gd_on_x_squared_follows_the_closed_form(lr, outcome):
    """x_k = (1 - 2 lr)^k x_0: converges fast (0.2), slowly (0.05: not within tol after 50 steps), or diverges."""
    trace = run_trajectory(f"gd:lr={lr}", "square", 50, tol=1e-6)
    for row in trace.steps:
        assert row["x"][0] == pytest.approx((1 - 2 * lr) ** row["step"] * 10.0, rel=1e-12)
    assert trace.outcome == outcome
    if outcome == "diverged":
        # has_diverged: f > 1e6 * f(x_0) = 1e8, i.e. 10 * 1.2^k > 1e4, first at k = ceil(log(1000)/log(1.2)).
        assert trace.diverged_at == math.ceil(math.log(1000) / math.log(1.2)) == 38
        assert trace.outcome_text == "diverged at step 38"
    if outcome == "converged":  # f_k = 100 * 0.36^k <= 1e-6 first at k = ceil(log(1e-8)/log(0.36))
        assert steps_to_tolerance(trace, 1e-6, 0.0) == math.ceil(math.log(1e-8) / math.log(0.36))
    if outcome == "still descending (slow)":
        assert trace.steps[-1]["f"] == pytest.approx(100 * 0.81**50)


def test_momentum_needs_fewer_steps_than_gd_on_an_ill_conditioned_quadratic():
    """kappa = 100, lr = 0.015 for both: GD's slow mode contracts by 1 - lr = 0.985 per step,
    heavy ball (mu = 0.8) by about sqrt(mu) ~ 0.894."""
    steps = {}
    for spec in ("gd:lr=0.015", "momentum:lr=0.015,momentum=0.8"):
        trace = run_trajectory(spec, "quadratic:kappa=100", 2000, start=(-5.0, -2.0), tol=1e-8)
        assert trace.outcome == "converged"
        steps[spec] = steps_to_tolerance(trace, 1e-8, 0.0)
    gd, momentum = steps["gd:lr=0.015"], steps["momentum:lr=0.015,momentum=0.8"]
    # closed form for GD: 12.5 * 0.985^(2k) <= 1e-8  =>  k >= ln(8e-10) / (2 ln 0.985)
    assert gd == pytest.approx(math.log(1e-8 / 12.5) / (2 * math.log(0.985)), abs=2)
    assert momentum * 3 < gd, (momentum, gd)


def test_gradient_noise_is_seeded_and_only_perturbs_what_the_optimizer_sees():
    first = run_trajectory("sgd:lr=0.1", "bowl", 30, noise=1.0, seed=3)
    again = run_trajectory("sgd:lr=0.1", "bowl", 30, noise=1.0, seed=3)
    other = run_trajectory("sgd:lr=0.1", "bowl:noise=1", 30, seed=4)
    assert first.column("x") == again.column("x")
    assert first.column("x") != other.column("x")
    # The reference: the same loop by hand with torch.optim.SGD and the same noise stream.
    x = torch.tensor([-5.0, -2.0], dtype=torch.float64, requires_grad=True)
    reference = torch.optim.SGD([x], lr=0.1)
    generator = torch.Generator().manual_seed(3)
    for _ in range(30):
        reference.zero_grad()
        (x[0] ** 2 + 2 * x[1] ** 2).backward()
        x.grad += torch.randn(2, generator=generator, dtype=torch.float64)
        reference.step()
    assert first.steps[-1]["x"] == pytest.approx(x.detach().tolist(), abs=1e-12)
    row = first.steps[-1]  # grad_norm is of the exact gradient
    assert row["grad_norm"] == pytest.approx(math.hypot(2 * row["x"][0], 4 * row["x"][1]))


def test_schedule_sets_each_steps_lr():
    trace = run_trajectory("gd:lr=0.1", "square", 5, schedule="exponential:gamma=0.5")
    assert trace.column("lr")[1:] == pytest.approx([0.1 * 0.5**k for k in range(5)])
    x = 10.0
    for lr in trace.column("lr")[1:]:
        x *= 1 - 2 * lr
    assert trace.steps[-1]["x"][0] == pytest.approx(x)


def test_closure_based_optimizers_get_a_closure(monkeypatch):
    """A closure-based entry (torch's own LBFGS as a stand-in) runs and matches torch run by hand."""
    entry = registry.OptimizerEntry("torch_lbfgs", "torch.optim:LBFGS", "test", {"lr": 1.0}, needs_closure=True)
    monkeypatch.setitem(registry.OPTIMIZERS, "torch_lbfgs", entry)
    trace = run_trajectory("torch_lbfgs:lr=1,max_iter=5", "rosenbrock", 20)
    x = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
    reference = torch.optim.LBFGS([x], lr=1, max_iter=5)

    def closure():
        reference.zero_grad()
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        return loss

    for _ in range(20):
        reference.step(closure)
    assert trace.steps[-1]["x"] == pytest.approx(x.detach().tolist(), abs=1e-10)
    assert trace.outcome == "converged"


@pytest.mark.parametrize("spec, landscape, steps, start, expected", [
    ("gd:lr=0.1", "saddle", 100, None, STALLED_AT_SADDLE),      # on the stable manifold y = 0
    ("gd:lr=0.1", "cube", 200, None, STALLED_AT_SADDLE),        # x^3: creeps towards 0
    ("gd:lr=0.1", "monkey", 200, None, STALLED_AT_SADDLE),
    ("gd:lr=0.1", "xcos", 100, None, LOCAL_MINIMUM),            # from 0 it slides into the local minimum
    ("gd:lr=0.1", "xcos", 100, (0.6,), "converged"),
    ("gd:lr=0.002", "rastrigin", 300, None, LOCAL_MINIMUM),     # lr * max curvature (~400) < 2
    ("gd:lr=0.01", "rastrigin", 300, None, "completed"),        # lr * 400 > 2: bounces, never settles
    ("gd:lr=0.1", "tanh", 100, None, "still descending (slow)"),  # vanishing gradient: still on the plateau
    ("gd:lr=0.01", "himmelblau", 300, None, "converged"),
])
def test_outcomes(spec, landscape, steps, start, expected):
    assert run_trajectory(spec, landscape, steps, start=start).outcome == expected


def test_outcomes_with_gradient_noise():
    """With noise the iterates jitter: judged from the mean of the last 20% of them."""
    assert run_trajectory("gd:lr=0.1", "xcos", 60, noise=2.0).outcome == LOCAL_MINIMUM
    assert run_trajectory("gd:lr=0.1", "saddle", 30, noise=0.01).outcome == STALLED_AT_SADDLE
    # ... and escapes the saddle given time: f = x^2 - y^2 has no minimum, so f falls without bound
    escaped = run_trajectory("gd:lr=0.1", "saddle", 200, noise=0.01)
    assert escaped.outcome == "unbounded below" and escaped.diverged_at is None
    assert escaped.steps[-1]["f"] < -1e6  # past the engine's bound, 10^6 * max(|f(x0)|, 1) with f(x0) = 0.25
    # a bounded-below f that explodes upwards is still a divergence
    assert run_trajectory("gd:lr=1.1", "square", 50).outcome == "diverged"
    # momentum still racing across the domain has not settled anywhere
    assert run_trajectory("momentum:lr=0.05,momentum=0.9", "xcos", 60, noise=2.0).outcome == "completed"


def test_divergence_to_nan_is_an_outcome_not_an_exception():
    trace = run("gd:lr=10", "rosenbrock", 100)
    assert trace.outcome == "diverged" and trace.diverged_at is not None
    assert len(trace.steps) == trace.diverged_at + 1


def test_engine_run_accepts_parameterized_specs_and_landscapes():
    assert run("gd:lr=0.1", "quadratic:kappa=5", 3).problem == "quadratic:kappa=5"
    assert run("gd:lr=0.1", LANDSCAPES["valley"], 3).problem == "valley"


def test_distance_to_nearest_minimum():
    himmelblau = get_landscape("himmelblau")
    assert distance_to_nearest_minimum(himmelblau, (3.0, 2.5)) == pytest.approx(0.5)
    assert distance_to_nearest_minimum(get_landscape("saddle"), (1.0, 1.0)) is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=-1), "steps=-1"), (dict(start=(1.0,)), "start=[1.0]"), (dict(noise=-0.5), "noise=-0.5"),
])
def test_bad_arguments(kwargs, message):
    kwargs = {"steps": 3, **kwargs}
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run_trajectory("gd", "bowl", **kwargs)


def test_newton_on_cosh_follows_its_closed_form():
    """Newton on cosh(c x): x <- x - f'/f'' = x - tanh(c x)/c (D2L 11.3.3, c = 0.5 from x = 10)."""
    trace = run_trajectory("newton", "cosh", 8)
    x = 10.0
    for row in trace.steps[1:]:
        x -= math.tanh(0.5 * x) / 0.5
        assert row["x"][0] == pytest.approx(x, abs=1e-12)
    assert trace.outcome == "converged"
