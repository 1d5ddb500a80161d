"""Is a landscape convex on its domain? Two sampled tests that can each refute it.

1. Second-order: a twice-differentiable f is convex on a convex set iff its Hessian is positive
   semidefinite everywhere there; we check the smallest eigenvalue at a grid plus random points.
2. Jensen: f(t a + (1 - t) b) <= t f(a) + (1 - t) f(b) for random pairs a, b and t in (0, 1).

Sampling can only *disprove* convexity: the verdict "convex" means "no counterexample among the
points tried", and a "not convex" verdict carries the counterexample that proves it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..landscapes import Landscape, get_landscape
from .hessian import batched_hessian, hessian_eigenvalues


@dataclass
class ConvexityVerdict:
    """The verdict, how it was reached, and (when not convex) the counterexample found."""

    convex: bool
    reason: str
    min_eigenvalue: float
    hessian_points: int
    jensen_pairs: int
    counterexample: dict[str, Any] | None = field(default=None)

    @property
    def text(self) -> str:
        return ("convex" if self.convex else "not convex") + f": {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"convex": self.convex, "reason": self.reason, "min_eigenvalue": self.min_eigenvalue,
                "hessian_points": self.hessian_points, "jensen_pairs": self.jensen_pairs,
                "counterexample": self.counterexample}


def _sample(landscape: Landscape, count: int, generator: torch.Generator) -> Tensor:
    lows = torch.tensor([low for low, _ in landscape.bounds], dtype=torch.float64)
    highs = torch.tensor([high for _, high in landscape.bounds], dtype=torch.float64)
    return lows + (highs - lows) * torch.rand(count, landscape.dim, generator=generator, dtype=torch.float64)


def _grid(landscape: Landscape, per_axis: int) -> Tensor:
    axes = [torch.linspace(low, high, per_axis, dtype=torch.float64) for low, high in landscape.bounds]
    return torch.stack([m.reshape(-1) for m in torch.meshgrid(*axes, indexing="ij")], dim=-1)


def _rounded(values: Tensor) -> list[float]:
    return [round(float(v), 6) for v in values]


def check_convexity(landscape: Landscape | str, *, samples: int = 2000, pairs: int = 2000, seed: int = 0,
                    tol: float = 1e-9) -> ConvexityVerdict:
    """Test convexity on the landscape's domain: Hessian PSD at a grid plus ``samples`` random points,
    and Jensen's inequality on ``pairs`` random pairs (``tol``: relative slack for rounding)."""
    landscape = get_landscape(landscape)
    generator = torch.Generator().manual_seed(seed)
    per_axis = 41 if landscape.dim == 2 else 1601
    points = torch.cat([_grid(landscape, per_axis), _sample(landscape, samples, generator)])
    eigenvalues = hessian_eigenvalues(batched_hessian(landscape.f, points))
    smallest = eigenvalues[:, 0]
    worst = int(smallest.argmin())
    min_eigenvalue = float(smallest[worst])
    scale = max(1.0, float(eigenvalues.abs().max()))

    a, b = _sample(landscape, pairs, generator), _sample(landscape, pairs, generator)
    t = torch.rand(pairs, 1, generator=generator, dtype=torch.float64)
    mixed = landscape.f(t * a + (1 - t) * b)
    chord = t[:, 0] * landscape.f(a) + (1 - t[:, 0]) * landscape.f(b)
    slack = tol * (landscape.f(a).abs() + landscape.f(b).abs() + 1.0)
    excess = mixed - chord - slack
    counted = dict(min_eigenvalue=min_eigenvalue, hessian_points=len(points), jensen_pairs=pairs)

    if float(excess.max()) > 0:
        i = int(excess.argmax())
        example = {"test": "jensen", "a": _rounded(a[i]), "b": _rounded(b[i]), "t": round(float(t[i, 0]), 6),
                   "f(t*a+(1-t)*b)": float(mixed[i]), "t*f(a)+(1-t)*f(b)": float(chord[i])}
        reason = (f"Jensen fails: f(t*a+(1-t)*b) = {float(mixed[i]):.6g} > t*f(a)+(1-t)*f(b) = "
                  f"{float(chord[i]):.6g} for a = {example['a']}, b = {example['b']}, t = {example['t']}")
        if min_eigenvalue < -tol * scale:
            example["hessian_point"] = _rounded(points[worst])
            example["hessian_eigenvalues"] = _rounded(eigenvalues[worst])
            reason += f"; Hessian eigenvalue {min_eigenvalue:.6g} < 0 at {_rounded(points[worst])}"
        return ConvexityVerdict(False, reason, counterexample=example, **counted)
    if min_eigenvalue < -tol * scale:
        example = {"test": "hessian", "point": _rounded(points[worst]), "eigenvalues": _rounded(eigenvalues[worst])}
        reason = f"Hessian eigenvalue {min_eigenvalue:.6g} < 0 at {example['point']}"
        return ConvexityVerdict(False, reason, counterexample=example, **counted)
    strength = "strongly convex, " if min_eigenvalue > tol * scale else ""
    reason = (f"{strength}min Hessian eigenvalue {min_eigenvalue:.6g} >= 0 at {len(points)} points and no "
              f"Jensen violation in {pairs} pairs (sampling can only refute convexity)")
    return ConvexityVerdict(True, reason, counterexample=None, **counted)


__all__ = ["ConvexityVerdict", "check_convexity"]
