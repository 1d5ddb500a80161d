"""The rest of torch.optim: NAdam, RAdam, Adamax, Adadelta, ASGD, Rprop, Adafactor, SparseAdam, Muon.

Each class keeps torch 2.13's name, arguments, defaults, validation (same error types), state
keys and state_dict layout, so state dicts load both ways; the rule itself is a function of
:mod:`optimlab.optim.rules` (Muon's of :mod:`optimlab.optim.rules_muon`). Elementwise rules with
parameter-shaped state (Adamax, Adadelta, RAdam, Rprop) run on the flat path like Adam; the
others keep per-tensor state that is not parameter-shaped (0-d ``mu_product``/``eta``/``mu``,
factored or matrix rules, sparse gradients) and run per tensor (``flattens = False``).

:class:`MuonAdamW` is the spec ``muon`` of the registry: torch's Muon takes only 2-D parameters and
its docs tell users to give the rest to AdamW; MuonAdamW does exactly that inside one optimizer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from . import rules, rules_muon
from .adaptive import _next_step, _zeros
from .base import RuleOptimizer, new_step_counter, scalar_dtype
from .validate import check_unsupported_flag


def _value(number: float | Tensor) -> float:
    """A hyperparameter as a Python float (torch.optim's ``_to_scalar`` for a Tensor lr)."""
    return number.item() if isinstance(number, Tensor) else number


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_lr(lr: Any, strict: bool = False) -> None:
    _require(not isinstance(lr, Tensor) or lr.numel() == 1, "Tensor lr must be 1-element")
    _require(0.0 < lr if strict else 0.0 <= lr, f"Invalid learning rate: {lr}")


def _check_adam_like(group: dict[str, Any], *, strict: bool = False) -> None:
    """torch's checks of lr, eps, betas and weight_decay (Adam, NAdam, RAdam, Adamax, SparseAdam)."""
    _check_lr(group["lr"], strict)
    _require(0.0 < group["eps"] if strict else 0.0 <= group["eps"], f"Invalid epsilon value: {group['eps']}")
    beta1, beta2 = group["betas"]
    _require(0.0 <= beta1 < 1.0, f"Invalid beta parameter at index 0: {beta1}")
    _require(0.0 <= beta2 < 1.0, f"Invalid beta parameter at index 1: {beta2}")
    if "weight_decay" in group:
        _require(0.0 <= group["weight_decay"], f"Invalid weight_decay value: {group['weight_decay']}")


class TorchRuleOptimizer(RuleOptimizer):
    """A RuleOptimizer whose groups are validated as torch validates this class's constructor."""

    @staticmethod
    def validate(group: dict[str, Any]) -> None:
        raise NotImplementedError

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        self.validate(defaults)  # before the params, as torch does
        super().__init__(params, defaults)

    def check_group(self, group: dict[str, Any]) -> None:
        self.validate(group)
        # torch's class has no `fused`; the compiled flat path is not offered (fused=False: per tensor)
        check_unsupported_flag("fused", group.get("fused"))


class Adamax(TorchRuleOptimizer):
    r"""AdaMax, a drop-in for ``torch.optim.Adamax`` (Kingma & Ba 2015, section 7.1).

    .. code-block:: text

        g_t <- grad f(w_{t-1}) + lambda * w_{t-1}
        m_t <- beta1 * m_{t-1} + (1 - beta1) * g_t
        u_t <- max(beta2 * u_{t-1}, |g_t| + eps)
        w_t <- w_{t-1} - lr / (1 - beta1^t) * m_t / u_t

    State keys: ``step``, ``exp_avg``, ``exp_inf``.
    """

    def __init__(
        self, params: Any, lr: float | Tensor = 2e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        weight_decay: float = 0, foreach: bool | None = None, *, maximize: bool = False,
        differentiable: bool = False, capturable: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    validate = staticmethod(_check_adam_like)

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {"step": new_step_counter(), "exp_avg": _zeros(param), "exp_inf": _zeros(param)}

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: float | None = None
    ) -> None:
        step = _next_step(state) if step is None else step
        grad = rules.regularized_gradient(param, grad, group["weight_decay"], group["maximize"])
        beta1, beta2 = group["betas"]
        rules.adamax_(param, grad, state["exp_avg"], state["exp_inf"], lr=_value(group["lr"]), beta1=beta1,
                      beta2=beta2, eps=group["eps"], step=step)


class Adadelta(TorchRuleOptimizer):
    r"""AdaDelta, a drop-in for ``torch.optim.Adadelta`` (Zeiler 2012).

    .. code-block:: text

        g_t <- grad f(w_{t-1}) + lambda * w_{t-1}
        E[g^2]_t  <- rho E[g^2]_{t-1} + (1 - rho) g_t^2
        dx_t      <- sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g_t
        E[dx^2]_t <- rho E[dx^2]_{t-1} + (1 - rho) dx_t^2
        w_t <- w_{t-1} - lr * dx_t

    The ratio of the two RMS gives the update the units of w: no learning rate is needed (lr=1).
    State keys: ``step``, ``square_avg``, ``acc_delta``.
    """

    def __init__(
        self, params: Any, lr: float | Tensor = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
        foreach: bool | None = None, *, capturable: bool = False, maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize, capturable=capturable,
                        foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    @staticmethod
    def validate(group: dict[str, Any]) -> None:
        _check_lr(group["lr"])
        _require(0.0 <= group["rho"] <= 1.0, f"Invalid rho value: {group['rho']}")
        _require(0.0 <= group["eps"], f"Invalid epsilon value: {group['eps']}")
        _require(0.0 <= group["weight_decay"], f"Invalid weight_decay value: {group['weight_decay']}")

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {"step": new_step_counter(), "square_avg": _zeros(param), "acc_delta": _zeros(param)}

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: float | None = None
    ) -> None:
        if step is None:
            _next_step(state)
        grad = rules.regularized_gradient(param, grad, group["weight_decay"], group["maximize"])
        rules.adadelta_(param, grad, state["square_avg"], state["acc_delta"], lr=_value(group["lr"]),
                        rho=group["rho"], eps=group["eps"])


class NAdam(TorchRuleOptimizer):
    r"""NAdam (Dozat 2016), a drop-in for ``torch.optim.NAdam``; ``decoupled_weight_decay=True`` is NAdamW.

    .. code-block:: text

        g_t <- grad f(w_{t-1});  L2: g_t += lambda w_{t-1}  or decoupled: w_{t-1} *= 1 - lr lambda
        mu_t <- beta1 (1 - 0.5 * 0.96^(t psi)),  Pi_t = mu_1 ... mu_t     (psi = momentum_decay)
        m_t <- beta1 m_{t-1} + (1 - beta1) g_t;   v_t <- beta2 v_{t-1} + (1 - beta2) g_t^2
        w_t <- w_{t-1} - lr [(1 - mu_t)/(1 - Pi_t) g_t + mu_{t+1}/(1 - Pi_{t+1}) m_t] / (sqrt(v_t/(1 - beta2^t)) + eps)

    State keys: ``step``, ``mu_product`` (0-d), ``exp_avg``, ``exp_avg_sq``. Per tensor only
    (``mu_product`` is one number per parameter).
    """

    flattens = False

    def __init__(
        self, params: Any, lr: float | Tensor = 2e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        weight_decay: float = 0, momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *,
        foreach: bool | None = None, maximize: bool = False, capturable: bool = False, differentiable: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    @staticmethod
    def validate(group: dict[str, Any]) -> None:
        _check_adam_like(group)
        _require(0.0 <= group["momentum_decay"], f"Invalid momentum_decay value: {group['momentum_decay']}")

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {"step": new_step_counter(), "mu_product": torch.tensor(1.0, dtype=scalar_dtype()),
                "exp_avg": _zeros(param), "exp_avg_sq": _zeros(param)}

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: float | None = None
    ) -> None:
        step = _next_step(state) if step is None else step
        lr = _value(group["lr"])
        if group["maximize"]:
            grad = -grad
        grad = rules.weight_decayed_gradient(param, grad, lr=lr, weight_decay=group["weight_decay"],
                                             decoupled=group["decoupled_weight_decay"])
        beta1, beta2 = group["betas"]
        rules.nadam_(param, grad, state["exp_avg"], state["exp_avg_sq"], state["mu_product"], lr=lr, beta1=beta1,
                     beta2=beta2, eps=group["eps"], momentum_decay=group["momentum_decay"], step=step)


class RAdam(TorchRuleOptimizer):
    r"""RAdam (Liu et al. 2020), a drop-in for ``torch.optim.RAdam``; ``decoupled_weight_decay=True`` is RAdamW.

    .. code-block:: text

        g_t <- grad f(w_{t-1});  L2: g_t += lambda w_{t-1}  or decoupled: w_{t-1} *= 1 - lr lambda
        m_t <- beta1 m_{t-1} + (1 - beta1) g_t;   v_t <- beta2 v_{t-1} + (1 - beta2) g_t^2
        m_hat <- m_t / (1 - beta1^t)
        rho_inf = 2/(1 - beta2) - 1;   rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        if rho_t > 5: r_t = sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t))
                      w_t <- w_{t-1} - lr m_hat r_t sqrt(1 - beta2^t) / (sqrt(v_t) + eps)
        else:         w_t <- w_{t-1} - lr m_hat

    State keys: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(
        self, params: Any, lr: float | Tensor = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        weight_decay: float = 0, decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
        maximize: bool = False, capturable: bool = False, differentiable: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    validate = staticmethod(_check_adam_like)

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {"step": new_step_counter(), "exp_avg": _zeros(param), "exp_avg_sq": _zeros(param)}

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: float | None = None
    ) -> None:
        step = _next_step(state) if step is None else step
        lr = _value(group["lr"])
        if group["maximize"]:
            grad = -grad
        grad = rules.weight_decayed_gradient(param, grad, lr=lr, weight_decay=group["weight_decay"],
                                             decoupled=group["decoupled_weight_decay"])
        beta1, beta2 = group["betas"]
        rules.radam_(param, grad, state["exp_avg"], state["exp_avg_sq"], lr=lr, beta1=beta1, beta2=beta2,
                     eps=group["eps"], step=step)


class ASGD(TorchRuleOptimizer):
    r"""Averaged SGD, a drop-in for ``torch.optim.ASGD`` (Polyak & Juditsky 1992; Bottou's step sizes).

    .. code-block:: text

        g_t <- grad f(w_{t-1}) + lambda_wd * w_{t-1}
        w_t <- w_{t-1} (1 - lambd eta_t) - eta_t g_t
        ax_t <- ax_{t-1} + mu_t (w_t - ax_{t-1})
        eta_{t+1} <- lr / (1 + lambd lr t)^alpha;   mu_{t+1} <- 1 / max(1, t - t0)

    The average ``state[p]['ax']`` is the estimate to evaluate; averaging starts after t0 steps.
    State keys: ``step``, ``eta`` (0-d), ``mu`` (0-d), ``ax``. Per tensor only.
    """

    flattens = False

    def __init__(
        self, params: Any, lr: float | Tensor = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
        weight_decay: float = 0, foreach: bool | None = None, maximize: bool = False, differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    @staticmethod
    def validate(group: dict[str, Any]) -> None:
        _check_lr(group["lr"])
        _require(0.0 <= group["weight_decay"], f"Invalid weight_decay value: {group['weight_decay']}")

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        dtype = scalar_dtype()
        return {"step": torch.zeros((), dtype=dtype, device=param.device),
                "eta": torch.as_tensor(_value(group["lr"]), dtype=dtype, device=param.device).clone(),
                "mu": torch.ones((), dtype=dtype, device=param.device), "ax": _zeros(param)}

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: float | None = None
    ) -> None:
        step = _next_step(state)  # per tensor only: `step` is never given
        grad = rules.regularized_gradient(param, grad, group["weight_decay"], group["maximize"])
        rules.asgd_(param, grad, state["ax"], state["eta"], state["mu"], lr=_value(group["lr"]),
                    lambd=group["lambd"], alpha=group["alpha"], t0=group["t0"], step=step)


class Rprop(TorchRuleOptimizer):
    r"""Resilient backpropagation, a drop-in for ``torch.optim.Rprop`` (Riedmiller & Braun 1993).

    .. code-block:: text

        s_t = g_t g_{t-1};  eta = eta+ if s_t > 0, eta- if s_t < 0, 1 otherwise
        Delta_t <- clamp(eta Delta_{t-1}, step_size_min, step_size_max);  g_t <- 0 where s_t < 0
        w_t <- w_{t-1} - sign(g_t) Delta_t

    Only the gradient's sign is used: a full-batch method (minibatch noise flips the signs).
    State keys: ``step``, ``prev``, ``step_size`` (starts at lr).
    """

    def __init__(
        self, params: Any, lr: float | Tensor = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50), *, capturable: bool = False, foreach: bool | None = None,
        maximize: bool = False, differentiable: bool = False,
    ) -> None:
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    @staticmethod
    def validate(group: dict[str, Any]) -> None:
        _check_lr(group["lr"])
        etaminus, etaplus = group["etas"]
        _require(0.0 < etaminus < 1.0 < etaplus, f"Invalid eta values: {etaminus}, {etaplus}")

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        lr = _value(group["lr"])
        initial = complex(lr, lr) if param.is_complex() else lr  # real and imaginary parts step alike
        return {"step": new_step_counter(), "prev": _zeros(param),
                "step_size": torch.full_like(param, initial, memory_format=torch.preserve_format)}

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: float | None = None
    ) -> None:
        if step is None:
            _next_step(state)
        if group["maximize"]:
            grad = -grad
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        rules.rprop_(param, grad, state["prev"], state["step_size"], etaminus=etaminus, etaplus=etaplus,
                     step_size_min=step_size_min, step_size_max=step_size_max)


class _RealOnly:
    """Refuses complex parameters at the step, as torch's Adafactor and Muon do."""

    def step_params(self, params: list[Tensor], group: dict[str, Any]) -> None:
        for param in params:
            if param.grad is not None and param.is_complex():
                raise RuntimeError(f"{type(self).__name__} does not support complex parameters")
        super().step_params(params, group)


class Adafactor(_RealOnly, TorchRuleOptimizer):
    r"""Adafactor (Shazeer & Stern 2018), a drop-in for ``torch.optim.Adafactor``.

    .. code-block:: text

        beta2_t = 1 - t^c (c = beta2_decay);  rho_t = min(lr, 1/sqrt(t));  a_t = max(eps2, RMS(w_{t-1})) rho_t
        w_{t-1} <- w_{t-1} (1 - lr lambda)
        matrix: R_t = beta2_t R_{t-1} + (1 - beta2_t) rowmean(g^2),  C_t likewise,  V_t = R_t C_t / mean(R_t)
        vector: V_t = beta2_t V_{t-1} + (1 - beta2_t) g^2
        U_t = g_t / sqrt(max(V_t, eps1^2));   w_t <- w_{t-1} - a_t U_t / max(1, RMS(U_t)/d)

    Memory O(rows + cols) per matrix instead of O(rows * cols): the second moment is factored over
    the last two dimensions. ``eps=(None, 1e-3)``: eps1 None means the dtype's machine epsilon.
    State keys: ``step``, and ``row_var``/``col_var`` (2-D and up) or ``variance`` (0-d, 1-D). Per tensor only.
    """

    flattens = False

    def __init__(
        self, params: Any, lr: float | Tensor = 1e-2, beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3), d: float = 1.0, weight_decay: float = 0.0, *,
        foreach: bool | None = None, maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize)
        super().__init__(params, defaults)

    @staticmethod
    def validate(group: dict[str, Any]) -> None:
        lr, eps1, eps2 = group["lr"], *group["eps"]
        _require(not isinstance(lr, Tensor) or lr.numel() == 1, "Tensor lr must be 1-element")
        _require(0.0 <= lr, f"Learning rate should be >= 0 but is: {lr}")
        _require(0.0 >= group["beta2_decay"], f"beta2_decay should be <= 0 but is: {group['beta2_decay']}")
        _require(eps1 is None or 0.0 <= eps1, f"epsilon1 should be >= 0 but is: {eps1}")
        _require(0.0 <= eps2, f"epsilon2 should be >= 0 but is: {eps2}")
        _require(1.0 <= group["d"], f"Clipping threshold d should be >= 1 but is: {group['d']}")
        _require(0.0 <= group["weight_decay"], f"weight_decay should be >= 0 but is: {group['weight_decay']}")

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        state = {"step": new_step_counter()}
        if param.dim() > 1:
            state["row_var"] = param.new_zeros((*param.shape[:-1], 1))
            state["col_var"] = param.new_zeros((*param.shape[:-2], 1, param.shape[-1]))
        else:
            state["variance"] = _zeros(param)
        return state

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: float | None = None
    ) -> None:
        step = _next_step(state)
        eps1, eps2 = group["eps"]
        if eps1 is None:
            eps1 = torch.finfo(param.dtype).eps
        if group["maximize"]:
            grad = -grad
        rules.adafactor_(param, grad, state.get("row_var"), state.get("col_var"), state.get("variance"),
                         lr=_value(group["lr"]), beta2_decay=group["beta2_decay"], eps1=eps1, eps2=eps2, d=group["d"],
                         weight_decay=group["weight_decay"], step=step)


