"""The playground's fast trajectories against the engine's reference run and against torch.

References: :func:`optimlab.engine.trajectory.run_trajectory` (a real optimizer stepping a
float64 tensor, gradients by autograd), torch's own tensor methods, and autograd gradients.

Tolerance: float64 rtol 1e-12, relative to the largest magnitude the column takes over the run.
The two paths agree to rounding, not bit for bit: torch's CPU kernels fuse multiply-adds (one
rounding where Python rounds twice) and autograd orders the chain rule differently from the
closed forms, so a value crossing zero differs by ~1e-16 of its scale. Runs that are chaotic (a
step size beyond the local stability limit, bouncing between basins: the map's Lyapunov exponent
is positive) amplify that ulp without bound, so those few pairs get a learning rate inside the
stable range (see ``STABLE_LR``); each landscape and each rule optimizer still runs.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from optimlab.engine.fast_trajectory import ANALYTIC, FAST_CLASSES, Coordinates, analytic_of, can_run_fast, run_fast_trajectory
from optimlab.engine.trajectory import classify_outcome, run_trajectory
from optimlab.landscapes import LANDSCAPES, get_landscape
from optimlab.optim.registry import OPTIMIZERS

RTOL = 1e-12
FAST = [name for name, entry in OPTIMIZERS.items()
        if not entry.needs_closure and entry.class_path.rpartition(":")[2] in FAST_CLASSES]
OTHERS = [name for name, entry in OPTIMIZERS.items() if not entry.needs_closure and name not in FAST]
RULE_OPTIMIZERS = FAST
# (landscape, optimizer) -> lr: the registry default would bounce chaotically across rastrigin's
# wells (curvature up to 2 + 40 pi^2) or around x*cos(pi x)'s minimum.
STABLE_LR = {("rastrigin", name): 0.001 for name in ("gd", "sgd", "momentum", "nesterov", "rmsprop")}
STABLE_LR[("xcos", "rmsprop")] = 0.001


def column(trace, key: str) -> list[float]:
    return [v for row in trace.steps for v in (row[key] if key == "x" else [row[key]])]


def assert_same_run(reference, fast) -> None:
    assert len(fast.steps) == len(reference.steps)
    assert (fast.outcome, fast.diverged_at) == (reference.outcome, reference.diverged_at)
    assert [row["step"] for row in fast.steps] == [row["step"] for row in reference.steps]
    for key in ("x", "f", "grad_norm"):
        expected, got = column(reference, key), column(fast, key)
        scale = max([abs(v) for v in expected if math.isfinite(v)], default=1.0)
        for step, (a, b) in enumerate(zip(expected, got)):
            if math.isfinite(a):
                assert abs(a - b) <= RTOL * scale, f"{key} at entry {step}: {b!r} != {a!r} (scale {scale:g})"
            else:
                assert not math.isfinite(b)
    assert column(fast, "lr")[0] is column(reference, "lr")[0] is None  # row 0: the start, no step yet
    assert column(fast, "lr")[1:] == pytest.approx(column(reference, "lr")[1:], rel=1e-15)


@pytest.mark.parametrize("optimizer", OTHERS)
def test_optimizers_not_checked_on_coordinates_take_the_reference_run(optimizer: str) -> None:
    assert not can_run_fast(optimizer, "rosenbrock")
    assert_same_run(run_trajectory(optimizer, "rosenbrock", 30), run_fast_trajectory(optimizer, "rosenbrock", 30))


@pytest.mark.parametrize("landscape", list(LANDSCAPES))
@pytest.mark.parametrize("optimizer", RULE_OPTIMIZERS)
def test_fast_run_equals_the_engine_run_step_by_step(landscape: str, optimizer: str) -> None:
    lr = STABLE_LR.get((landscape, optimizer))
    spec = optimizer if lr is None else f"{optimizer}:lr={lr}"
    reference = run_trajectory(spec, landscape, 150)
    assert can_run_fast(spec, landscape)
    assert_same_run(reference, run_fast_trajectory(spec, landscape, 150))


@pytest.mark.parametrize("landscape", ["bowl", "rosenbrock", "xcos:c=0.15*pi", "quadratic:kappa=100", "cosh:c=2"])
@pytest.mark.parametrize("spec", ["momentum:lr=0.001,momentum=0.8,dampening=0.1,weight_decay=0.01",
                                  "nesterov:lr=0.002,maximize=False", "adam:lr=0.05,amsgrad=True,weight_decay=0.1",
                                  "adamw:lr=0.05,betas=0.8/0.99", "adagrad:lr=0.2,lr_decay=0.01,eps_inside_sqrt=True",
                                  "rmsprop:lr=0.003,momentum=0.5,centered=True", "sgd:lr=0.001,weight_decay=0.5"])
def test_fast_run_equals_the_engine_run_with_options_noise_and_schedule(landscape: str, spec: str) -> None:
    options = dict(start=[0.7] * get_landscape(landscape).dim, noise=0.3, seed=7, schedule="exponential:gamma=0.995")
    assert_same_run(run_trajectory(spec, landscape, 120, **options), run_fast_trajectory(spec, landscape, 120, **options))


@pytest.mark.parametrize("spec,landscape,start", [("gd:lr=0.6", "valley", None), ("gd:lr=0.1", "rosenbrock", None),
                                                  ("momentum:lr=0.1", "saddle", [1.0, 0.01]),
                                                  ("adam:lr=0.5", "cube", None)])
def test_divergence_and_unbounded_below_end_the_run_at_the_same_step(spec: str, landscape: str, start) -> None:
    reference = run_trajectory(spec, landscape, 300, start=start)
    assert reference.outcome in ("diverged", "unbounded below")
    assert_same_run(reference, run_fast_trajectory(spec, landscape, 300, start=start))


@pytest.mark.parametrize("spec", ["newton", "lbfgs"])
def test_closure_optimizers_run_the_engine_itself(spec: str) -> None:
    assert not can_run_fast(spec, "rosenbrock")
    assert_same_run(run_trajectory(spec, "rosenbrock", 20), run_fast_trajectory(spec, "rosenbrock", 20))


@pytest.mark.parametrize("spec", ["rosenbrock", "himmelblau", "beale", "rastrigin", "quadratic:kappa=3.5",
                                  "quadratic:kappa=0.25*pi", "xcos", "xcos:c=0.15*pi", "cosh", "cosh:c=1.5",
                                  "cube", "tanh", "square", "bowl", "valley", "saddle", "monkey"])
def test_closed_forms_equal_autograd(spec: str) -> None:
    landscape = get_landscape(spec)
    analytic = analytic_of(landscape)
    rng = random.Random(spec)
    for _ in range(25):
        point = [rng.uniform(low, high) for low, high in landscape.bounds]
        tensor = torch.tensor(point, dtype=torch.float64)
        value, grad = analytic(point)
        expected_grad = landscape.gradient(tensor).tolist()
        assert value == pytest.approx(float(landscape.f(tensor)), rel=1e-13, abs=1e-13)
        scale = max(1.0, *(abs(g) for g in expected_grad))
        assert all(abs(a - b) <= 1e-13 * scale for a, b in zip(grad, expected_grad))


def test_every_landscape_has_a_closed_form() -> None:
    assert set(ANALYTIC) == set(LANDSCAPES)


def test_coordinates_methods_equal_torch() -> None:
    rng = torch.Generator().manual_seed(0)
    a, b, c = (torch.rand(6, generator=rng, dtype=torch.float64) + 0.1 for _ in range(3))

    def wrap(t: torch.Tensor) -> Coordinates:
        return Coordinates(t.tolist())

    cases = {
        "lerp_ small": (wrap(a).lerp_(wrap(b), 0.1), a.clone().lerp_(b, 0.1)),
        "lerp_ large": (wrap(a).lerp_(wrap(b), 0.999), a.clone().lerp_(b, 0.999)),
        "addcmul_": (wrap(a).addcmul_(wrap(b), wrap(c), value=0.3), a.clone().addcmul_(b, c, value=0.3)),
        "addcdiv_": (wrap(a).addcdiv_(wrap(b), wrap(c), value=-0.7), a.clone().addcdiv_(b, c, value=-0.7)),
        "add_ alpha": (wrap(a).add_(wrap(b), alpha=-0.05), a.clone().add_(b, alpha=-0.05)),
        "add scalar": (wrap(a).add(1e-8), a.add(1e-8)),
        "mul_": (wrap(a).mul_(0.9), a.clone().mul_(0.9)),
        "sqrt/div": (wrap(a).sqrt() / 0.3, a.sqrt() / 0.3),
        "maximum": (wrap(a).maximum(wrap(b)), a.maximum(b)),
        "neg": (-wrap(a), -a),
        "zeros_like": (torch.zeros_like(wrap(a)), torch.zeros_like(a)),
        "full_like": (torch.full_like(wrap(a), 0.25), torch.full_like(a, 0.25)),
    }
    for name, (got, expected) in cases.items():
        assert got.tolist() == pytest.approx(expected.tolist(), rel=4e-16, abs=0), name


def test_division_by_zero_follows_ieee_like_torch() -> None:
    got = Coordinates([1.0, 1.0, 1.0]).addcdiv_(Coordinates([1.0, -1.0, 0.0]), Coordinates([0.0, 0.0, 0.0]))
    expected = torch.ones(3, dtype=torch.float64).addcdiv_(torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64),
                                                           torch.zeros(3, dtype=torch.float64))
    assert str(got.tolist()) == str(expected.tolist())


def test_batched_classification_equals_one_by_one() -> None:
    from optimlab.engine.fast_trajectory import classify_scene

    starts = [[-1.5, 2.0], [0.5, 0.5], [1.2, 1.5]]
    specs = ["gd:lr=0.001", "momentum:lr=0.001", "adam:lr=0.05"]
    traces = [run_fast_trajectory(spec, "rosenbrock", 400, start=start, classify=False)
              for spec in specs for start in starts]
    expected = [classify_outcome(trace, get_landscape("rosenbrock")) for trace in traces]
    classify_scene(traces, "rosenbrock")
    assert [trace.outcome for trace in traces] == expected
    assert len(set(expected)) > 1  # the scene covers more than one outcome
