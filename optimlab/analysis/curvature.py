"""Curvature of a network's loss: top and bottom Hessian eigenvalues, trace, spectral density.

All functions take an operator with ``matvec(v) -> H v`` and ``dim`` -- a
:class:`~optimlab.analysis.hvp.HessianOperator` (model + loss + data, batch or full set, train or
eval mode) or a :class:`~optimlab.analysis.hvp.MatrixOperator` -- and a ``seed``: the same seed
gives the same numbers. Vectors live on the operator's device (the model's), so the same call
runs on CPU or GPU. Each result is a plain dataclass with ``to_dict()`` that records the method,
the number of Hessian-vector products, the seconds, and the operator's mode and data.

Example:
    >>> op = HessianOperator(model, torch.nn.functional.cross_entropy, x, y, mode="eval")
    >>> top_eigenvalues(op, k=5).eigenvalues          # lambda_1 >= ... >= lambda_5
    >>> hessian_trace(op, samples=100).interval        # (low, high) at 95% confidence
    >>> spectral_density(op).density                   # on .grid, integrates to 1

References: Lanczos (1950); Hutchinson (1989); Ubaru, Chen & Saad, "Fast estimation of tr(f(A))
via stochastic Lanczos quadrature" (2017); Ghorbani, Krishnan & Xiao (2019); Yao et al.,
PyHessian (2020) -- which, unlike this module, switches the model to eval mode silently.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from .hvp import HessianOperator, MatrixOperator, OperatorInfo
from .lanczos import lanczos, power_iteration, random_unit_vector

__all__ = [
    "HessianOperator", "MatrixOperator", "EigenResult", "TraceResult", "DensityResult", "CurvatureSummary",
    "top_eigenvalues", "smallest_eigenvalue", "extreme_eigenvalues", "hessian_trace", "spectral_density",
    "summarize_curvature",
    "default_lanczos_steps",
]


class Operator(Protocol):
    dim: int
    device: torch.device
    dtype: torch.dtype
    products: int
    info: OperatorInfo

    def matvec(self, vector: Tensor) -> Tensor: ...

    def release(self) -> None: ...


@dataclass
class EigenResult:
    """Eigenvalue estimates; ``error_bounds[i]`` = ||H x_i - lambda_i x_i|| for the Ritz vector x_i
    (H has an eigenvalue within that distance of ``eigenvalues[i]``)."""

    eigenvalues: list[float]
    error_bounds: list[float]
    method: str  # "lanczos" or "power"
    which: str  # "largest" (algebraic), "largest-magnitude" (power) or "smallest"
    iterations: int
    converged: bool
    products: int
    seconds: float
    seed: int
    operator: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TraceResult:
    """Hutchinson's estimate of tr(H) = E[z^T H z] with Rademacher z, and its t-interval."""

    estimate: float
    stderr: float
    interval: tuple[float, float]
    confidence: float
    samples: int
    products: int
    seconds: float
    seed: int
    operator: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DensityResult:
    """Spectral density by stochastic Lanczos quadrature, Gaussian-broadened with width ``sigma``.

    ``nodes[r]``/``weights[r]`` are the Ritz values and quadrature weights of run r (weights sum to 1);
    ``density`` is on ``grid`` and integrates to ~1; ``trace_estimate`` = dim * mean of sum(w * theta).
    """

    grid: list[float]
    density: list[float]
    nodes: list[list[float]]
    weights: list[list[float]]
    sigma: float
    runs: int
    iterations: int
    trace_estimate: float
    products: int
    seconds: float
    seed: int
    operator: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def mass_below(self, threshold: float) -> float:
        """The fraction of the spectrum (quadrature weight) on eigenvalues below `threshold`."""
        return float(np.mean([sum(w for t, w in zip(n, ws) if t < threshold)
                              for n, ws in zip(self.nodes, self.weights)]))


def default_lanczos_steps(k: int, dim: int) -> int:
    """Lanczos steps used for the top k eigenvalues unless told: max(30, 4k), at most dim."""
    return min(dim, max(30, 4 * k))


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")


def top_eigenvalues(op: Operator, k: int = 1, *, method: str = "lanczos", iterations: int | None = None,
                    seed: int = 0, reorthogonalize: bool = True, rtol: float = 1e-6) -> EigenResult:
    """The k largest eigenvalues of the Hessian, in descending order.

    ``method="lanczos"`` (default): one Lanczos run of ``iterations`` steps (default max(30, 4k)) from a
    seeded Gaussian vector; the k largest Ritz values, each with its residual bound. A repeated
    eigenvalue is found once (a single start vector sees one copy).
    ``method="power"``: power iteration with deflation, k times (``iterations`` = the cap per eigenvalue,
    default 100); it finds the k largest in *magnitude* (the same as the largest when they are positive).
    """
    _check_positive("k", k)
    if k > op.dim:
        raise ValueError(f"k={k} exceeds the number of parameters ({op.dim})")
    if method == "lanczos":
        return extreme_eigenvalues(op, k, iterations=iterations, seed=seed, reorthogonalize=reorthogonalize,
                                   rtol=rtol)[0]
    if method != "power":
        raise ValueError(f"method={method!r} must be 'lanczos' or 'power'")
    started, products_before = time.perf_counter(), op.products
    start = random_unit_vector(op.dim, _generator(seed), dtype=op.dtype, device=op.device)
    try:
        eigenvalues, errors, used, converged = _power_top(op, k, start, iterations or 100, rtol)
    finally:
        op.release()
    return EigenResult(eigenvalues, errors, "power", "largest-magnitude", used, converged,
                       op.products - products_before, time.perf_counter() - started, seed, op.info.to_dict())


