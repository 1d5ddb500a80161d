"""Optimizers beyond torch.optim: Lion, Schedule-Free AdamW and SGD, AdEMAMix (SOAP: soap.py).

Each matches its reference implementation numerically, with the reference's argument names and
defaults: ``lion-pytorch`` (Lion), ``schedulefree`` (AdamWScheduleFree, SGDScheduleFree), and
``pytorch_optimizer`` (AdEMAMix). The update rules live in :mod:`optimlab.optim.rules`; like the
torch twins these classes run on the per-tensor path (``fused=False``) or on flat buffers.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import Tensor
from torch.optim import Optimizer

from . import rules
from .base import RuleOptimizer, new_step_counter
from .validate import check_finite, check_lr, check_nonnegative, check_unit_interval


def _zeros(param: Tensor) -> Tensor:
    return torch.zeros_like(param, memory_format=torch.preserve_format)


def _check_betas(betas: Any, count: int, *, closed: bool = False) -> tuple[float, ...]:
    """``count`` decay rates, each in [0, 1) (or [0, 1] when ``closed``), as a tuple."""
    if not isinstance(betas, (tuple, list)) or len(betas) != count:
        raise ValueError(f"betas={betas!r} must be a tuple of {count} numbers")
    return tuple(check_unit_interval(f"betas[{i}]", b, closed_right=closed) for i, b in enumerate(betas))


class Lion(RuleOptimizer):
    r"""Lion, "EvoLved Sign Momentum" (Chen et al. 2023); matches ``lion_pytorch.Lion``.

    .. code-block:: text

        input: lr, (beta1, beta2), lambda (weight decay)
        for t = 1, 2, ...
            c_t <- beta1 * m_{t-1} + (1 - beta1) * g_t
            w_t <- w_{t-1} * (1 - lr * lambda) - lr * sign(c_t)
            m_t <- beta2 * m_{t-1} + (1 - beta2) * g_t

    Every coordinate moves by exactly ``lr`` (the paper: use a 3-10x smaller lr than AdamW and a
    3-10x larger weight decay). ``decoupled_weight_decay=True`` divides lambda by the initial lr,
    so that the decay per step, lr * lambda / lr_0, does not change with the initial lr (as the
    reference). ``use_triton`` is accepted for the reference's signature; ``fused=True`` is
    optimlab's compiled kernel instead. State key: ``exp_avg``.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        use_triton: bool = False,
        decoupled_weight_decay: bool = False,
        *,
        fused: bool | None = None,
    ) -> None:
        check_lr(lr)
        betas = _check_betas(betas, 2, closed=True)
        check_nonnegative("weight_decay", weight_decay)
        self._init_lr = lr
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
                        fused=fused)
        super().__init__(params, defaults)

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {"exp_avg": _zeros(param)}

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any], step: float | None = None
    ) -> None:
        weight_decay = group["weight_decay"]
        if group["decoupled_weight_decay"]:
            weight_decay /= self._init_lr
        beta1, beta2 = group["betas"]
        rules.lion_(param, grad, state["exp_avg"], lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=weight_decay)


class _ScheduleFree(RuleOptimizer):
    """What Schedule-Free AdamW and SGD share: the averaging weight, train()/eval(), the z state.

    The parameter holds y (where gradients are taken) in train mode and x (the average, the
    weights to evaluate and save) in eval mode. A subclass gives ``beta`` (the interpolation
    between z and x) and the step direction.
    """

    beta_key = ""

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        if defaults.get("fused") is True:
            raise ValueError(f"fused=True is not supported by {type(self).__name__} "
                             f"(its averaging weight changes every step; allowed: None, False)")
        check_nonnegative("warmup_steps", defaults["warmup_steps"])
        check_finite("r", defaults["r"])
        check_finite("weight_lr_power", defaults["weight_lr_power"])
        # the reference starts in eval mode and refuses step() until train(); optimlab starts in train
        # mode (no 'z' exists yet, so the two are the same numbers) so that loops unaware of train/eval work
        defaults.update(k=0, train_mode=True, weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0)
        super().__init__(params, defaults)

    def beta(self, group: dict[str, Any]) -> float:
        value = group[self.beta_key]
        return value[0] if isinstance(value, tuple) else value

    @torch.no_grad()
    def eval(self) -> None:
        """Put the averaged weights x into the parameters (for evaluation and checkpoints)."""
        self._switch(to_train=False)

    @torch.no_grad()
    def train(self) -> None:
        """Put the gradient point y back into the parameters (before training steps)."""
        self._switch(to_train=True)

    def _switch(self, to_train: bool) -> None:
        for group in self.param_groups:
            if group["train_mode"] == to_train:
                continue
            move = rules.schedule_free_to_gradient_point_ if to_train else rules.schedule_free_to_average_
            for param in group["params"]:
                state = self.state.get(param)
                if state and "z" in state:
                    move(param, state["z"].to(param.device), self.beta(group))
            group["train_mode"] = to_train

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        if not self.param_groups[0]["train_mode"]:
            raise RuntimeError(f"{type(self).__name__}.step() called in eval mode; call optimizer.train() first")
        return super().step(closure)

    def step_group(self, group: dict[str, Any]) -> None:
        """Advance the group's schedule (warmup lr, averaging weight c_{k+1}), then apply the rule."""
        k = group["k"]
        warmup = group["warmup_steps"]
        lr = group["lr"] * ((k + 1) / warmup if k < warmup else 1.0)
        group["scheduled_lr"] = lr
        lr_max = group["lr_max"] = max(lr, group["lr_max"])
        weight = (k + 1) ** group["r"] * lr_max ** group["weight_lr_power"]
        weight_sum = group["weight_sum"] = group["weight_sum"] + weight
        self._ckp1 = weight / weight_sum if weight_sum != 0 else 0.0
        super().step_group(group)
        group["k"] = k + 1

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {"z": param.clone(memory_format=torch.preserve_format)}

    def direction(self, param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any]) -> Tensor:
        raise NotImplementedError

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any], step: float | None = None
    ) -> None:
        direction = self.direction(param, grad, state, group)
        rules.schedule_free_(param, state["z"], direction, lr=group["scheduled_lr"], beta=self.beta(group),
                             ckp1=self._ckp1)


