"""Critical points, their classification and condition numbers against closed forms; convexity verdicts
whose counterexamples are re-checked with independent formulas."""

import math
from collections import Counter

import numpy as np
import pytest
import torch

from optimlab.analysis.convexity import check_convexity
from optimlab.analysis.critical_points import find_critical_points, nearest_critical_point, nearest_critical_points
from optimlab.analysis.hessian import classify_critical_point, condition_number
from optimlab.engine.fast_trajectory import ANALYTIC, analytic_of
from optimlab.landscapes import get_landscape


def test_classify_by_eigenvalue_signs():
    assert classify_critical_point([1.0, 3.0]) == "minimum"
    assert classify_critical_point([-1.0, -3.0]) == "maximum"
    assert classify_critical_point([-2.0, 2.0]) == "saddle"
    assert classify_critical_point([0.0, 2.0]) == "degenerate"
    assert classify_critical_point([0.0, 0.0]) == "degenerate"
    assert classify_critical_point([-1.0, 0.0, 1.0]) == "saddle"  # both signs settle it


def test_saddle_x2_minus_y2():
    (cp,) = find_critical_points("saddle")
    assert cp.kind == "saddle" and cp.point == pytest.approx((0.0, 0.0), abs=1e-12)
    assert sorted(cp.eigenvalues) == pytest.approx([-2.0, 2.0])  # H = diag(2, -2)
    assert cp.condition_number == pytest.approx(1.0) and not cp.is_global_min


def test_monkey_saddle_is_degenerate():
    """x^3 - 3xy^2: the only critical point is (0, 0), where the Hessian [[6x, -6y], [-6y, -6x]] is 0."""
    (cp,) = find_critical_points("monkey")
    assert cp.kind == "degenerate" and math.dist(cp.point, (0.0, 0.0)) < 1e-6
    assert math.isinf(cp.condition_number)
    (cube,) = find_critical_points("cube")
    assert cube.kind == "degenerate" and abs(cube.point[0]) < 1e-6


def test_himmelblau_has_4_minima_1_maximum_4_saddles():
    points = find_critical_points("himmelblau")
    assert Counter(cp.kind for cp in points) == {"minimum": 4, "maximum": 1, "saddle": 4}
    assert all(cp.is_global_min for cp in points if cp.kind == "minimum")
    (maximum,) = [cp for cp in points if cp.kind == "maximum"]
    # Literature: the local maximum at (-0.270845, -0.923039) with f = 181.617.
    assert maximum.point == pytest.approx((-0.270845, -0.923039), abs=1e-6)
    assert maximum.value == pytest.approx(181.617, abs=1e-3)
    for cp in points:  # each is a zero of the closed-form gradient
        x, y = cp.point
        grad = (4 * x * (x * x + y - 11) + 2 * (x + y * y - 7), 2 * (x * x + y - 11) + 4 * y * (x + y * y - 7))
        assert math.hypot(*grad) < 1e-8


def test_rosenbrock_single_minimum_with_closed_form_hessian():
    (cp,) = find_critical_points("rosenbrock")
    assert cp.kind == "minimum" and cp.is_global_min and cp.point == pytest.approx((1.0, 1.0))
    # H(1, 1) = [[2 - 400(y - 3x^2), -400x], [-400x, 200]] = [[802, -400], [-400, 200]]
    expected = np.linalg.eigvalsh(np.array([[802.0, -400.0], [-400.0, 200.0]]))
    assert cp.eigenvalues == pytest.approx(tuple(expected), rel=1e-10)
    assert cp.condition_number == pytest.approx(expected[1] / expected[0], rel=1e-10)  # ~2508


@pytest.mark.parametrize("spec, kappa", [("quadratic:kappa=100", 100.0), ("quadratic:kappa=0.01", 100.0),
                                         ("quadratic", 10.0), ("bowl", 2.0), ("valley", 20.0)])
def test_condition_numbers_of_the_quadratics(spec, kappa):
    (cp,) = find_critical_points(spec)
    assert cp.kind == "minimum" and cp.condition_number == pytest.approx(kappa, rel=1e-12)


def test_xcos_local_and_global_minimum_and_the_maximum_between():
    points = find_critical_points("xcos")
    assert [cp.kind for cp in points] == ["minimum", "minimum", "maximum"]
    assert points[0].is_global_min and not points[1].is_global_min
    for cp in points:  # f'(x) = cos(pi x) - pi x sin(pi x) = 0 there
        x = cp.point[0]
        assert abs(math.cos(math.pi * x) - math.pi * x * math.sin(math.pi * x)) < 1e-10


