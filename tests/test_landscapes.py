"""The landscape registry: values against hand-written formulas, autograd against finite differences,
known minima against the literature, specs, and gradient noise statistics."""

import math

import numpy as np
import pytest
import torch

from optimlab.landscapes import LANDSCAPES, Landscape, describe, get_landscape, is_landscape

# Independent NumPy versions of each formula (written from the textbook definitions, not the module).
NUMPY_FORMULAS = {
    "xcos": lambda x: x[0] * np.cos(np.pi * x[0]),
    "cube": lambda x: x[0] ** 3,
    "tanh": lambda x: np.tanh(x[0]),
    "square": lambda x: x[0] ** 2,
    "cosh": lambda x: np.cosh(0.5 * x[0]),
    "bowl": lambda x: x[0] ** 2 + 2 * x[1] ** 2,
    "valley": lambda x: 0.1 * x[0] ** 2 + 2 * x[1] ** 2,
    "saddle": lambda x: x[0] ** 2 - x[1] ** 2,
    "monkey": lambda x: x[0] ** 3 - 3 * x[0] * x[1] ** 2,
    "rosenbrock": lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2,
    "himmelblau": lambda x: (x[0] ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2,
    "beale": lambda x: ((1.5 - x[0] + x[0] * x[1]) ** 2 + (2.25 - x[0] + x[0] * x[1] ** 2) ** 2
                        + (2.625 - x[0] + x[0] * x[1] ** 3) ** 2),
    "rastrigin": lambda x: 20 + sum(v**2 - 10 * np.cos(2 * np.pi * v) for v in x),
    "quadratic": lambda x: (x[0] ** 2 + 10 * x[1] ** 2) / 2,
}


def _random_points(landscape: Landscape, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bounds = np.array(landscape.bounds, dtype=float)
    return bounds[:, 0] + (bounds[:, 1] - bounds[:, 0]) * rng.random((count, landscape.dim))


def test_registry_covers_the_notes_and_the_classics():
    assert set(NUMPY_FORMULAS) == set(LANDSCAPES)
    for landscape in LANDSCAPES.values():
        assert landscape.dim in (1, 2) and len(landscape.start) == landscape.dim
        assert landscape.formula and landscape.description
        for low, high in landscape.bounds:
            assert low < high


@pytest.mark.parametrize("name", sorted(NUMPY_FORMULAS))
def test_values_match_the_formula_on_a_whole_grid_in_one_call(name):
    landscape = LANDSCAPES[name]
    points = _random_points(landscape, 50)
    values = landscape.f(torch.tensor(points)).numpy()  # (50, dim) -> (50,)
    expected = np.array([NUMPY_FORMULAS[name](p) for p in points])
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-12)
    grid = torch.tensor(points).reshape(5, 10, landscape.dim)
    assert landscape.f(grid).shape == (5, 10)


@pytest.mark.parametrize("name", sorted(NUMPY_FORMULAS))
def test_gradient_and_hessian_match_finite_differences(name):
    landscape, formula = LANDSCAPES[name], NUMPY_FORMULAS[name]
    h = 1e-5
    for point in _random_points(landscape, 5, seed=1):
        basis = np.eye(landscape.dim) * h
        fd_grad = np.array([(formula(point + e) - formula(point - e)) / (2 * h) for e in basis])
        grad = landscape.gradient(torch.tensor(point)).numpy()
        np.testing.assert_allclose(grad, fd_grad, rtol=1e-6, atol=1e-5 * (1 + np.abs(fd_grad).max()))
        k = 1e-4
        fd_hess = np.array([[(formula(point + a + b) - formula(point + a - b) - formula(point - a + b)
                              + formula(point - a - b)) / (4 * k * k) for b in np.eye(landscape.dim) * k]
                            for a in np.eye(landscape.dim) * k])
        hess = landscape.hessian(torch.tensor(point)).numpy()
        np.testing.assert_allclose(hess, fd_hess, rtol=1e-4, atol=1e-3 * (1 + np.abs(fd_hess).max()))


# Minima from the literature (Himmelblau 1972; Beale 1958; Rosenbrock 1960), checked independently.
LITERATURE_MINIMA = {
    "rosenbrock": [(1.0, 1.0)],
    "beale": [(3.0, 0.5)],
    "himmelblau": [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)],
    "rastrigin": [(0.0, 0.0)],
}


@pytest.mark.parametrize("name", sorted(LITERATURE_MINIMA))
def test_known_minima_agree_with_the_literature(name):
    landscape = LANDSCAPES[name]
    global_minima = [m for m in landscape.minima if m.is_global]
    assert len(global_minima) == len(LITERATURE_MINIMA[name])
    for expected in LITERATURE_MINIMA[name]:
        nearest = min(global_minima, key=lambda m: math.dist(m.point, expected))
        assert math.dist(nearest.point, expected) < 1e-5
        assert NUMPY_FORMULAS[name](np.array(nearest.point)) < 1e-9
        assert nearest.is_global
    assert landscape.global_min == 0.0