class ScheduleFreeAdamW(_ScheduleFree):
    r"""Schedule-Free AdamW (Defazio et al. 2024); matches ``schedulefree.AdamWScheduleFree``.

    .. code-block:: text

        input: lr (after linear warmup: lr_t), beta1, beta2, eps, lambda, r, weight_lr_power
        y_t = (1 - beta1) z_t + beta1 x_t                         (the parameter in train mode)
        v_t = beta2 v_{t-1} + (1 - beta2) g(y_t)^2
        d_t = g(y_t) / (sqrt(v_t / (1 - beta2^t)) + eps) + lambda y_t
        z_{t+1} = z_t - lr_t d_t
        c_{t+1} = (t+1)^r lr_max^p / sum_{i<=t+1} i^r lr_max,i^p    (p = weight_lr_power)
        x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}             (the parameter in eval mode)

    No learning-rate schedule is needed: x is a weighted average of the z iterates. Call
    ``optimizer.eval()`` before evaluating or saving and ``optimizer.train()`` before training
    (optimlab's engine does both). Group keys as the reference: ``k``, ``train_mode``,
    ``weight_sum``, ``lr_max``, ``scheduled_lr``; state keys ``z``, ``exp_avg_sq``.
    """

    beta_key = "betas"

    def __init__(
        self,
        params: Any,
        lr: float = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        foreach: bool | None = True,
        *,
        fused: bool | None = None,
    ) -> None:
        check_lr(lr)
        betas = _check_betas(betas, 2)
        check_nonnegative("eps", eps)
        check_nonnegative("weight_decay", weight_decay)
        if betas[0] == 0:
            raise ValueError("betas[0]=0.0 must be > 0 (eval() divides by it)")
        defaults = dict(lr=lr, betas=betas, eps=eps, r=r, warmup_steps=warmup_steps, weight_lr_power=weight_lr_power,
                        weight_decay=weight_decay, foreach=foreach, fused=fused)
        super().__init__(params, defaults)

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {**super().init_state(param, group), "exp_avg_sq": _zeros(param)}

    def direction(self, param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any]) -> Tensor:
        beta2 = group["betas"][1]
        return rules.schedule_free_adam_direction(
            grad, state["exp_avg_sq"], param, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
            bias_correction2=rules.bias_correction(beta2, group["k"] + 1),
        )


class ScheduleFreeSGD(_ScheduleFree):
    r"""Schedule-Free SGD (Defazio et al. 2024); matches ``schedulefree.SGDScheduleFree``.

    As :class:`ScheduleFreeAdamW` with beta = ``momentum`` and the direction d_t = g(y_t) + lambda y_t:

    .. code-block:: text

        z_{t+1} = z_t - lr_t (g(y_t) + lambda y_t)
        x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1};   y_{t+1} = (1 - momentum) z_{t+1} + momentum x_{t+1}

    State key ``z``; group keys as :class:`ScheduleFreeAdamW`.
    """

    beta_key = "momentum"

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2,
        foreach: bool | None = True,
        *,
        fused: bool | None = None,
    ) -> None:
        check_lr(lr)
        check_nonnegative("weight_decay", weight_decay)
        if not 0 < check_finite("momentum", momentum) < 1:
            raise ValueError(f"momentum={momentum!r} must be in (0, 1)")
        defaults = dict(lr=lr, momentum=momentum, r=r, warmup_steps=warmup_steps, weight_lr_power=weight_lr_power,
                        weight_decay=weight_decay, foreach=foreach, fused=fused)
        super().__init__(params, defaults)

    def direction(self, param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any]) -> Tensor:
        return rules.regularized_gradient(param, grad, group["weight_decay"], maximize=False)


def is_schedule_free(optimizer: Optimizer) -> bool:
    """True for optimizers that keep separate train/eval weights (optimlab's or the reference's)."""
    return callable(getattr(optimizer, "eval", None)) and callable(getattr(optimizer, "train", None)) and any(
        "train_mode" in group for group in optimizer.param_groups)


