"""The adaptive-step optimizers of the notes: AdaGrad, RMSProp, Adam and AdamW."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from . import rules
from .base import RuleOptimizer, new_step_counter
from .validate import check_betas, check_lr, check_nonnegative, check_unit_interval


def _zeros(param: Tensor) -> Tensor:
    return torch.zeros_like(param, memory_format=torch.preserve_format)


def _next_step(state: dict[str, Tensor]) -> float:
    state["step"] += 1
    return state["step"].item()


class Adagrad(RuleOptimizer):
    r"""AdaGrad, a drop-in for ``torch.optim.Adagrad``.

    .. code-block:: text

        input: lr, lr_decay, lambda (weight decay), s_0 (initial_accumulator_value), eps
        for t = 1, 2, ...
            g_t <- grad f(w_{t-1}) + lambda * w_{t-1}
            lr_t <- lr / (1 + (t - 1) * lr_decay)
            s_t <- s_{t-1} + g_t^2
            w_t <- w_{t-1} - lr_t * g_t / (sqrt(s_t) + eps)

    Convention: eps outside the square root (torch); ``eps_inside_sqrt=True`` divides by
    sqrt(s_t + eps) instead, as D2L's code does (it reproduces the book's printed numbers).

    Each coordinate's step shrinks like 1/sqrt(sum of its squared gradients): large for rare
    features, small for frequent ones, and ever smaller on a long run (the notes' caveat).
    State keys: ``step``, ``sum`` (created at construction, as torch does). Sparse gradients are
    taken as torch takes them (only the touched rows of ``sum`` and w change; with weight decay
    they raise RuntimeError, as in torch).

    Example:
        >>> w = torch.zeros(2, requires_grad=True)
        >>> opt = Adagrad([w], lr=0.4)
    """

    sparse_grads = True

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        eps_inside_sqrt: bool = False,
    ) -> None:
        check_lr(lr)
        check_nonnegative("lr_decay", lr_decay)
        check_nonnegative("weight_decay", weight_decay)
        check_nonnegative("initial_accumulator_value", initial_accumulator_value)
        check_nonnegative("eps", eps)
        defaults = dict(
            lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
            differentiable=differentiable, fused=fused,
        )
        if eps_inside_sqrt:  # a group key only when used: the default state_dict layout stays torch's
            defaults["eps_inside_sqrt"] = True
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                self.state[param].update(self.init_state(param, group))

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {
            "step": new_step_counter(),
            "sum": torch.full_like(param, group["initial_accumulator_value"], memory_format=torch.preserve_format),
        }

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any], step: float | None = None
    ) -> None:
        step = _next_step(state) if step is None else step
        if grad.is_sparse:
            if group["weight_decay"] != 0:
                raise RuntimeError("weight_decay option is not compatible with sparse gradients")
            rules.adagrad_sparse_(param, -grad if group["maximize"] else grad, state["sum"], lr=float(group["lr"]),
                                  lr_decay=group["lr_decay"], eps=group["eps"], step=step)
            return
        grad = rules.regularized_gradient(param, grad, group["weight_decay"], group["maximize"])
        rules.adagrad_(param, grad, state["sum"], lr=group["lr"], lr_decay=group["lr_decay"], eps=group["eps"], step=step,
                       eps_inside_sqrt=group.get("eps_inside_sqrt", False))


class RMSprop(RuleOptimizer):
    r"""RMSProp, a drop-in for ``torch.optim.RMSprop`` (with ``momentum`` and ``centered``).

    .. code-block:: text

        input: lr, alpha (gamma in D2L), eps, lambda (weight decay), mu (momentum), centered
        for t = 1, 2, ...
            g_t <- grad f(w_{t-1}) + lambda * w_{t-1}
            s_t <- alpha * s_{t-1} + (1 - alpha) * g_t^2
            if centered: m_t <- alpha * m_{t-1} + (1 - alpha) * g_t;  s~_t <- s_t - m_t^2
            d_t <- g_t / (sqrt(s~_t) + eps)
            if mu > 0: b_t <- mu * b_{t-1} + d_t;  w_t <- w_{t-1} - lr * b_t
            else:      w_t <- w_{t-1} - lr * d_t

    Unlike AdaGrad's sum, the leaky average forgets: the step stops shrinking on a long run.
    Convention: eps outside the square root (torch); ``eps_inside_sqrt=True`` divides by
    sqrt(s + eps) instead, as D2L's code does (it reproduces the book's printed numbers).
    State keys: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered).
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        *,
        fused: bool | None = None,
        eps_inside_sqrt: bool = False,
    ) -> None:
        check_lr(lr)
        check_unit_interval("alpha", alpha, closed_right=True)
        check_nonnegative("eps", eps)
        check_nonnegative("weight_decay", weight_decay)
        check_nonnegative("momentum", momentum)
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
            capturable=capturable, foreach=foreach, maximize=maximize, differentiable=differentiable, fused=fused,
        )
        if eps_inside_sqrt:  # a group key only when used: the default state_dict layout stays torch's
            defaults["eps_inside_sqrt"] = True
        super().__init__(params, defaults)

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        state = {"step": new_step_counter(), "square_avg": _zeros(param)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = _zeros(param)
        if group["centered"]:
            state["grad_avg"] = _zeros(param)
        return state

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any], step: float | None = None
    ) -> None:
        if step is None:
            _next_step(state)
        grad = rules.regularized_gradient(param, grad, group["weight_decay"], group["maximize"])
        rules.rmsprop_(
            param, grad, state["square_avg"], state.get("grad_avg"), state.get("momentum_buffer"),
            lr=group["lr"], alpha=group["alpha"], eps=group["eps"], momentum=group["momentum"],
            centered=group["centered"], eps_inside_sqrt=group.get("eps_inside_sqrt", False),
        )


