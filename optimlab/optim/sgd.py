"""SGD: gradient descent, stochastic and minibatch SGD, heavy-ball and Nesterov momentum."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from . import rules
from .base import RuleOptimizer
from .validate import check_lr, check_nonnegative


class SGD(RuleOptimizer):
    r"""Stochastic gradient descent with optional momentum, a drop-in for ``torch.optim.SGD``.

    Gradient descent, SGD and minibatch SGD are all this class: they differ only in how many
    examples the gradient is averaged over (the whole set, one, or a minibatch).

    .. code-block:: text

        input: lr, mu (momentum), tau (dampening), lambda (weight decay), nesterov, maximize
        for t = 1, 2, ...
            g_t <- grad f(w_{t-1})  (negated if maximize)  + lambda * w_{t-1}
            if mu != 0:
                v_t <- g_t                           if t = 1
                v_t <- mu * v_{t-1} + (1 - tau) g_t  otherwise
                g_t <- g_t + mu * v_t                if nesterov else v_t
            w_t <- w_{t-1} - lr * g_t
        return w_t

    Args:
        params: parameters or param-group dicts.
        lr: learning rate (default 1e-3, as torch).
        momentum: momentum factor mu in [0, 1); its effective window is 1 / (1 - mu) steps.
        dampening: dampening tau of the gradient added to the velocity.
        weight_decay: coupled L2 penalty lambda.
        nesterov: Nesterov momentum (requires momentum > 0 and dampening = 0).
        maximize: ascend instead of descend.
        foreach: accepted for torch compatibility; ignored (the flat path supersedes it).
        fused: ``False``: the per-tensor reference path; ``None`` (default): flat buffers,
            eager vectorized ops; ``True``: flat buffers, rule compiled by torch.compile.

    Convention: momentum as ``v = mu*v + g`` and ``w -= lr*v`` (torch, Sutskever et al.);
    D2L writes ``v = beta*v + lr*g``, which is the same method with lr folded into v.

    Sparse gradients (``nn.Embedding(sparse=True)``) are taken as torch takes them (a group holding
    one steps per tensor that step; the velocity of such a parameter is sparse, as torch keeps it;
    weight decay with a sparse gradient raises RuntimeError, as in torch).

    Example:
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> model(torch.ones(1, 3)).sum().backward(); opt.step()
    """

    sparse_grads = True

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_lr(lr)
        check_nonnegative("momentum", momentum)
        check_nonnegative("dampening", dampening)
        check_nonnegative("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"nesterov=True requires momentum > 0 and dampening = 0 (got momentum={momentum}, dampening={dampening})"
            )
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
            maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused,
        )
        super().__init__(params, defaults)

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {}  # the velocity is created at the first step, as v_1 = g_1

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any], step: float | None = None
    ) -> None:
        grad = rules.regularized_gradient(param, grad, group["weight_decay"], group["maximize"])
        buffer = state.get("momentum_buffer")  # torch saves None for a velocity not yet started
        first_step = buffer is None
        if group["momentum"] != 0 and first_step:  # a sparse gradient starts a sparse velocity, as in torch
            buffer = state["momentum_buffer"] = (
                grad.clone() if grad.is_sparse else torch.empty_like(param, memory_format=torch.preserve_format)
            )
        rules.sgd_(
            param, grad, buffer,
            lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
            nesterov=group["nesterov"], first_step=first_step,
        )