class SparseAdam(TorchRuleOptimizer):
    r"""Lazy Adam for sparse gradients (``nn.Embedding(sparse=True)``), a drop-in for ``torch.optim.SparseAdam``.

    .. code-block:: text

        for the rows i that the sparse gradient touches (the others keep w, m, v unchanged):
            m_i <- beta1 m_i + (1 - beta1) g_i;   v_i <- beta2 v_i + (1 - beta2) g_i^2
            w_i <- w_i - lr sqrt(1 - beta2^t) / (1 - beta1^t) * m_i / (sqrt(v_i) + eps)

    Dense gradients are refused (use Adam). State keys: ``step`` (a Python int, as torch),
    ``exp_avg``, ``exp_avg_sq``.
    """

    flattens = False
    sparse_grads = True

    def __init__(
        self, params: Any, lr: float | Tensor = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, maximize=maximize))
        for kind, bad in (("Sparse", Tensor.is_sparse.__get__), ("Complex", Tensor.is_complex)):
            where = [[i, j] for i, group in enumerate(self.param_groups) for j, p in enumerate(group["params"])
                     if bad(p)]
            if where:
                need = "requires dense parameter tensors" if kind == "Sparse" else "does not support complex parameters"
                raise ValueError(f"{kind} params at indices {where}: SparseAdam {need}")

    @staticmethod
    def validate(group: dict[str, Any]) -> None:
        _check_adam_like(group, strict=True)

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": 0, "exp_avg": _zeros(param), "exp_avg_sq": _zeros(param)}

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: float | None = None
    ) -> None:
        if not grad.is_sparse:
            raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead")
        state["step"] += 1
        beta1, beta2 = group["betas"]
        rules.sparse_adam_(param, -grad if group.get("maximize", False) else grad, state["exp_avg"],
                           state["exp_avg_sq"], lr=_value(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
                           step=state["step"])


def _check_muon(group: dict[str, Any]) -> None:
    lr = group["lr"]
    _require(not isinstance(lr, Tensor) or lr.numel() == 1, "Tensor lr must be 1-element")
    _require(0.0 <= lr, f"Learning rate should be >= 0 but is: {lr}")
    _require(0.0 <= group["momentum"], f"momentum should be >= 0 but is: {group['momentum']}")
    _require(0.0 <= group["weight_decay"], f"weight decay should be >= 0 but is: {group['weight_decay']}")
    fn = group["adjust_lr_fn"]
    _require(fn is None or fn in rules_muon.ADJUST_LR_FNS, f"Adjust learning rate function {fn} is not supported")


def _muon_step(param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any]) -> None:
    rules_muon.muon_(
        param, grad, state["momentum_buffer"], lr=_value(group["lr"]), weight_decay=group["weight_decay"],
        momentum=group["momentum"], nesterov=group["nesterov"], ns_coefficients=group["ns_coefficients"],
        ns_steps=group["ns_steps"], eps=group["eps"], adjust_lr_fn=group["adjust_lr_fn"],
    )


