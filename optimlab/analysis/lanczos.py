"""Lanczos and power iteration on a symmetric linear operator given only by ``v -> A v``.

The Lanczos process builds an orthonormal basis Q = [q_1 .. q_m] of the Krylov space
span{q_1, A q_1, ..., A^{m-1} q_1} in which A is tridiagonal:

    A q_j = beta_{j-1} q_{j-1} + alpha_j q_j + beta_j q_{j+1},   T = Q^T A Q = tridiag(beta, alpha, beta)

The eigenvalues of T (Ritz values) approximate A's extreme eigenvalues first. In floating point
the q_j lose orthogonality and converged Ritz values reappear as spurious copies ("ghosts"), so
by default every new vector is re-orthogonalized against all previous ones (full
reorthogonalization, twice: "twice is enough", Parlett). That costs m vectors of memory.

For an eigenpair (theta, T y) the residual of the Ritz vector Q y is exactly
``||A Q y - theta Q y|| = |beta_m * y_m|``, and A has an eigenvalue within that distance of theta:
the error bound reported with each eigenvalue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from torch import Tensor

Matvec = Callable[[Tensor], Tensor]


@dataclass
class LanczosRun:
    """The tridiagonal matrix of one Lanczos run and, if kept, the basis Q (m x n)."""

    alphas: np.ndarray  # diagonal, length m
    betas: np.ndarray  # off-diagonal, length m - 1
    last_beta: float  # beta_m: the norm of the residual after the last step
    basis: Tensor | None
    invariant: bool = False  # stopped early: the Krylov space is invariant, the Ritz values exact

    @property
    def steps(self) -> int:
        return len(self.alphas)

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (ascending) and the eigenvectors of T (columns); NaN if the run met inf/NaN
        (a diverged model: its curvature is a NaN result, not an exception)."""
        if not (np.isfinite(self.alphas).all() and np.isfinite(self.betas).all()):
            return np.full(self.steps, np.nan), np.full((self.steps, self.steps), np.nan)
        if self.steps == 1:
            return self.alphas.copy(), np.ones((1, 1))
        return eigh_tridiagonal(self.alphas, self.betas)

    def error_bounds(self, vectors: np.ndarray) -> np.ndarray:
        """|beta_m * y_m| for each Ritz pair: the residual norm ||A x - theta x|| of its Ritz vector."""
        return np.abs(self.last_beta * vectors[-1, :])


def random_unit_vector(dim: int, generator: torch.Generator, *, dtype: torch.dtype, device: torch.device,
                       kind: str = "gaussian") -> Tensor:
    """A random unit vector drawn on the CPU from `generator` (reproducible on any device)."""
    if kind == "rademacher":
        vector = torch.randint(0, 2, (dim,), generator=generator, dtype=torch.float64) * 2 - 1
    else:
        vector = torch.randn(dim, generator=generator, dtype=torch.float64)
    vector = vector.to(device=device, dtype=dtype)
    return vector / vector.norm()


def lanczos(matvec: Matvec, start: Tensor, steps: int, *, reorthogonalize: bool = True,
            keep_basis: bool = False, tol: float = 1e-12) -> LanczosRun:
    """Run up to `steps` Lanczos steps from the vector `start` (normalized here).

    Stops early when the Krylov space is exhausted (beta_j <= tol * max |alpha|), in which case
    the Ritz values are exact eigenvalues of A restricted to that space.
    """
    if steps < 1:
        raise ValueError(f"steps={steps} must be at least 1")
    dim = start.numel()
    steps = min(steps, dim)
    q = start / start.norm()
    need_basis = reorthogonalize or keep_basis
    basis = torch.empty((steps, dim), dtype=start.dtype, device=start.device) if need_basis else None
    alphas: list[float] = []
    betas: list[float] = []
    previous, beta, invariant = torch.zeros_like(q), 0.0, False
    for j in range(steps):
        if basis is not None:
            basis[j] = q
        w = matvec(q)
        alpha = torch.dot(w, q).item()
        w = w - alpha * q - beta * previous
        if reorthogonalize:
            for _ in range(2):  # classical Gram-Schmidt, twice
                w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        alphas.append(alpha)
        beta = w.norm().item()
        if not (np.isfinite(alpha) and np.isfinite(beta)):
            break
        scale = max(abs(a) for a in alphas) or 1.0
        invariant = beta <= tol * scale or j == dim - 1
        if j == steps - 1 or invariant:
            break
        betas.append(beta)
        previous, q = q, w / beta
    count = len(alphas)
    kept = basis[:count] if (keep_basis and basis is not None) else None
    return LanczosRun(np.array(alphas), np.array(betas[: count - 1]), beta, kept, invariant)


def power_iteration(matvec: Matvec, start: Tensor, *, max_iterations: int = 100, rtol: float = 1e-6,
                    deflate: Tensor | None = None) -> tuple[float, Tensor, int, bool]:
    """The dominant eigenvalue (largest |lambda|) of A by the power method.

    ``v <- A v / ||A v||``; the estimate is the Rayleigh quotient ``v^T A v``; stops when it changes
    by less than ``rtol`` relative. ``deflate`` (k x n, orthonormal rows) restricts the iteration to
    the complement of known eigenvectors (for the k+1-th eigenvalue). Convergence is linear with
    ratio |lambda_2 / lambda_1|: slow when the top two are close (Lanczos is the better tool then).

    Returns (eigenvalue, unit eigenvector, iterations, converged).
    """
    vector = _project_out(start, deflate)
    vector = vector / vector.norm()
    estimate = None
    for iteration in range(1, max_iterations + 1):
        product = _project_out(matvec(vector), deflate)
        rayleigh = torch.dot(vector, product).item()
        norm = product.norm()
        if norm == 0:
            return 0.0, vector, iteration, True
        vector = product / norm
        if estimate is not None and abs(rayleigh - estimate) <= rtol * max(abs(rayleigh), 1e-30):
            return rayleigh, vector, iteration, True
        estimate = rayleigh
    return float(estimate), vector, max_iterations, False


def _project_out(vector: Tensor, rows: Tensor | None) -> Tensor:
    if rows is None or len(rows) == 0:
        return vector
    return vector - rows.T @ (rows @ vector)
