"""A 2-D slice of a network's loss landscape along two filter-normalized random directions (Li et al. 2018).

Around the final weights theta*:

    f(alpha, beta) = L(theta* + alpha d1 + beta d2)

d1, d2 are Gaussian random directions, normalized filter-wise: for every parameter with 2 or more
dimensions, each filter (slice ``d[j]`` along the first axis: a neuron's row of a linear layer, an
output channel of a convolution) is scaled to the norm of the same filter of the weights,

    d[j] <- d[j] / ||d[j]|| * ||theta[j]||,

and 1-D parameters (biases, normalization scales) get zero, as in the paper. This removes the scale
invariance that makes plain random slices of different networks incomparable.

A trajectory theta_0, ..., theta_T is drawn on the slice by its least-squares projection:
(a_t, b_t) = argmin ||theta_t - theta* - a d1 - b d2||, from the 2x2 normal equations in float64
(d1 and d2 are nearly, not exactly, orthogonal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

Weights = Sequence[torch.Tensor]


def filter_normalized_direction(weights: Weights, generator: torch.Generator) -> list[torch.Tensor]:
    """A Gaussian direction shaped like ``weights``, filter-normalized (see the module docstring)."""
    direction = []
    for weight in weights:
        noise = torch.randn(weight.shape, generator=generator, dtype=torch.float64).to(weight.dtype)
        if weight.dim() <= 1:
            direction.append(torch.zeros_like(weight))
            continue
        rows = noise.reshape(len(noise), -1)
        weight_norms = weight.detach().reshape(len(weight), -1).norm(dim=1, keepdim=True)
        noise_norms = rows.norm(dim=1, keepdim=True).clamp_min(torch.finfo(noise.dtype).tiny)
        direction.append((rows * (weight_norms / noise_norms)).reshape(weight.shape))
    return direction


def _flat(tensors: Weights) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors])


def project_onto_plane(points: Sequence[Weights], center: Weights, d1: Weights,
                       d2: Weights) -> list[tuple[float, float]]:
    """(a, b) minimizing ||point - center - a d1 - b d2|| for each point (least squares, float64)."""
    u, v, origin = _flat(d1), _flat(d2), _flat(center)
    gram = torch.tensor([[u @ u, u @ v], [u @ v, v @ v]], dtype=torch.float64)
    coordinates = []
    for point in points:
        offset = _flat(point) - origin
        a, b = torch.linalg.solve(gram, torch.stack([u @ offset, v @ offset])).tolist()
        coordinates.append((a, b))
    return coordinates


@dataclass
class LandscapeSlice:
    """The loss on the grid ``losses[i][j] = f(alphas[j], betas[i])`` (rows are beta, as a contour
    plot wants them) and each trajectory's projected coordinates."""

    alphas: list[float]
    betas: list[float]
    losses: list[list[float | None]]
    paths: list[list[tuple[float, float]]] = field(default_factory=list)
    center_loss: float = math.nan


def _auto_span(paths: list[list[tuple[float, float]]]) -> float:
    """1.25 x the largest finite projected coordinate, so every path fits; 1 (the paper's) without paths."""
    largest = max((abs(c) for path in paths for point in path for c in point if math.isfinite(c)), default=0.0)
    return 1.25 * largest if largest > 0 else 1.0


@torch.no_grad()
def landscape_slice(model: nn.Module, objective: Callable[[nn.Module], torch.Tensor], center: Weights,
                    trajectories: Sequence[Sequence[Weights]] = (), *, resolution: int = 21,
                    span: float | None = None, seed: int = 0) -> LandscapeSlice:
    """The loss ``objective(model)`` on a ``resolution`` x ``resolution`` grid of
    center + alpha d1 + beta d2, alpha and beta in [-span, span] (None: wide enough for every
    projected trajectory), d1 and d2 filter-normalized from ``seed``; the model's parameters are put
    back as they were afterwards. ``center`` and each snapshot list the tensors of
    ``model.parameters()`` in order. A non-finite loss is reported as None.
    """
    parameters = list(model.parameters())
    if len(center) != len(parameters) or any(c.shape != p.shape for c, p in zip(center, parameters)):
        raise ValueError("center must list one tensor per model parameter, of the same shapes")
    if resolution < 2:
        raise ValueError(f"resolution={resolution} must be at least 2")
    generator = torch.Generator().manual_seed(seed)
    d1 = filter_normalized_direction(center, generator)
    d2 = filter_normalized_direction(center, generator)
    paths = [project_onto_plane(snapshots, center, d1, d2) for snapshots in trajectories]
    span = _auto_span(paths) if span is None else span
    if not (span > 0 and math.isfinite(span)):
        raise ValueError(f"span={span!r} must be a positive number")
    steps = [-span + 2 * span * i / (resolution - 1) for i in range(resolution)]
    saved = [p.detach().clone() for p in parameters]
    was_training = model.training
    model.eval()
    try:
        def loss_at(alpha: float, beta: float) -> float | None:
            for parameter, c, u, v in zip(parameters, center, d1, d2):
                parameter.copy_(c + alpha * u + beta * v)
            value = float(objective(model))
            return value if math.isfinite(value) else None

        losses = [[loss_at(alpha, beta) for alpha in steps] for beta in steps]
        center_loss = loss_at(0.0, 0.0)
    finally:
        for parameter, value in zip(parameters, saved):
            parameter.copy_(value)
        model.train(was_training)
    return LandscapeSlice(steps, list(steps), losses, paths, math.nan if center_loss is None else center_loss)


__all__ = ["LandscapeSlice", "filter_normalized_direction", "landscape_slice", "project_onto_plane"]