@contextlib.contextmanager
def evaluation_weights(optimizer: Optimizer) -> Iterator[None]:
    """Inside: the parameters hold the weights to evaluate (a schedule-free optimizer's average x).

    A no-op for every other optimizer; a schedule-free one is put in eval mode and, on exit, back
    in train mode with its gradient points y restored exactly from a copy: ``train()`` after
    ``eval()`` interpolates back, which rounds, so looking at x would otherwise move the run.
    """
    if not is_schedule_free(optimizer) or not optimizer.param_groups[0]["train_mode"]:
        yield
        return
    params = [param for group in optimizer.param_groups for param in group["params"]]
    gradient_points = [param.detach().clone() for param in params]
    optimizer.eval()
    try:
        yield
    finally:
        with torch.no_grad():
            for param, saved in zip(params, gradient_points):
                param.copy_(saved)
        for group in optimizer.param_groups:
            group["train_mode"] = True


class AdEMAMix(RuleOptimizer):
    r"""AdEMAMix (Pagliardini et al. 2024); matches ``pytorch_optimizer.AdEMAMix``.

    .. code-block:: text

        input: lr, (beta1, beta2, beta3), alpha, T (t_alpha_beta3), eps, lambda
        for t = 1, 2, ...
            g_t <- grad f(w_{t-1}) (negated if maximize)
            weight decay: w <- w (1 - lr lambda) if weight_decouple (1 - lambda if fixed_decay) else g_t += lambda w
            alpha_t = min(t alpha / T, alpha);  beta3_t = min(exp(ln b1 ln b3 / ((1 - t/T) ln b3 + t/T ln b1)), b3)
            m1_t = beta1 m1 + (1 - beta1) g_t;  m2_t = beta3_t m2 + (1 - beta3_t) g_t;  v_t = beta2 v + (1 - beta2) g_t^2
            w_t <- w_{t-1} - lr (m1_t / (1 - beta1^t) + alpha_t m2_t) / (sqrt(v_t / (1 - beta2^t)) + eps)

    A second, slow EMA (beta3 = 0.9999, a 10 000-step memory) keeps old gradients relevant; the
    fast, bias-corrected one reacts. State keys ``step``, ``exp_avg``, ``exp_avg_sq``,
    ``exp_avg_slow``. The step is counted per parameter (as torch's Adam; the reference counts per
    group: the same unless a parameter misses gradients).
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float, float] = (0.9, 0.999, 0.9999),
        weight_decay: float = 0.0,
        weight_decouple: bool = False,
        fixed_decay: bool = False,
        alpha: float = 5.0,
        t_alpha_beta3: float | None = None,
        eps: float = 1e-8,
        maximize: bool = False,
        foreach: bool | None = None,
        *,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, weight_decouple=weight_decouple,
                        fixed_decay=fixed_decay, alpha=alpha, t_alpha_beta3=t_alpha_beta3, eps=eps, maximize=maximize,
                        foreach=foreach, fused=fused)
        self._check(defaults)
        super().__init__(params, defaults)

    @staticmethod
    def _check(group: dict[str, Any]) -> None:
        check_lr(group["lr"])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 3:
            raise ValueError(f"betas={betas!r} must be a tuple of 3 numbers (beta1, beta2, beta3)")
        for index, beta in enumerate(betas):
            check_unit_interval(f"betas[{index}]", beta, closed_right=index == 2)
        for name in ("weight_decay", "alpha", "eps"):
            check_nonnegative(name, group[name])
        if group["t_alpha_beta3"] is not None and check_nonnegative("t_alpha_beta3", group["t_alpha_beta3"]) == 0:
            raise ValueError("t_alpha_beta3=0 must be > 0 (or None for no warmup)")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Checks the triple ``betas`` and ``alpha`` > 1 itself (the base's checks are for Adam's pair)."""
        self._check({**self.defaults, **param_group})
        Optimizer.add_param_group(self, param_group)
        self._flatten(self.param_groups[-1])

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {"step": new_step_counter(), "exp_avg": _zeros(param), "exp_avg_sq": _zeros(param),
                "exp_avg_slow": _zeros(param)}

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any], step: float | None = None
    ) -> None:
        if step is None:
            state["step"] += 1
            step = state["step"].item()
        if group["maximize"]:
            grad = -grad
        lr, weight_decay = group["lr"], group["weight_decay"]
        if weight_decay != 0:
            if group["weight_decouple"]:
                param.mul_(1 - weight_decay * (1.0 if group["fixed_decay"] else lr))
            else:
                grad = grad.add(param, alpha=weight_decay)
        beta1, beta2, beta3 = group["betas"]
        warmup = group["t_alpha_beta3"]
        rules.ademamix_(
            param, grad, state["exp_avg"], state["exp_avg_sq"], state["exp_avg_slow"], lr=lr, beta1=beta1,
            beta2=beta2, beta3=rules.once_per_step(rules.ademamix_beta3(step, beta1, beta3, warmup)),
            alpha=rules.once_per_step(rules.ademamix_alpha(step, group["alpha"], warmup)), eps=group["eps"], step=step,
        )