class Adam(RuleOptimizer):
    r"""Adam with bias correction, optionally AMSGrad; a drop-in for ``torch.optim.Adam``.

    .. code-block:: text

        input: lr, beta1, beta2, eps, lambda (weight decay), amsgrad, decoupled_weight_decay
        for t = 1, 2, ...
            g_t <- grad f(w_{t-1})
            if decoupled: w_{t-1} <- w_{t-1} * (1 - lr * lambda)     (AdamW)
            else:         g_t <- g_t + lambda * w_{t-1}                 (L2, as torch's Adam)
            m_t <- beta1 * m_{t-1} + (1 - beta1) * g_t
            v_t <- beta2 * v_{t-1} + (1 - beta2) * g_t^2
            if amsgrad: v_t <- max(v_max, v_t)
            w_t <- w_{t-1} - lr * (m_t / (1 - beta1^t)) / (sqrt(v_t / (1 - beta2^t)) + eps)

    Without the two corrections, m_1 = (1 - beta1) g_1 and v_1 = (1 - beta2) g_1^2 start near
    zero and the first step is about (1 - beta1)/sqrt(1 - beta2) = 3.2x too large at the defaults.
    State keys: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).

    Example:
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = Adam(model.parameters(), lr=3e-4)

    Reference: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_lr(lr)
        betas = check_betas(betas)
        check_nonnegative("eps", eps)
        check_nonnegative("weight_decay", weight_decay)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
            foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        state = {"step": new_step_counter(), "exp_avg": _zeros(param), "exp_avg_sq": _zeros(param)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = _zeros(param)
        return state

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any], step: float | None = None
    ) -> None:
        step = _next_step(state) if step is None else step
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            if group["decoupled_weight_decay"]:
                param.mul_(1 - group["lr"] * group["weight_decay"])
            else:
                grad = grad.add(param, alpha=group["weight_decay"])
        beta1, beta2 = group["betas"]
        rules.adam_(
            param, grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
            lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"], step=step, amsgrad=group["amsgrad"],
        )


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay ``w <- w * (1 - lr * lambda)`` (Loshchilov & Hutter).

    A drop-in for ``torch.optim.AdamW`` (default ``weight_decay=1e-2``); see :class:`Adam`.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
            capturable=capturable, differentiable=differentiable, fused=fused, decoupled_weight_decay=True,
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