class Muon(_RealOnly, TorchRuleOptimizer):
    r"""Muon (Jordan et al. 2024), a drop-in for ``torch.optim.Muon``: for 2-D weight matrices only.

    .. code-block:: text

        B_t <- mu B_{t-1} + (1 - mu) g_t;   B~_t <- lerp(g_t, B_t, mu) if nesterov else B_t
        O_t <- NewtonSchulz_k^{(a,b,c)}(B~_t; eps)        (bfloat16, as torch)
        w_t <- w_{t-1} (1 - lr lambda) - AdjustLR(lr, shape) O_t

    Like torch, a parameter that is not 2-D raises ValueError (here at add_param_group too, where
    torch would fail at the first step). Biases, norms and embeddings belong to a second optimizer
    (torch's docs: AdamW); :class:`MuonAdamW` (the registry's ``muon``) does that split for you.
    State key: ``momentum_buffer``.
    """

    flattens = False

    def __init__(
        self, params: Any, lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95, nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = rules_muon.NS_COEFFICIENTS, eps: float = rules_muon.NS_EPS,
        ns_steps: int = rules_muon.NS_STEPS, adjust_lr_fn: str | None = None,
    ) -> None:
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)

    validate = staticmethod(_check_muon)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        for param in self.param_groups[-1]["params"]:
            if param.ndim != 2:
                raise ValueError(
                    f"Muon only supports 2D parameters whereas we found a parameter with size: {param.size()}"
                )

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {"momentum_buffer": _zeros(param)}

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: float | None = None
    ) -> None:
        _muon_step(param, grad, state, group)