def test_xcos_minima_match_scipy():
    from scipy.optimize import minimize_scalar

    landscape = LANDSCAPES["xcos"]
    local = minimize_scalar(lambda x: x * np.cos(np.pi * x), bounds=(-0.6, 0.2), method="bounded",
                            options={"xatol": 1e-10})
    best = minimize_scalar(lambda x: x * np.cos(np.pi * x), bounds=(0.6, 1.6), method="bounded",
                           options={"xatol": 1e-10})
    by_globalness = {m.is_global: m for m in landscape.minima}
    assert len(landscape.minima) == 2
    assert by_globalness[False].point[0] == pytest.approx(local.x, abs=1e-6)
    assert by_globalness[True].point[0] == pytest.approx(best.x, abs=1e-6)
    assert by_globalness[True].value == pytest.approx(best.fun, abs=1e-12)


def test_rastrigin_local_minima_satisfy_the_closed_form_gradient():
    """grad = 2x + 20 pi sin(2 pi x) per coordinate; 11 minima per axis on [-5.12, 5.12]."""
    minima = LANDSCAPES["rastrigin"].minima
    assert len(minima) == 121
    for m in minima:
        for v in m.point:
            assert abs(2 * v + 20 * math.pi * math.sin(2 * math.pi * v)) < 1e-9
            assert abs(v - round(v)) < 0.03  # near, not on, the integers
        assert m.value == pytest.approx(NUMPY_FORMULAS["rastrigin"](np.array(m.point)), abs=1e-12)


def test_parameterized_specs():
    cosh = get_landscape("cosh:c=0.3")
    assert cosh.f(torch.tensor([2.0], dtype=torch.float64)).item() == pytest.approx(math.cosh(0.6))
    newton_example = get_landscape("xcos:c=0.15*pi")  # D2L's nonconvex Newton example
    assert newton_example.f(torch.tensor([10.0], dtype=torch.float64)).item() == pytest.approx(
        10 * math.cos(0.15 * math.pi * 10))
    assert get_landscape("xcos:c=pi/4").formula == "x*cos(0.25*pi*x)"
    assert get_landscape(newton_example.spec).minima == newton_example.minima  # the spec round-trips
    quadratic = get_landscape("quadratic:kappa=250")
    hessian = quadratic.hessian(torch.zeros(2, dtype=torch.float64))
    np.testing.assert_allclose(hessian.numpy(), np.diag([1.0, 250.0]))
    assert quadratic.spec == "quadratic:kappa=250"
    assert get_landscape("Rosenbrock") is LANDSCAPES["rosenbrock"]
    assert is_landscape("cosh:c=2") and not is_landscape("mnist") and not is_landscape(3)
    assert describe(quadratic)["minima"] == [{"point": [0.0, 0.0], "value": 0.0, "global": True}]


@pytest.mark.parametrize("spec, message", [
    ("nowhere", "unknown landscape 'nowhere'"),
    ("cosh:c=-1", "c=-1 must be a number from 1e-06 to 1e+06"),
    ("cosh:c=abc", "c='abc' must be a number from 1e-06 to 1e+06"),
    ("quadratic:kappa=0", "kappa=0 must be a number from 1e-06 to 1e+06"),
    ("rosenbrock:a=1", "bad parameters a for landscape 'rosenbrock'"),
    ("bowl:noise=-1", "noise=-1 must be a number from 0 to 1e+06"),
    ("cosh:c", "malformed landscape spec"),
])
def test_bad_specs_are_one_line_value_errors(spec, message):
    with pytest.raises(ValueError) as error:
        get_landscape(spec)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_gradient_noise_has_the_chosen_scale_and_seed():
    """D2L's SGD section: the gradient of x1^2 + 2*x2^2 plus N(0, 1) noise."""
    noisy = get_landscape("bowl:noise=1")
    assert noisy.noise == 1.0 and noisy.spec == "bowl:noise=1"
    point = torch.tensor([1.0, -1.0], dtype=torch.float64)
    samples = torch.stack([noisy.noisy_gradient(point, torch.Generator().manual_seed(s)) for s in range(4000)])
    exact = torch.tensor([2.0, -4.0], dtype=torch.float64)
    assert torch.allclose(samples.mean(0), exact, atol=0.1)  # 4 standard errors of 1/sqrt(4000)
    assert torch.allclose(samples.std(0), torch.ones(2, dtype=torch.float64), atol=0.05)
    again = noisy.noisy_gradient(point, torch.Generator().manual_seed(7))
    assert torch.equal(again, noisy.noisy_gradient(point, torch.Generator().manual_seed(7)))
    assert torch.equal(LANDSCAPES["bowl"].noisy_gradient(point), exact)


def test_landscapes_are_hashable_values():
    assert len({get_landscape("quadratic:kappa=3"), get_landscape("quadratic:kappa=3"), LANDSCAPES["bowl"]}) == 2


def test_wrong_dimension_is_rejected():
    with pytest.raises(ValueError, match="dimension 2"):
        LANDSCAPES["rosenbrock"].f(torch.zeros(3))