def extreme_eigenvalues(op: Operator, k: int = 1, *, iterations: int | None = None, seed: int = 0,
                        reorthogonalize: bool = True, rtol: float = 1e-6) -> tuple[EigenResult, EigenResult]:
    """The k largest and the smallest eigenvalue from one Lanczos run (it converges at both ends).

    ``converged`` is True when every reported value's residual bound is below ``rtol * |value|`` (or
    the Krylov space became invariant, which makes the Ritz values exact). Both results share the run's
    products and seconds.
    """
    started, products_before = time.perf_counter(), op.products
    start = random_unit_vector(op.dim, _generator(seed), dtype=op.dtype, device=op.device)
    try:
        run = lanczos(op.matvec, start, iterations or default_lanczos_steps(k, op.dim),
                      reorthogonalize=reorthogonalize)
    finally:
        op.release()
    values, vectors = run.ritz()
    bounds = run.error_bounds(vectors)
    exhausted = run.invariant

    def result(order: np.ndarray, which: str) -> EigenResult:
        chosen, errors = values[order].tolist(), bounds[order].tolist()
        converged = exhausted or all(e <= rtol * max(abs(v), 1e-30) for v, e in zip(chosen, errors))
        return EigenResult(chosen, errors, "lanczos", which, run.steps, converged, op.products - products_before,
                           time.perf_counter() - started, seed, op.info.to_dict())

    return result(np.argsort(values)[::-1][:k], "largest"), result(np.array([0]), "smallest")


def _power_top(op: Operator, k: int, start: Tensor, max_iterations: int,
               rtol: float) -> tuple[list[float], list[float], int, bool]:
    found: list[Tensor] = []
    eigenvalues, errors, total, all_converged = [], [], 0, True
    for _ in range(k):
        rows = torch.stack(found) if found else None
        value, vector, used, converged = power_iteration(op.matvec, start, max_iterations=max_iterations,
                                                         rtol=rtol, deflate=rows)
        residual = (op.matvec(vector) - value * vector)
        if rows is not None:
            residual = residual - rows.T @ (rows @ residual)
        eigenvalues.append(value)
        errors.append(residual.norm().item())
        found.append(vector)
        total += used
        all_converged &= converged
    return eigenvalues, errors, total, all_converged


def smallest_eigenvalue(op: Operator, *, iterations: int | None = None, seed: int = 0,
                        reorthogonalize: bool = True, rtol: float = 1e-6) -> EigenResult:
    """The smallest (most negative) eigenvalue: the lowest Ritz value of a Lanczos run."""
    return extreme_eigenvalues(op, 1, iterations=iterations, seed=seed, reorthogonalize=reorthogonalize,
                               rtol=rtol)[1]


def hessian_trace(op: Operator, samples: int = 100, *, seed: int = 0, confidence: float = 0.95) -> TraceResult:
    """Hutchinson's estimator: tr(H) = E[z^T H z] for z with independent +-1 entries.

    The estimate is the mean of ``samples`` draws; the interval is Student's t:
    ``mean +- t_{(1+c)/2, s-1} * std / sqrt(s)``. (For Rademacher z the variance of one draw is
    ``2 * sum_{i != j} H_ij^2``: zero for a diagonal H, large when H is far from diagonal.)
    """
    _check_positive("samples", samples)
    if samples < 2:
        raise ValueError(f"samples={samples} must be at least 2 for a confidence interval")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must be in (0, 1)")
    started, products_before = time.perf_counter(), op.products
    generator = _generator(seed)
    draws = []
    try:
        for _ in range(samples):
            z = (torch.randint(0, 2, (op.dim,), generator=generator, dtype=torch.float64) * 2 - 1)
            z = z.to(device=op.device, dtype=op.dtype)
            draws.append(torch.dot(z, op.matvec(z)).item())
    finally:
        op.release()
    values = np.array(draws)
    mean, stderr = float(values.mean()), float(values.std(ddof=1) / math.sqrt(samples))
    half = float(stats.t.ppf((1 + confidence) / 2, samples - 1)) * stderr
    return TraceResult(mean, stderr, (mean - half, mean + half), confidence, samples,
                       op.products - products_before, time.perf_counter() - started, seed, op.info.to_dict())


