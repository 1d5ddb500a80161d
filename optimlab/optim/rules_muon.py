"""Muon's matrix rule: momentum, then the update orthogonalized by a Newton–Schulz iteration.

Kept apart from :mod:`optimlab.optim.rules` because it is not elementwise: it needs the whole
2-D matrix, so it never runs on a flat buffer. The iteration follows torch.optim.Muon's op
sequence, in bfloat16 as torch runs it; a reordered iteration (another association of the same
polynomial) differs in bfloat16 by more than dropping Nesterov does, so the order is part of the rule.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Keller Jordan's quintic coefficients, chosen to maximize the slope at zero (torch's defaults)
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5
NS_EPS = 1e-7
ADJUST_LR_FNS = ("original", "match_rms_adamw")


def newton_schulz(matrix: Tensor, coefficients: tuple[float, float, float], steps: int, eps: float) -> Tensor:
    """Approximate the orthogonal factor U V^T of G = U S V^T (in bfloat16).

    X_0 = G / max(||G||_F, eps)          (a wide matrix: transpose first when rows > cols)
    X_{k+1} = a X_k + (b A_k + c A_k^2) X_k,    A_k = X_k X_k^T
    The quintic's coefficients trade convergence for slope at zero: the singular values end up
    spread around 1 (roughly 0.5 to 1.5) rather than at 1, which Muon's authors found does not
    hurt training.
    """
    if steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if matrix.dim() != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = coefficients
    tall = matrix.size(0) > matrix.size(1)
    ortho = matrix.bfloat16()
    if tall:
        ortho = ortho.T
    ortho.div_(ortho.norm().clamp(min=eps))
    for _ in range(steps):
        gram = ortho @ ortho.T
        polynomial = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        ortho = torch.addmm(ortho, polynomial, ortho, beta=a)
    return ortho.T if tall else ortho


def adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """The lr scaled so that the orthogonalized update has a comparable RMS across shapes (A x B).

    "original" (Keller Jordan; the default): lr * sqrt(max(1, A / B));
    "match_rms_adamw" (Moonshot, Liu et al. 2025): lr * 0.2 * sqrt(max(A, B)).
    """
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


def muon_(
    param: Tensor, grad: Tensor, momentum_buffer: Tensor, *,
    lr: float, weight_decay: float, momentum: float, nesterov: bool,
    ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float, adjust_lr_fn: str | None,
) -> None:
    """Muon (Jordan et al. 2024): MomentUm Orthogonalized by Newton–Schulz, for 2-D weights.

    B_t = mu B_{t-1} + (1 - mu) g_t                (torch's EMA form of the momentum)
    B~_t = g_t + mu (B_t - g_t) if nesterov else B_t    (i.e. lerp(g_t, B_t, mu))
    O_t = NS(B~_t)
    w_t = w_{t-1} (1 - lr lambda) - AdjustLR(lr, shape) * O_t
    """
    if grad.dim() != 2:
        raise ValueError("Param gradient must be a 2D matrix")
    momentum_buffer.lerp_(grad, 1 - momentum)
    update = grad.lerp(momentum_buffer, momentum) if nesterov else momentum_buffer
    update = newton_schulz(update, ns_coefficients, ns_steps, eps)
    param.mul_(1 - lr * weight_decay)
    param.add_(update, alpha=-adjusted_lr(lr, adjust_lr_fn, param.shape))