class MuonAdamW(_RealOnly, TorchRuleOptimizer):
    r"""Muon on the 2-D parameters and AdamW on all others, in one optimizer (the registry's ``muon``).

    torch.optim.Muon refuses non-matrix parameters and its documentation tells users to optimize
    biases, norms and other non-2-D parameters "by a standard method such as AdamW". This class
    splits each param group it is given into a Muon group (``use_muon=True``: the 2-D parameters,
    Muon's hyperparameters) and an AdamW group (``use_muon=False``: the rest, with ``adamw_lr``,
    ``adamw_betas``, ``adamw_eps``, ``adamw_weight_decay``); each group runs its own rule
    (:func:`rules_muon.muon_` or :func:`rules.adam_` with decoupled decay). A model with no matrix
    (a point on a 2-D landscape is one vector) is thus optimized by AdamW alone.
    """

    flattens = False

    def __init__(
        self, params: Any, lr: float = 0.02, weight_decay: float = 0.0, momentum: float = 0.95,
        nesterov: bool = True, ns_steps: int = rules_muon.NS_STEPS, adjust_lr_fn: str | None = None,
        adamw_lr: float = 3e-4, adamw_betas: tuple[float, float] = (0.9, 0.95), adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.0,
    ) -> None:
        self._adamw = dict(lr=adamw_lr, betas=adamw_betas, eps=adamw_eps, weight_decay=adamw_weight_decay)
        _check_adam_like(self._adamw)
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=rules_muon.NS_COEFFICIENTS, eps=rules_muon.NS_EPS, ns_steps=ns_steps,
                        adjust_lr_fn=adjust_lr_fn, betas=adamw_betas, use_muon=True)
        super().__init__(params, defaults)

    @staticmethod
    def validate(group: dict[str, Any]) -> None:
        (_check_muon if group.get("use_muon", True) else _check_adam_like)(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if "use_muon" in param_group:  # an already split group (load_state_dict, or the caller's own)
            super().add_param_group(param_group)
            return
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        matrices = [p for p in params if p.ndim == 2]
        others = [p for p in params if p.ndim != 2]
        if matrices:
            super().add_param_group({**param_group, "params": matrices, "use_muon": True})
        if others:
            super().add_param_group({**param_group, **self._adamw, "params": others, "use_muon": False})

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        if group["use_muon"]:
            return {"momentum_buffer": _zeros(param)}
        return {"step": new_step_counter(), "exp_avg": _zeros(param), "exp_avg_sq": _zeros(param)}

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: float | None = None
    ) -> None:
        if group["use_muon"]:
            _muon_step(param, grad, state, group)
            return
        step = _next_step(state)
        lr = _value(group["lr"])
        grad = rules.weight_decayed_gradient(param, grad, lr=lr, weight_decay=group["weight_decay"], decoupled=True)
        beta1, beta2 = group["betas"]
        rules.adam_(param, grad, state["exp_avg"], state["exp_avg_sq"], None, lr=lr, beta1=beta1, beta2=beta2,
                    eps=group["eps"], step=step, amsgrad=False)