def spectral_density(op: Operator, *, runs: int = 3, iterations: int = 60, seed: int = 0,
                     sigma: float | None = None, sigma_fraction: float = 0.01,
                     grid_points: int = 2000) -> DensityResult:
    """Stochastic Lanczos quadrature: the density of H's eigenvalues, smoothed by Gaussians.

    For each of ``runs`` Rademacher unit vectors v, ``iterations`` Lanczos steps give T = Y diag(theta) Y^T
    and v^T g(H) v ~ sum_i tau_i g(theta_i) with tau_i = Y_{1i}^2. Averaging over runs:

        phi(t) = (1/runs) sum_r sum_i tau_i^(r) * N(t; theta_i^(r), sigma^2)

    ``sigma`` defaults to ``sigma_fraction`` times the spread of the Ritz values. The grid reaches 5 sigma
    beyond the extreme nodes, so phi integrates to 1 up to the tail and grid error.
    """
    _check_positive("runs", runs)
    _check_positive("iterations", iterations)
    started, products_before = time.perf_counter(), op.products
    generator = _generator(seed)
    nodes, weights, first_moments = [], [], []
    try:
        for _ in range(runs):
            start = random_unit_vector(op.dim, generator, dtype=op.dtype, device=op.device, kind="rademacher")
            run = lanczos(op.matvec, start, iterations)
            values, vectors = run.ritz()
            tau = vectors[0, :] ** 2
            nodes.append(values.tolist())
            weights.append(tau.tolist())
            first_moments.append(float(np.dot(tau, values)))
    finally:
        op.release()
    flat_nodes = np.concatenate([np.array(n) for n in nodes])
    flat_weights = np.concatenate([np.array(w) for w in weights]) / runs
    spread = float(flat_nodes.max() - flat_nodes.min())
    width = sigma if sigma is not None else sigma_fraction * (spread or max(abs(float(flat_nodes[0])), 1.0))
    if width <= 0:
        raise ValueError(f"sigma={width} must be positive")
    grid = np.linspace(flat_nodes.min() - 5 * width, flat_nodes.max() + 5 * width, grid_points)
    density = np.zeros_like(grid)
    for theta, tau in zip(flat_nodes, flat_weights):
        density += tau * np.exp(-0.5 * ((grid - theta) / width) ** 2) / (width * math.sqrt(2 * math.pi))
    return DensityResult(grid.tolist(), density.tolist(), nodes, weights, width, runs, iterations,
                         op.dim * float(np.mean(first_moments)), op.products - products_before,
                         time.perf_counter() - started, seed, op.info.to_dict())


@dataclass
class CurvatureSummary:
    """The one-line diagnostic: top eigenvalues, lambda_min, trace and (optionally) the density.

    ``negative_ratio`` = |lambda_min| / lambda_max: how large the negative part of the spectrum is
    relative to the positive part (0 at a minimum; ~1 at a strong saddle). ``negative_mass`` =
    share of the SLQ spectral weight (Ritz nodes) on eigenvalues below -0.01 * lambda_max
    (a margin that keeps the bulk of near-zero eigenvalues, resolved only to about sigma, out).
    """

    top: EigenResult
    smallest: EigenResult
    trace: TraceResult
    density: DensityResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lambda_max(self) -> float:
        return self.top.eigenvalues[0]

    @property
    def lambda_min(self) -> float:
        return self.smallest.eigenvalues[0]

    @property
    def negative_ratio(self) -> float:
        return abs(min(self.lambda_min, 0.0)) / self.lambda_max if self.lambda_max > 0 else float("inf")

    @property
    def negative_mass(self) -> float | None:
        if self.density is None:
            return None
        return self.density.mass_below(-1e-2 * abs(self.lambda_max))

    def to_dict(self) -> dict[str, Any]:
        return {
            "lambda_max": self.lambda_max, "lambda_min": self.lambda_min, "negative_ratio": self.negative_ratio,
            "negative_mass": self.negative_mass, "top": self.top.to_dict(), "smallest": self.smallest.to_dict(),
            "trace": self.trace.to_dict(), "density": self.density.to_dict() if self.density else None,
            "operator": self.top.operator, **self.extra,
        }


def summarize_curvature(op: Operator, *, k: int = 5, iterations: int | None = None, trace_samples: int = 50,
                        density_runs: int = 0, density_iterations: int = 60, seed: int = 0) -> CurvatureSummary:
    """Top-k eigenvalues, the smallest eigenvalue, the trace and (if density_runs > 0) the density.

    The top-k and the smallest come from the same Lanczos run (one set of products for both ends).
    """
    top, smallest = extreme_eigenvalues(op, k, iterations=iterations, seed=seed)
    trace = hessian_trace(op, trace_samples, seed=seed)
    density = spectral_density(op, runs=density_runs, iterations=density_iterations, seed=seed) \
        if density_runs > 0 else None
    return CurvatureSummary(top, smallest, trace, density)