def test_rastrigin_lattice_of_critical_points():
    """On [-5.12, 5.12]^2 each coordinate has 11 minima and 10 maxima of x^2 - 10 cos(2 pi x):
    121 minima, 10*10 = 100 maxima and 2*11*10 = 220 saddles."""
    points = find_critical_points("rastrigin")
    assert Counter(cp.kind for cp in points) == {"minimum": 121, "maximum": 100, "saddle": 220}
    known = sorted(m.point for m in get_landscape("rastrigin").minima)  # from 1-D closed-form roots
    found = sorted(cp.point for cp in points if cp.kind == "minimum")
    assert np.allclose(found, known, atol=1e-9)


def test_beale_has_a_saddle_at_0_1():
    points = find_critical_points("beale")
    assert any(cp.kind == "saddle" and math.dist(cp.point, (0.0, 1.0)) < 1e-8 for cp in points)
    assert [cp for cp in points if cp.is_global_min][0].point == pytest.approx((3.0, 0.5))


def test_tanh_has_no_critical_point():
    assert find_critical_points("tanh") == []


def test_nearest_critical_point():
    cp = nearest_critical_point("himmelblau", [2.9, 2.1])
    assert cp.kind == "minimum" and cp.is_global_min and cp.point == pytest.approx((3.0, 2.0))
    assert nearest_critical_point("tanh", [4.0]) is None


def test_condition_number_of_a_matrix():
    assert condition_number(torch.tensor([[4.0, 0.0], [0.0, 0.5]])) == pytest.approx(8.0)
    assert math.isinf(condition_number([0.0, 1.0]))


@pytest.mark.parametrize("name", ["square", "bowl", "valley", "cosh", "quadratic:kappa=1000"])
def test_convex_landscapes_are_found_convex(name):
    verdict = check_convexity(name, samples=500, pairs=500)
    assert verdict.convex and verdict.counterexample is None and verdict.min_eigenvalue > 0


NUMPY = {
    "saddle": lambda p: p[0] ** 2 - p[1] ** 2,
    "cube": lambda p: p[0] ** 3,
    "xcos": lambda p: p[0] * math.cos(math.pi * p[0]),
    "tanh": lambda p: math.tanh(p[0]),
    "rosenbrock": lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2,
    "monkey": lambda p: p[0] ** 3 - 3 * p[0] * p[1] ** 2,
}


@pytest.mark.parametrize("name", sorted(NUMPY))
def test_nonconvex_verdicts_carry_a_true_counterexample(name):
    verdict = check_convexity(name, samples=500, pairs=500)
    assert not verdict.convex
    example = verdict.counterexample
    f = NUMPY[name]
    if example["test"] == "jensen":  # re-check Jensen's inequality with the independent formula
        a, b, t = np.array(example["a"]), np.array(example["b"]), example["t"]
        assert f(t * a + (1 - t) * b) > t * f(a) + (1 - t) * f(b)
    else:
        assert min(example["eigenvalues"]) < 0
    assert verdict.text.startswith("not convex: ")


def test_convexity_finds_negative_curvature_of_the_saddle():
    verdict = check_convexity(get_landscape("saddle"), samples=100, pairs=100)
    assert verdict.min_eigenvalue == pytest.approx(-2.0)


@pytest.mark.parametrize("name", sorted(ANALYTIC))
def test_newton_on_closed_form_gradient_finds_what_autograd_newton_finds(name):
    """The playground's Newton search (difference Hessian of the closed-form gradient) against the
    autograd one, from a 7 x 7 (1-D: 15) grid of starts: the same critical point, kind and value."""
    landscape = get_landscape(name)
    axes = [np.linspace(low, high, 7 if landscape.dim == 2 else 15) for low, high in landscape.bounds]
    starts = [list(p) for p in (np.stack(np.meshgrid(*axes), -1).reshape(-1, landscape.dim))]
    analytic = analytic_of(landscape)
    closed = nearest_critical_points(landscape, starts, gradient=lambda p: analytic(p)[1])
    reference = nearest_critical_points(landscape, starts)
    for start, a, b in zip(starts, closed, reference):  # tanh has no critical point: None from every start
        if a is None or b is None:
            assert a is b, (start, a, b)
            continue
        assert a.kind == b.kind, (start, a, b)
        assert a.point == pytest.approx(b.point, abs=1e-8) and a.value == pytest.approx(b.value, rel=1e-9, abs=1e-12)
