"""Curvature estimates vs the exact Hessian (torch.autograd.functional.hessian) of small networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from optimlab.analysis.curvature import (
    HessianOperator, MatrixOperator, extreme_eigenvalues, hessian_trace, smallest_eigenvalue, spectral_density,
    summarize_curvature, top_eigenvalues,
)


def small_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def data(n: int = 40, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=generator)
    return x, y


def exact_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: str = "eval") -> torch.Tensor:
    """The full Hessian of the mean cross-entropy by torch.autograd.functional.hessian (the reference)."""
    names = [name for name, _ in model.named_parameters()]
    params = [p.detach() for p in model.parameters()]
    flat = torch.cat([p.reshape(-1) for p in params])
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    was_training = model.training
    model.train(mode == "train")

    def loss(vector: torch.Tensor) -> torch.Tensor:
        pieces, start = {}, 0
        for name, p in zip(names, params):
            pieces[name] = vector[start:start + p.numel()].view_as(p)
            start += p.numel()
        torch.manual_seed(0)  # the operator's dropout seed for chunk 0
        state = {**pieces, **{k: v.clone() for k, v in buffers.items()}}
        return F.cross_entropy(torch.func.functional_call(model, state, (x,)), y)

    hessian = torch.autograd.functional.hessian(loss, flat)
    model.train(was_training)
    return hessian


@pytest.fixture(scope="module")
def problem():
    model, (x, y) = small_mlp(), data()
    hessian = exact_hessian(model, x, y)
    return model, x, y, hessian, torch.linalg.eigvalsh(hessian)


def operator(model, x, y, **kwargs) -> HessianOperator:
    return HessianOperator(model, F.cross_entropy, x, y, mode=kwargs.pop("mode", "eval"), **kwargs)


def test_hvp_matches_exact_hessian_and_finite_differences(problem):
    model, x, y, hessian, _ = problem
    v = torch.randn(hessian.shape[0], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for op in (operator(model, x, y), operator(model, x, y, chunk_size=7), operator(model, x, y, reuse_graph=False)):
        torch.testing.assert_close(op.matvec(v), hessian @ v, rtol=1e-10, atol=1e-12)
    # central finite difference of the gradient along v
    op, eps = operator(model, x, y), 1e-5
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def gradient_at(vector):
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(vector, model.parameters())
        return op.gradient()[1]

    difference = (gradient_at(flat + eps * v) - gradient_at(flat - eps * v)) / (2 * eps)
    gradient_at(flat)
    torch.testing.assert_close(op.matvec(v), difference, rtol=1e-6, atol=1e-8)


def test_lanczos_top_k_and_smallest_match_exact_eigenvalues(problem):
    model, x, y, hessian, exact = problem
    op = operator(model, x, y)
    top = top_eigenvalues(op, k=5, iterations=op.dim)
    np.testing.assert_allclose(top.eigenvalues, exact.flip(0)[:5].numpy(), rtol=1e-6)
    smallest = smallest_eigenvalue(op, iterations=op.dim)
    np.testing.assert_allclose(smallest.eigenvalues[0], exact[0].item(), rtol=1e-6)
    assert exact[0] < 0  # a real saddle-ish point: the smallest is negative
    assert top.converged and top.products == top.iterations <= op.dim and top.operator["mode"] == "eval"
    assert top.operator["data"] == "full set (40 examples)"


def test_lanczos_error_bounds_hold_before_convergence(problem):
    model, x, y, _, exact = problem
    top, smallest = extreme_eigenvalues(operator(model, x, y), k=3, iterations=12, seed=5)
    for value, bound in zip(top.eigenvalues + smallest.eigenvalues, top.error_bounds + smallest.error_bounds):
        assert (exact - value).abs().min().item() <= bound + 1e-12


def test_power_iteration_top_matches_largest_magnitude(problem):
    model, x, y, _, exact = problem
    result = top_eigenvalues(operator(model, x, y), k=2, method="power", iterations=2000, rtol=1e-12)
    by_magnitude = exact[exact.abs().argsort(descending=True)]
    np.testing.assert_allclose(result.eigenvalues[0], by_magnitude[0].item(), rtol=1e-6)
    np.testing.assert_allclose(result.eigenvalues[1], by_magnitude[1].item(), rtol=1e-4)


def test_hutchinson_interval_covers_exact_trace_in_95_percent_of_seeds(problem):
    model, x, y, hessian, _ = problem
    exact_trace = hessian.trace().item()
    op = operator(model, x, y)
    covered = 0
    for seed in range(40):
        low, high = hessian_trace(op, samples=30, seed=seed).interval
        covered += low <= exact_trace <= high
    assert covered >= 36
    # an explicit matrix, 200 seeds: the coverage is close to the nominal 95%
    matrix = MatrixOperator(hessian)
    rate = np.mean([np.clip(exact_trace, *hessian_trace(matrix, 30, seed=s).interval) == exact_trace
                    for s in range(200)])
    assert 0.9 <= rate <= 0.99


def test_slq_density_integrates_to_one_and_has_the_exact_moments(problem):
    model, x, y, hessian, _ = problem
    n = hessian.shape[0]
    result = spectral_density(operator(model, x, y), runs=200, iterations=10, seed=0)
    grid, density = np.array(result.grid), np.array(result.density)
    assert abs(np.trapezoid(density, grid) - 1) < 1e-3
    mean = np.trapezoid(grid * density, grid)
    # mean of z^T H z / n over Rademacher z: variance 2 * sum_{i != j} H_ij^2 / n^2 per run (closed form)
    off_diagonal = hessian - torch.diag(torch.diag(hessian))
    stderr = (2 * (off_diagonal**2).sum().item()) ** 0.5 / n / 200**0.5
    assert abs(mean - hessian.trace().item() / n) < 4 * stderr
    assert abs(result.trace_estimate - mean * n) < 1e-6 * max(1.0, abs(mean * n))


def test_slq_with_full_lanczos_recovers_exact_spectrum_range(problem):
    model, x, y, _, exact = problem
    result = spectral_density(operator(model, x, y), runs=2, iterations=60, seed=1)
    nodes = np.concatenate([np.array(n) for n in result.nodes])
    np.testing.assert_allclose([nodes.min(), nodes.max()], [exact[0].item(), exact[-1].item()], rtol=1e-6)


class NormDropNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.norm, self.drop, self.fc2 = nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.3), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(torch.tanh(self.norm(self.fc1(x)))))


def test_train_and_eval_mode_give_different_hessians_and_are_recorded():
    torch.manual_seed(0)
    model, (x, y) = NormDropNet().double(), data()
    model.norm.running_mean.fill_(0.3)  # running statistics differ from the batch statistics
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    v = torch.randn(sum(p.numel() for p in model.parameters()), dtype=torch.float64)
    train_op, eval_op = operator(model, x, y, mode="train"), operator(model, x, y, mode="eval")
    train_hv, eval_hv = train_op.matvec(v), eval_op.matvec(v)
    # each mode matches its own exact Hessian (train: batch statistics and the seeded dropout mask)
    torch.testing.assert_close(train_hv, exact_hessian(model, x, y, "train") @ v, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(eval_hv, exact_hessian(model, x, y, "eval") @ v, rtol=1e-9, atol=1e-11)
    assert (train_hv - eval_hv).norm() > 1e-3 * eval_hv.norm()
    torch.testing.assert_close(train_op.matvec(v), train_hv)  # the same dropout masks every product
    train_top = top_eigenvalues(train_op, k=1, iterations=train_op.dim)
    eval_top = top_eigenvalues(eval_op, k=1, iterations=eval_op.dim)
    assert train_top.operator["mode"] == "train" and eval_top.operator["mode"] == "eval"
    assert abs(train_top.eigenvalues[0] - eval_top.eigenvalues[0]) > 1e-3 * abs(eval_top.eigenvalues[0])
    # the model is left as found: mode, running statistics, no .grad
    assert model.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])
    assert all(p.grad is None for p in model.parameters())


def test_subset_is_recorded_and_summary_is_consistent(problem):
    model, x, y, _, _ = problem
    op = operator(model, x, y, max_examples=25, chunk_size=10)
    summary = summarize_curvature(op, k=3, trace_samples=10, density_runs=2, density_iterations=20)
    assert summary.top.operator["data"] == "first 25 of 40 examples"
    assert summary.top.operator["chunk_size"] == 10
    exact = torch.linalg.eigvalsh(exact_hessian(model, x[:25], y[:25]))
    assert summary.lambda_max == pytest.approx(exact[-1].item(), rel=1e-6)
    assert summary.to_dict()["lambda_min"] == summary.lambda_min
    assert 0 <= summary.negative_mass <= 1


@pytest.mark.parametrize("call, message", [
    (lambda op: top_eigenvalues(op, k=0), "k=0"),
    (lambda op: top_eigenvalues(op, k=2, method="arnoldi"), "method='arnoldi'"),
    (lambda op: hessian_trace(op, samples=1), "samples=1"),
    (lambda op: hessian_trace(op, confidence=1.5), "confidence=1.5"),
])
def test_bad_arguments_name_the_value(problem, call, message):
    model, x, y, _, _ = problem
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call(operator(model, x, y))


def test_bad_mode_is_rejected(problem):
    model, x, y, _, _ = problem
    with pytest.raises(ValueError, match="mode='test'"):
        operator(model, x, y, mode="test")


def test_penalty_adds_its_own_hessian(problem):
    """An L2 penalty l2/2 * ||W||^2 on the weights adds l2 * v on the weight coordinates (closed form)."""
    model, x, y, hessian, _ = problem
    l2 = 0.3

    def penalty(m):
        return 0.5 * l2 * sum(p.pow(2).sum() for name, p in m.named_parameters() if name.endswith("weight"))

    mask = torch.cat([torch.full((p.numel(),), float(name.endswith("weight")), dtype=torch.float64)
                      for name, p in model.named_parameters()])
    v = torch.randn(hessian.shape[0], generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    op = operator(model, x, y, penalty=penalty, chunk_size=15)
    torch.testing.assert_close(op.matvec(v), hessian @ v + l2 * mask * v, rtol=1e-10, atol=1e-12)


def test_a_diverged_model_gives_nan_not_an_exception(problem):
    model, x, y, _, _ = problem
    broken = small_mlp()
    with torch.no_grad():
        broken[0].weight[0, 0] = float("nan")
    result = top_eigenvalues(operator(broken, x, y), k=2)
    assert all(np.isnan(result.eigenvalues))
