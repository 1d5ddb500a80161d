"""Exact derivatives of small analytic functions, and what their Hessian eigenvalues say.

For a twice-differentiable f at a point with zero gradient, the Hessian H's eigenvalues decide
(the notes' second-derivative test): all > 0 a local minimum, all < 0 a local maximum, both
signs a saddle, any (near) zero: the test says nothing (degenerate, e.g. x^3 or the monkey saddle).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

MINIMUM = "minimum"
MAXIMUM = "maximum"
SADDLE = "saddle"
DEGENERATE = "degenerate"


def batched_gradient(fn: Callable[[Tensor], Tensor], points: Tensor) -> Tensor:
    """grad f at each row of ``points`` (shape (n, dim)); fn maps (..., dim) -> (...)."""
    points = points.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(points).sum(), points)
    return grad


def batched_hessian(fn: Callable[[Tensor], Tensor], points: Tensor) -> Tensor:
    """The (n, dim, dim) Hessians at each row of ``points`` (shape (n, dim)), by double autograd.

    Because fn acts row by row, d/dx_j of sum_rows(df/dx_i) is row-wise the Hessian's column j.
    """
    points = points.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(points).sum(), points, create_graph=True)
    columns = []
    for i in range(points.shape[-1]):
        (row,) = torch.autograd.grad(grad[:, i].sum(), points, retain_graph=True, allow_unused=True)
        columns.append(torch.zeros_like(points) if row is None else row)
    return torch.stack(columns, dim=1).detach()


def hessian_eigenvalues(hessian: Tensor) -> Tensor:
    """Eigenvalues (ascending) of symmetric Hessian(s), shape (..., dim)."""
    return torch.linalg.eigvalsh((hessian + hessian.transpose(-1, -2)) / 2)


def classify_critical_point(eigenvalues: Tensor | list[float], tol: float = 1e-6) -> str:
    """'minimum' / 'maximum' / 'saddle' / 'degenerate' from the Hessian eigenvalues at a critical point.

    An eigenvalue with |lambda| <= tol * max(1, max|lambda|) counts as zero: if any is zero and the
    others do not already have both signs, the second-derivative test is inconclusive (degenerate).
    """
    values = [float(v) for v in eigenvalues]
    scale = max(1.0, max(abs(v) for v in values))
    positive = any(v > tol * scale for v in values)
    negative = any(v < -tol * scale for v in values)
    if positive and negative:
        return SADDLE
    if any(abs(v) <= tol * scale for v in values):
        return DEGENERATE
    return MINIMUM if positive else MAXIMUM


def condition_number(hessian_or_eigenvalues: Tensor | list[float]) -> float:
    """kappa = max|lambda| / min|lambda| of the Hessian (inf when singular to working precision)."""
    values = torch.as_tensor(hessian_or_eigenvalues, dtype=torch.float64)
    if values.ndim == 2:
        values = hessian_eigenvalues(values)
    magnitudes = values.abs()
    smallest, largest = float(magnitudes.min()), float(magnitudes.max())
    return math.inf if smallest <= 1e-10 * max(1.0, largest) else largest / smallest


__all__ = ["MINIMUM", "MAXIMUM", "SADDLE", "DEGENERATE", "batched_gradient", "batched_hessian",
           "hessian_eigenvalues", "classify_critical_point", "condition_number"]
