"""Stability thresholds vs real optimizer runs, preconditioners vs torch.optim.Adam, the sharpness tracker."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from optimlab.analysis.sharpness import SharpnessTracker, measure_sharpness, tracker_from_spec
from optimlab.analysis.stability import (
    adam_threshold, gd_threshold, heavy_ball_threshold, nesterov_threshold, preconditioner, stability_rule,
)
from optimlab.optim import create
from optimlab.trace import Trace


def final_distance(spec: str, curvature: float, steps: int = 3000) -> float:
    """|w| after `steps` of the optimizer on f(w) = curvature/2 * w^2 from w = 1."""
    w = torch.ones(1, dtype=torch.float64, requires_grad=True)
    optimizer = create(spec, [w])
    for _ in range(steps):
        optimizer.zero_grad()
        (0.5 * curvature * w**2).sum().backward()
        optimizer.step()
        if not torch.isfinite(w).all() or w.abs().item() > 1e12:
            return float("inf")
    return w.abs().item()


@pytest.mark.parametrize("spec, threshold", [
    ("gd:lr=0.1", gd_threshold(0.1)),
    ("momentum:lr=0.1,momentum=0.9", heavy_ball_threshold(0.1, 0.9)),
    ("momentum:lr=0.1,momentum=0.5,dampening=0.5", heavy_ball_threshold(0.1, 0.5, 0.5)),
    ("nesterov:lr=0.1,momentum=0.9", nesterov_threshold(0.1, 0.9)),
])
def test_threshold_separates_convergence_from_divergence(spec, threshold):
    assert final_distance(spec, 0.97 * threshold) < 1e-6
    assert final_distance(spec, 1.03 * threshold) == float("inf")
    optimizer = create(spec, [torch.zeros(1, requires_grad=True)])
    assert stability_rule(optimizer).threshold == pytest.approx(threshold)


def test_adam_threshold_on_the_frozen_preconditioner_recurrence():
    """m = b1 m + (1 - b1) a w; w -= lr m / p (Adam with P frozen): stable iff a/p < (2 + 2 b1)/((1 - b1) lr)."""
    lr, beta1, p = 0.01, 0.9, 3.0
    threshold = adam_threshold(lr, beta1)
    assert threshold == pytest.approx(38 / lr)
    for factor, stable in ((0.97, True), (1.03, False)):
        a = factor * threshold * p
        matrix = np.array([[beta1, (1 - beta1) * a], [-lr / p * beta1, 1 - lr / p * (1 - beta1) * a]])
        assert (max(abs(np.linalg.eigvals(matrix))) < 1) == stable


def test_adam_preconditioner_is_what_torch_adam_divides_the_first_moment_by():
    torch.manual_seed(0)
    w = torch.randn(5, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([w], lr=0.05, betas=(0.8, 0.99), eps=1e-3)
    for _ in range(4):
        optimizer.zero_grad()
        (w**4).sum().backward()
        optimizer.step()
    before = w.detach().clone()
    optimizer.zero_grad()
    (w**4).sum().backward()
    optimizer.step()
    state = optimizer.state[w]
    expected_update = 0.05 * state["exp_avg"] / preconditioner(optimizer, [w])
    torch.testing.assert_close(before - w.detach(), expected_update)
    rule = stability_rule(optimizer)
    assert rule.quantity == "preconditioned" and rule.threshold == pytest.approx(adam_threshold(0.05, 0.8))


def linear_regression(n: int = 64, d: int = 5, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64) * torch.linspace(0.5, 2.0, d, dtype=torch.float64)
    y = x @ torch.randn(d, 1, generator=generator, dtype=torch.float64) + 0.1
    # the Hessian of mean (x w + b - y)^2 is (2/n) [x 1]^T [x 1], whatever the weights (closed form)
    design = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], dim=1)
    lambda_max = np.linalg.eigvalsh((2 / n) * (design.T @ design).numpy())[-1]
    return x, y, float(lambda_max)


def fit(x, y, spec: str, steps: int, tracker=None, seed: int = 0):
    """Full-batch training with callbacks driven as the engine does (step_end after each step, train_end)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(x.shape[1], 1)).double()
    optimizer = create(spec, model.parameters())
    task = SimpleNamespace(data=lambda which: (x, y), loss_fn=F.mse_loss)
    trace = Trace(spec, "linear-regression")
    state = SimpleNamespace(model=model, optimizer=optimizer, task=task, trace=trace, step=0, epoch=0)
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        trace.steps.append({"step": step, "loss": loss.item(), "time": 0.001 * step})
        state.step = step
        if tracker is not None:
            tracker("step_end", state)
        if not np.isfinite(loss.item()) or loss.item() > 1e12:
            break
    if tracker is not None:
        tracker("train_end", state)
    return trace


