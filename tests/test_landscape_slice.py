"""The loss-landscape slice (Li et al. 2018): filter normalization by hand, the grid against the
model's own loss and a closed-form quadratic, and the least-squares projection of trajectories."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from optimlab.analysis.landscape_slice import filter_normalized_direction, landscape_slice, project_onto_plane


def test_filter_normalization_by_hand():
    torch.manual_seed(1)
    conv, linear = nn.Conv2d(2, 3, 3).double(), nn.Linear(4, 5).double()
    weights = [conv.weight, conv.bias, linear.weight, linear.bias]
    direction = filter_normalized_direction(weights, torch.Generator().manual_seed(7))
    # the same Gaussian draws, normalized by hand with numpy, one filter at a time
    generator = torch.Generator().manual_seed(7)
    noises = [torch.randn(w.shape, generator=generator, dtype=torch.float64).numpy() for w in weights]
    for weight, noise, got in zip(weights, noises, direction):
        got, weight = got.numpy(), weight.detach().numpy()
        if weight.ndim == 1:
            assert not got.any()  # biases are not moved
            continue
        for j in range(weight.shape[0]):
            expected = noise[j] / np.sqrt((noise[j] ** 2).sum()) * np.sqrt((weight[j] ** 2).sum())
            np.testing.assert_allclose(got[j], expected, rtol=1e-12)


def test_projection_recovers_plane_coordinates():
    generator = torch.Generator().manual_seed(3)
    center = [torch.randn(6, 4, generator=generator, dtype=torch.float64), torch.randn(6, dtype=torch.float64)]
    d1 = [torch.randn(6, 4, generator=generator, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)]
    d2 = [torch.randn(6, 4, generator=generator, dtype=torch.float64) + 0.3 * d1[0],
          torch.zeros(6, dtype=torch.float64)]
    points = [(0.0, 0.0), (0.7, -1.3), (-2.5, 4.25)]
    built = [[c + a * u + b * v for c, u, v in zip(center, d1, d2)] for a, b in points]
    for got, expected in zip(project_onto_plane(built, center, d1, d2), points):
        assert got == pytest.approx(expected, rel=1e-10, abs=1e-12)


def linear_problem(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 5, generator=generator, dtype=torch.float64)
    y = torch.randn(40, 1, generator=generator, dtype=torch.float64)
    model = nn.Linear(5, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 5, generator=generator, dtype=torch.float64))

    def objective(m: nn.Module) -> torch.Tensor:
        return 0.5 * torch.mean((m(x) - y) ** 2)

    return model, x.numpy(), y.numpy(), objective


def test_slice_of_least_squares_is_the_closed_form_quadratic():
    model, x, y, objective = linear_problem()
    center = [model.weight.detach().clone()]
    result = landscape_slice(model, objective, center, resolution=7, span=2.0, seed=5)
    generator = torch.Generator().manual_seed(5)
    d1 = filter_normalized_direction(center, generator)[0].numpy().ravel()
    d2 = filter_normalized_direction(center, generator)[0].numpy().ravel()
    w = center[0].numpy().ravel()
    residual, p, q = x @ w - y.ravel(), x @ d1, x @ d2
    for i, beta in enumerate(result.betas):
        for j, alpha in enumerate(result.alphas):
            expected = 0.5 * np.mean((residual + alpha * p + beta * q) ** 2)
            assert result.losses[i][j] == pytest.approx(expected, rel=1e-12)
    assert result.alphas == pytest.approx(np.linspace(-2, 2, 7).tolist(), rel=1e-15)
    assert torch.equal(model.weight.detach(), center[0])  # the weights are put back


def test_grid_center_is_the_loss_at_the_final_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x = torch.randn(30, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (30,))

    def objective(m: nn.Module) -> torch.Tensor:
        return nn.functional.cross_entropy(m(x), y)

    center = [p.detach().clone() for p in model.parameters()]
    expected = float(nn.functional.cross_entropy(model(x), y).detach())
    start = [c + 0.1 for c in center]
    result = landscape_slice(model, objective, center, [[start, center]], resolution=5)
    assert result.losses[2][2] == pytest.approx(expected, rel=1e-12)  # (0, 0) is the middle of an odd grid
    assert result.center_loss == pytest.approx(expected, rel=1e-12)
    assert result.paths[0][1] == pytest.approx((0.0, 0.0), abs=1e-12)  # the final snapshot is the center
    span = 1.25 * max(abs(c) for c in result.paths[0][0])
    assert result.alphas[0] == pytest.approx(-span) and result.alphas[-1] == pytest.approx(span)


def test_bad_arguments_are_one_line():
    model, _, _, objective = linear_problem()
    with pytest.raises(ValueError, match="resolution"):
        landscape_slice(model, objective, [model.weight.detach()], resolution=1)
    with pytest.raises(ValueError, match="center"):
        landscape_slice(model, objective, [torch.zeros(3)])
