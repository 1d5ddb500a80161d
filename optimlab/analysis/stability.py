"""Stability thresholds of the optimizers on a quadratic, and the preconditioners they imply.

On f(w) = 1/2 w^T H w an optimizer is a linear recurrence; it is stable iff every eigenvalue
``a`` of the (preconditioned) Hessian lies below a threshold (Cohen et al. 2021, 2022):

    gradient descent               w -= lr g                                a < 2 / lr
    heavy ball (torch convention)  v = mu v + (1 - tau) g; w -= lr v        a < 2 (1 + mu) / ((1 - tau) lr)
    Nesterov (torch convention)    v = mu v + g; w -= lr (g + mu v)         a < (2 + 2 mu) / ((1 + 2 mu) lr)
    RMSProp / AdaGrad              w -= lr g / P                            a < 2 (1 + mu) / lr  (mu: RMSProp momentum)
    Adam / AdamW                   m = b1 m + (1 - b1) g; w -= lr m / P     a < (2 + 2 b1) / ((1 - b1) lr)
                                                                            (= 38 / lr at b1 = 0.9)

For the adaptive methods ``a`` is an eigenvalue of the preconditioned Hessian P^{-1} H, whose
eigenvalues are those of the symmetric P^{-1/2} H P^{-1/2}, with P the diagonal the update divides
by. For Adam the bias corrections are folded into P so that the update is ``lr * P^{-1} m_t`` with
the *uncorrected* first moment m_t, to which the threshold above applies:

    P_t = (1 - b1^t) * diag( sqrt(v_t / (1 - b2^t)) + eps )   (v_t: exp_avg_sq, or max_exp_avg_sq for AMSGrad)

(Cohen et al., "Adaptive Gradient Methods at the Edge of Stability", 2022). P is frozen at its
value after step t; the next step's P also contains the next gradient, a small difference once
b2 is close to 1. AdamW's decoupled weight decay and AdaGrad's lr_decay schedule are not part of
the threshold (lr_decay is: the current lr is used).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.optim import Optimizer


@dataclass(frozen=True)
class StabilityRule:
    """What to compare with what: ``quantity`` ("sharpness" = lambda_max(H) or "preconditioned" =
    lambda_max(P^{-1/2} H P^{-1/2})) against ``threshold``; ``formula`` says how it was computed."""

    quantity: str
    threshold: float
    formula: str


def gd_threshold(lr: float) -> float:
    """2 / lr: gradient descent on a quadratic diverges along any eigenvalue above this."""
    return 2.0 / lr


def heavy_ball_threshold(lr: float, momentum: float, dampening: float = 0.0) -> float:
    """2 (1 + mu) / ((1 - tau) lr) for v = mu v + (1 - tau) g, w -= lr v."""
    return 2.0 * (1.0 + momentum) / ((1.0 - dampening) * lr)


def nesterov_threshold(lr: float, momentum: float) -> float:
    """(2 + 2 mu) / ((1 + 2 mu) lr) for torch's Nesterov: v = mu v + g, w -= lr (g + mu v)."""
    return (2.0 + 2.0 * momentum) / ((1.0 + 2.0 * momentum) * lr)


def adam_threshold(lr: float, beta1: float) -> float:
    """(2 + 2 b1) / ((1 - b1) lr): Adam's preconditioned sharpness threshold (38 / lr at b1 = 0.9)."""
    return (2.0 + 2.0 * beta1) / ((1.0 - beta1) * lr)


def _kind(optimizer: Optimizer) -> str:
    name = type(optimizer).__name__.lower()
    if name in ("sgd", "adam", "adamw", "rmsprop", "adagrad"):
        return name
    raise ValueError(f"no stability threshold for optimizer {type(optimizer).__name__!r}; "
                     "known: SGD (gd, momentum, nesterov), Adam, AdamW, RMSprop, Adagrad")


def stability_rule(optimizer: Optimizer, group_index: int = 0) -> StabilityRule:
    """The threshold of `optimizer`'s current hyperparameters (of param group `group_index`)."""
    group = optimizer.param_groups[group_index]
    kind, lr = _kind(optimizer), float(group["lr"])
    if kind == "sgd":
        mu, tau = float(group.get("momentum", 0.0)), float(group.get("dampening", 0.0))
        if mu == 0:
            return StabilityRule("sharpness", gd_threshold(lr), "2/lr")
        if group.get("nesterov"):
            return StabilityRule("sharpness", nesterov_threshold(lr, mu), "(2+2mu)/((1+2mu)lr)")
        return StabilityRule("sharpness", heavy_ball_threshold(lr, mu, tau), "2(1+mu)/((1-tau)lr)")
    if kind in ("adam", "adamw"):
        beta1 = float(group["betas"][0])
        return StabilityRule("preconditioned", adam_threshold(lr, beta1), "(2+2b1)/((1-b1)lr)")
    if kind == "rmsprop":
        if group.get("centered"):
            raise ValueError("no stability threshold for centered RMSprop (its P is not sqrt(v) + eps)")
        return StabilityRule("preconditioned", heavy_ball_threshold(lr, float(group.get("momentum", 0.0))),
                             "2(1+mu)/lr")
    # adagrad: lr_t = lr / (1 + (t - 1) lr_decay), the step the next update will use
    step = _first_step(optimizer, group)
    lr_now = lr / (1.0 + step * float(group.get("lr_decay", 0.0)))
    return StabilityRule("preconditioned", gd_threshold(lr_now), "2/lr_t")


def _first_step(optimizer: Optimizer, group: dict) -> float:
    for param in group["params"]:
        state = optimizer.state.get(param, {})
        if "step" in state:
            return float(state["step"])
    return 0.0


def preconditioner(optimizer: Optimizer, params: list[Tensor]) -> Tensor | None:
    """The flat diagonal P the update divides by (None for SGD-type methods, or before the first step).

    Adam/AdamW: (1 - b1^t)(sqrt(v_t / (1 - b2^t)) + eps); RMSprop: sqrt(v_t) + eps; Adagrad: sqrt(s_t) + eps.
    ``params`` fixes the order (that of the Hessian operator).
    """
    kind = _kind(optimizer)
    if kind == "sgd":
        return None
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    pieces = []
    for param in params:
        state, group = optimizer.state.get(param, {}), group_of[id(param)]
        if not state or float(state.get("step", 0)) == 0:
            return None
        eps = float(group["eps"])
        if kind in ("adam", "adamw"):
            beta1, beta2 = (float(b) for b in group["betas"])
            step = float(state["step"])
            second = state["max_exp_avg_sq"] if group.get("amsgrad") else state["exp_avg_sq"]
            diagonal = (1 - beta1**step) * ((second / (1 - beta2**step)).sqrt() + eps)
        elif kind == "rmsprop":
            diagonal = state["square_avg"].sqrt() + eps
        else:
            diagonal = state["sum"].sqrt() + eps
        pieces.append(diagonal.reshape(-1))
    return torch.cat(pieces)


class PreconditionedOperator:
    """``v -> P^{-1/2} H P^{-1/2} v``: its eigenvalues are those of P^{-1} H (the preconditioned Hessian)."""

    def __init__(self, operator, diagonal: Tensor) -> None:
        self.operator = operator
        self.scale = diagonal.to(device=operator.device, dtype=operator.dtype).rsqrt()
        self.dim, self.device, self.dtype, self.info = operator.dim, operator.device, operator.dtype, operator.info

    @property
    def products(self) -> int:
        return self.operator.products

    def matvec(self, vector: Tensor) -> Tensor:
        return self.scale * self.operator.matvec(self.scale * vector)

    def release(self) -> None:
        self.operator.release()