def test_gd_just_under_two_over_lambda_max_converges_and_just_over_diverges():
    x, y, lambda_max = linear_regression()
    under = fit(x, y, f"gd:lr={0.98 * 2 / lambda_max}", 2000)
    over = fit(x, y, f"gd:lr={1.02 * 2 / lambda_max}", 2000)
    assert under.steps[-1]["loss"] < 1e-3 * under.steps[0]["loss"]
    assert not np.isfinite(over.steps[-1]["loss"]) or over.steps[-1]["loss"] > 1e6 * over.steps[0]["loss"]


def test_tracker_reports_the_closed_form_lambda_max_and_threshold():
    x, y, lambda_max = linear_regression()
    lr = 0.5 / lambda_max
    tracker = SharpnessTracker(every=5, iterations=6)  # 6 = the dimension: Lanczos is exact
    trace = fit(x, y, f"gd:lr={lr}", 12, tracker)
    measured = [row for row in trace.steps if "sharpness" in row]
    assert [row["step"] for row in measured] == [1, 5, 10]
    for row in measured:
        assert row["sharpness"] == pytest.approx(lambda_max, rel=1e-9)
        assert row["stability_threshold"] == pytest.approx(2 / lr)
    meta = trace.meta["sharpness"]
    assert meta["measurements"] == 3 and meta["data"] == {"mode": "train", "examples": 64, "of": 64}
    assert meta["seconds"] > 0 and meta["cost_vs_training"] > 0 and meta["formula"] == "2/lr"


def test_tracker_leaves_the_trajectory_unchanged():
    x, y, _ = linear_regression()
    plain = fit(x, y, "momentum:lr=0.01,momentum=0.9", 30)
    tracked = fit(x, y, "momentum:lr=0.01,momentum=0.9", 30, SharpnessTracker(every=3, iterations=4))
    assert plain.column("loss") == tracked.column("loss")


def test_preconditioned_sharpness_matches_the_dense_computation():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    x = torch.randn(32, 3, dtype=torch.float64)
    y = torch.randn(32, 1, dtype=torch.float64)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(5):
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
    row = measure_sharpness(model, F.mse_loss, x, y, optimizer=optimizer, iterations=21)
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    params = list(model.parameters())
    hessian = torch.autograd.functional.hessian(
        lambda v: F.mse_loss(torch.func.functional_call(model, _split(model, v), (x,)), y), flat)
    scale = preconditioner(optimizer, params).rsqrt()
    expected = torch.linalg.eigvalsh(scale[:, None] * hessian * scale[None, :])[-1].item()
    assert row["preconditioned_sharpness"] == pytest.approx(expected, rel=1e-6)
    assert row["sharpness"] == pytest.approx(torch.linalg.eigvalsh(hessian)[-1].item(), rel=1e-6)
    assert row["stability_threshold"] == pytest.approx(38 / 0.01)


def _split(model, vector):
    pieces, start = {}, 0
    for name, p in model.named_parameters():
        pieces[name] = vector[start:start + p.numel()].view_as(p)
        start += p.numel()
    return pieces


@pytest.mark.parametrize("spec, message", [
    ("curvature:every=5", "unknown tracker 'curvature'"),
    ("sharpness:every=0", "every=0"),
    ("sharpness:often=3", "unknown option 'often'"),
    ("sharpness:mode=test", "mode='test'"),
])
def test_bad_track_specs_name_the_value(spec, message):
    with pytest.raises(ValueError, match=message):
        tracker_from_spec(spec)


def test_overview_finds_the_first_crossing_and_the_hovering_share():
    from optimlab.analysis.sharpness import sharpness_overview

    values = [1.0, 1.5, 2.05, 1.95, 2.5, 1.99]  # threshold 2: reached at step 30; then 2 of 3 within 10%
    trace = Trace("gd:lr=1", "toy", epochs=[{"step": 0, "sharpness": 0.5, "stability_threshold": 2.0}],
                  steps=[{"step": 10 * (i + 1), "sharpness": v, "stability_threshold": 2.0}
                         for i, v in enumerate(values)])
    overview = sharpness_overview(trace)
    assert overview["initial"] == 0.5 and overview["max"] == 2.5 and overview["max_step"] == 50
    assert overview["first_crossing"] == 30
    assert overview["near_threshold_after"] == pytest.approx(2 / 3)  # steps 40, 50, 60: 1.95 yes, 2.5 no, 1.99 yes
