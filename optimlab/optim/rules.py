"""The update rules, each written once, as in-place elementwise tensor math.

Every function here takes tensors that are either one parameter or one flat buffer holding a
whole param group (the caller decides), plus plain numbers. None of them loops over tensors,
checks devices or branches on dtypes. The formulas follow the notes (D2L chapter 11) and the
conventions of torch.optim where libraries differ:

* momentum is ``v = mu*v + (1 - dampening)*g`` (torch), not ``v = beta*v + lr*g`` (D2L); the two
  are the same method with the lr moved in or out of the velocity;
* eps is added *outside* the square root (torch, Kingma & Ba); D2L writes it inside for AdaGrad
  and RMSProp (``eps_inside_sqrt=True`` reproduces the book's printed numbers).

The step counter ``step`` is the number of this update, starting at 1. ``lr`` and ``step`` may
also be 0-d tensors: the compiled flat path passes them so, so that a new learning rate (a
schedule) or the next step does not recompile the kernel.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


# An op that inductor cannot look into: a coefficient computed through it stays one scalar kernel per step
# instead of being recomputed (std::pow and all) in every iteration of the elementwise loop. Registered with
# torch.library.Library rather than custom_op: a call costs 3 us instead of 10 (one per coefficient per step).
_LIBRARY = torch.library.Library("optimlab", "FRAGMENT")
_LIBRARY.define("scalar_once(Tensor value) -> Tensor")
_LIBRARY.impl("scalar_once", lambda value: value.clone(), "CompositeExplicitAutograd")
_LIBRARY.impl("scalar_once", lambda value: torch.empty_like(value), "Meta")


def once_per_step(value: float | Tensor) -> float | Tensor:
    """A step-dependent coefficient, computed once per step (a float, or a 0-d tensor that the
    compiler must not recompute inside the elementwise loop: the call is opaque to inductor)."""
    return torch.ops.optimlab.scalar_once(value) if isinstance(value, Tensor) else value


def bias_correction(beta: float, step: int | float | Tensor) -> float | Tensor:
    """1 - beta**t: the correction that makes an EMA started at zero unbiased at step t."""
    return 1 - beta**step


def effective_window(beta: float) -> float:
    """The number of past terms an EMA with decay beta effectively averages: 1 / (1 - beta)."""
    return 1.0 / (1.0 - beta)


def ema_(average: Tensor, value: Tensor, decay: float) -> Tensor:
    """Exponential moving average in place: a <- decay * a + (1 - decay) * x, as ``lerp_``."""
    return average.lerp_(value, 1 - decay)


def regularized_gradient(param: Tensor, grad: Tensor, weight_decay: float, maximize: bool) -> Tensor:
    """g <- (-g if maximize) + weight_decay * w: ascent and coupled L2 regularization."""
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    return grad


def descend_(param: Tensor, direction: Tensor, step_size: float | Tensor) -> None:
    """w <- w - step_size * direction."""
    if isinstance(step_size, Tensor):  # a tensor cannot be an `alpha=`: multiply instead
        param.sub_(direction * step_size)
    else:
        param.add_(direction, alpha=-step_size)


def descend_ratio_(param: Tensor, numerator: Tensor, denominator: Tensor, step_size: float | Tensor) -> None:
    """w <- w - step_size * numerator / denominator."""
    if isinstance(step_size, Tensor):
        param.sub_(numerator * step_size / denominator)
    else:
        param.addcdiv_(numerator, denominator, value=-step_size)


def sgd_(
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Tensor | None,
    *,
    lr: float | Tensor,
    momentum: float,
    dampening: float,
    nesterov: bool,
    first_step: bool,
) -> None:
    """Gradient descent with optional heavy-ball or Nesterov momentum.

    v_t = mu * v_{t-1} + (1 - dampening) * g_t      (v_1 = g_1)
    w_t = w_{t-1} - lr * (g_t + mu * v_t)   if nesterov
    w_t = w_{t-1} - lr * v_t                 otherwise (w_t = w_{t-1} - lr * g_t when mu = 0)
    """
    if momentum != 0:
        if first_step:
            momentum_buffer.copy_(grad)
        else:
            momentum_buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
        grad = grad.add(momentum_buffer, alpha=momentum) if nesterov else momentum_buffer
    descend_(param, grad, lr)


def root_mean_square(second_moment: Tensor, eps: float, eps_inside_sqrt: bool = False) -> Tensor:
    """The denominator of the adaptive methods: sqrt(s) + eps, or sqrt(s + eps) when ``eps_inside_sqrt``.

    torch and Kingma & Ba add eps outside the root; D2L's AdaGrad and RMSProp code adds it inside.
    """
    if eps_inside_sqrt:
        return second_moment.add(eps).sqrt_()
    return second_moment.sqrt().add_(eps)


def adagrad_(
    param: Tensor, grad: Tensor, sum_: Tensor, *, lr: float | Tensor, lr_decay: float, eps: float,
    step: float | Tensor, eps_inside_sqrt: bool = False,
) -> None:
    """AdaGrad: per-coordinate steps shrink with the accumulated squared gradients.

    s_t = s_{t-1} + g_t^2
    w_t = w_{t-1} - lr_t * g_t / (sqrt(s_t) + eps),   lr_t = lr / (1 + (t - 1) * lr_decay)
    (``eps_inside_sqrt``: g_t / sqrt(s_t + eps), as D2L writes it)
    """
    clr = once_per_step(lr / (1 + (step - 1) * lr_decay))
    sum_.addcmul_(grad, grad, value=1)
    descend_ratio_(param, grad, root_mean_square(sum_, eps, eps_inside_sqrt), clr)


def rmsprop_(
    param: Tensor,
    grad: Tensor,
    square_avg: Tensor,
    grad_avg: Tensor | None,
    momentum_buffer: Tensor | None,
    *,
    lr: float | Tensor,
    alpha: float,
    eps: float,
    momentum: float,
    centered: bool,
    eps_inside_sqrt: bool = False,
) -> None:
    """RMSProp: divide by a leaky average of squared gradients (gamma = alpha).

    s_t = alpha * s_{t-1} + (1 - alpha) * g_t^2
    centered: m_t = alpha * m_{t-1} + (1 - alpha) * g_t,  s_t <- s_t - m_t^2
    d_t = g_t / (sqrt(s_t) + eps)          (``eps_inside_sqrt``: g_t / sqrt(s_t + eps), as D2L)
    w_t = w_{t-1} - lr * d_t,  or with momentum: b_t = mu * b_{t-1} + d_t,  w_t = w_{t-1} - lr * b_t
    """
    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    if centered:
        grad_avg.lerp_(grad, 1 - alpha)
        variance = square_avg.addcmul(grad_avg, grad_avg, value=-1)
    else:
        variance = square_avg
    avg = root_mean_square(variance, eps, eps_inside_sqrt)
    if momentum > 0:
        momentum_buffer.mul_(momentum).addcdiv_(grad, avg)
        descend_(param, momentum_buffer, lr)
    else:
        descend_ratio_(param, grad, avg, lr)


def adam_(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor | None,
    *,
    lr: float | Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    step: float | Tensor,
    amsgrad: bool,
    bias_corrected: bool = True,
) -> None:
    """Adam (Kingma & Ba), optionally AMSGrad.

    m_t = beta1 * m_{t-1} + (1 - beta1) * g_t
    v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2          (AMSGrad: v_t <- max(v_max, v_t))
    m_hat = m_t / (1 - beta1^t),  v_hat = v_t / (1 - beta2^t)
    w_t = w_{t-1} - lr * m_hat / (sqrt(v_hat) + eps)

    ``bias_corrected=False`` drops the two corrections: the "huge first step" experiment.
    """
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    if bias_corrected:
        step_size = once_per_step(lr / bias_correction(beta1, step))
        bias_correction2_sqrt = once_per_step(bias_correction(beta2, step) ** 0.5)
    else:
        step_size, bias_correction2_sqrt = lr, 1.0
    second_moment = exp_avg_sq
    if amsgrad:
        max_exp_avg_sq.copy_(max_exp_avg_sq.maximum(exp_avg_sq))
        second_moment = max_exp_avg_sq
    denom = (second_moment.sqrt() / bias_correction2_sqrt).add_(eps)
    descend_ratio_(param, exp_avg, denom, step_size)


# ---------------------------------------------------------------------------------------------
# torch.optim's other classes: Adamax, Adadelta, NAdam, RAdam, ASGD, Rprop, Adafactor, SparseAdam,
# and sparse AdaGrad. The op order follows torch's single-tensor path, so that float64 runs agree
# to rounding; the docstrings give the formula as the papers write it.
# ---------------------------------------------------------------------------------------------


def weight_decayed_gradient(
    param: Tensor, grad: Tensor, *, lr: float, weight_decay: float, decoupled: bool
) -> Tensor:
    """Coupled L2 (g <- g + lambda * w) or decoupled decay (w <- w * (1 - lr * lambda), g unchanged)."""
    if weight_decay == 0:
        return grad
    if decoupled:
        param.mul_(1 - lr * weight_decay)
        return grad
    return grad.add(param, alpha=weight_decay)


def adamax_(
    param: Tensor, grad: Tensor, exp_avg: Tensor, exp_inf: Tensor, *,
    lr: float, beta1: float, beta2: float, eps: float, step: float,
) -> None:
    """AdaMax (Kingma & Ba 2015, section 7.1): Adam with the infinity norm in place of the L2 norm.

    m_t = beta1 * m_{t-1} + (1 - beta1) * g_t
    u_t = max(beta2 * u_{t-1}, |g_t| + eps)          (torch adds eps inside the max)
    w_t = w_{t-1} - (lr / (1 - beta1^t)) * m_t / u_t
    """
    exp_avg.lerp_(grad, 1 - beta1)
    torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps), out=exp_inf)
    param.addcdiv_(exp_avg, exp_inf, value=-lr / bias_correction(beta1, step))


def adadelta_(
    param: Tensor, grad: Tensor, square_avg: Tensor, acc_delta: Tensor, *, lr: float, rho: float, eps: float
) -> None:
    """AdaDelta (Zeiler 2012): the step's units come from a leaky average of past squared updates.

    E[g^2]_t  = rho * E[g^2]_{t-1} + (1 - rho) * g_t^2
    dx_t      = - sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g_t
    E[dx^2]_t = rho * E[dx^2]_{t-1} + (1 - rho) * dx_t^2
    w_t       = w_{t-1} + lr * dx_t          (the paper has no lr: lr = 1, torch's default)
    """
    square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
    std = square_avg.add(eps).sqrt_()
    delta = acc_delta.add(eps).sqrt_().div_(std).mul_(grad)
    acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    param.add_(delta, alpha=-lr)


def nadam_momentum(beta1: float, momentum_decay: float, step: float) -> float:
    """NAdam's momentum schedule (Dozat 2016, after Sutskever et al.): mu_t = beta1 (1 - 0.5 * 0.96^(t psi))."""
    return beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))


def nadam_(
    param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, mu_product: Tensor, *,
    lr: float, beta1: float, beta2: float, eps: float, momentum_decay: float, step: float,
) -> None:
    """NAdam (Dozat 2016): Adam whose momentum looks one step ahead, Nesterov-style.

    mu_t = beta1 (1 - 0.5 * 0.96^(t psi)),   psi = momentum_decay;   Pi_t = prod_{i<=t} mu_i
    m_t  = beta1 * m_{t-1} + (1 - beta1) * g_t
    v_t  = beta2 * v_{t-1} + (1 - beta2) * g_t^2,   v_hat = v_t / (1 - beta2^t)
    w_t  = w_{t-1} - lr * [ (1 - mu_t) / (1 - Pi_t) * g_t + mu_{t+1} / (1 - Pi_{t+1}) * m_t ] / (sqrt(v_hat) + eps)

    ``mu_product`` (a 0-d tensor, state ``mu_product``) holds Pi_{t-1} and is advanced to Pi_t here.
    """
    mu = nadam_momentum(beta1, momentum_decay, step)
    mu_next = nadam_momentum(beta1, momentum_decay, step + 1)
    mu_product.mul_(mu)
    product = mu_product.item()
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = exp_avg_sq.div(bias_correction(beta2, step)).sqrt().add_(eps)
    param.addcdiv_(grad, denom, value=-lr * (1.0 - mu) / (1.0 - product))
    param.addcdiv_(exp_avg, denom, value=-lr * mu_next / (1.0 - product * mu_next))


def radam_rectification(beta2: float, step: float) -> float | None:
    """RAdam's variance rectification r_t, or None while the approximated SMA length rho_t <= 5.

    rho_inf = 2 / (1 - beta2) - 1,   rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
    r_t = sqrt( (rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t) )
    """
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction(beta2, step)
    if rho_t <= 5.0:
        return None
    return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


def radam_(
    param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, *,
    lr: float, beta1: float, beta2: float, eps: float, step: float,
) -> None:
    """RAdam (Liu et al. 2020): Adam whose adaptive step is switched on once its variance is tractable.

    m_t = beta1 * m_{t-1} + (1 - beta1) * g_t,   m_hat = m_t / (1 - beta1^t)
    v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2
    if rho_t > 5:  w_t = w_{t-1} - lr * m_hat * r_t * sqrt(1 - beta2^t) / (sqrt(v_t) + eps)
    else:          w_t = w_{t-1} - lr * m_hat             (SGD with momentum while rho_t <= 5)
    (r_t, rho_t: :func:`radam_rectification`)
    """
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    corrected = exp_avg / bias_correction(beta1, step)
    rect = radam_rectification(beta2, step)
    if rect is None:
        param.add_(corrected * lr, alpha=-1.0)
        return
    adaptive = bias_correction(beta2, step) ** 0.5 / exp_avg_sq.sqrt().add_(eps)
    param.add_(corrected * lr * adaptive * rect, alpha=-1.0)


def asgd_(
    param: Tensor, grad: Tensor, ax: Tensor, eta: Tensor, mu: Tensor, *,
    lr: float, lambd: float, alpha: float, t0: float, step: float,
) -> None:
    """Averaged SGD (Polyak & Juditsky 1992) with the step sizes of Bottou's ASGD (Xu 2011).

    w_t   = w_{t-1} (1 - lambda eta_t) - eta_t g_t
    ax_t  = ax_{t-1} + mu_t (w_t - ax_{t-1})           (ax_t = w_t while mu_t = 1, i.e. t <= t0 + 1)
    eta_{t+1} = lr / (1 + lambda lr t)^alpha,    mu_{t+1} = 1 / max(1, t - t0)

    ``eta`` and ``mu`` are 0-d tensors (state keys ``eta``, ``mu``) advanced here; ``ax`` holds
    the average, which is what to evaluate (torch leaves the parameters at w_t too).
    """
    eta_value = eta.item()
    param.mul_(1 - lambd * eta_value)
    param.add_(grad, alpha=-eta_value)
    if mu.item() != 1:
        ax.add_(param.sub(ax).mul_(mu))
    else:
        ax.copy_(param)
    eta.copy_(torch.as_tensor(lr / ((1 + lambd * lr * step) ** alpha)))
    mu.copy_(torch.as_tensor(1 / max(1, step - t0)))


def rprop_(
    param: Tensor, grad: Tensor, prev: Tensor, step_size: Tensor, *,
    etaminus: float, etaplus: float, step_size_min: float, step_size_max: float,
) -> None:
    """Rprop (Riedmiller & Braun 1993), the variant that skips the update after a sign change.

    s_t = g_t * g_{t-1}
    Delta_t = min(Delta_{t-1} eta+, Delta_max)  if s_t > 0;  max(Delta_{t-1} eta-, Delta_min)  if s_t < 0;
              Delta_{t-1} (clamped) otherwise;   and g_t <- 0 where s_t < 0
    w_t = w_{t-1} - sign(g_t) * Delta_t,     g_{t-1} <- g_t   (state ``prev``)
    """
    factor = grad.mul(prev).sign()
    factor[factor.gt(0)] = etaplus
    factor[factor.lt(0)] = etaminus
    factor[factor.eq(0)] = 1
    step_size.mul_(factor).clamp_(step_size_min, step_size_max)
    grad = grad.clone(memory_format=torch.preserve_format)
    grad[factor.eq(etaminus)] = 0
    param.addcmul_(grad.sign(), step_size, value=-1)
    prev.copy_(grad)


def adafactor_(
    param: Tensor, grad: Tensor, row_var: Tensor | None, col_var: Tensor | None, variance: Tensor | None, *,
    lr: float, beta2_decay: float, eps1: float, eps2: float, d: float, weight_decay: float, step: float,
) -> None:
    """Adafactor (Shazeer & Stern 2018, Algorithm 4), as torch implements it (no first moment).

    beta2_hat_t = 1 - t^c  (c = beta2_decay),   rho_t = min(lr, 1/sqrt(t)),
    alpha_t = max(eps2, RMS(w_{t-1})) * rho_t
    matrix (factored over the last two dims):
        R_t = beta2_hat R_{t-1} + (1 - beta2_hat) mean_cols(g^2);  C_t likewise over rows
        V_hat_t = R_t C_t / mean(R_t)                        (clamped below by eps1)
    vector:  V_hat_t = beta2_hat V_hat_{t-1} + (1 - beta2_hat) g^2
    U_t = g_t / sqrt(V_hat_t),    w_t = w_{t-1} (1 - lr lambda) - alpha_t * U_t / max(1, RMS(U_t) / d)
    """
    one_minus_beta2 = step**beta2_decay
    rho = min(lr, 1 / (step**0.5))
    alpha = max(eps2, param.norm(2).item() / (param.numel() ** 0.5)) * rho
    if weight_decay != 0:
        param.mul_(1 - lr * weight_decay)
    if grad.dim() > 1:
        row_mean = torch.norm(grad, dim=-1, keepdim=True).square_().div_(grad.size(-1))
        row_var.lerp_(row_mean, one_minus_beta2)
        col_mean = torch.norm(grad, dim=-2, keepdim=True).square_().div_(grad.size(-2))
        col_var.lerp_(col_mean, one_minus_beta2)
        var_estimate = row_var @ col_var
        var_estimate.div_(row_var.mean(dim=-2, keepdim=True).clamp_(min=eps1))
    else:
        variance.lerp_(grad * grad, one_minus_beta2)
        var_estimate = variance.clone()
    update = var_estimate.clamp_(min=eps1 * eps1).rsqrt_().mul_(grad)
    denom = max(1.0, update.norm(2).item() / ((update.numel() ** 0.5) * d))
    param.add_(update, alpha=-alpha / denom)


def _sparse_like(grad: Tensor, values: Tensor) -> Tensor:
    """A sparse COO tensor with `grad`'s (coalesced) indices and the given values."""
    indices = grad._indices()
    if indices.dim() == 0 or values.dim() == 0:
        return grad.new().resize_as_(grad)
    return grad.new(indices, values, grad.size())


def adagrad_sparse_(param: Tensor, grad: Tensor, sum_: Tensor, *, lr: float, lr_decay: float, eps: float,
                    step: float) -> None:
    """AdaGrad on a sparse gradient: the rule of :func:`adagrad_` applied to the stored rows only."""
    clr = lr / (1 + (step - 1) * lr_decay)
    grad = grad.coalesce()  # the update is non-linear: indices must be unique
    values = grad._values()
    sum_.add_(_sparse_like(grad, values.pow(2)))
    std = sum_.sparse_mask(grad)._values().sqrt_().add_(eps)
    param.add_(_sparse_like(grad, values / std), alpha=-clr)


def sparse_adam_(
    param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, *,
    lr: float, beta1: float, beta2: float, eps: float, step: int,
) -> None:
    """Lazy Adam (torch's SparseAdam): the rule of :func:`adam_` on the rows a sparse gradient touches.

    Rows outside the gradient keep their moments and their values (the moments of those rows do not
    decay: the "lazy" approximation of Adam for embeddings).
    """
    grad = grad.coalesce()
    values = grad._values()
    if values.numel() == 0:
        return
    old_exp_avg = exp_avg.sparse_mask(grad)._values()
    exp_avg_update = values.sub(old_exp_avg).mul_(1 - beta1)
    exp_avg.add_(_sparse_like(grad, exp_avg_update))
    old_exp_avg_sq = exp_avg_sq.sparse_mask(grad)._values()
    exp_avg_sq_update = values.pow(2).sub_(old_exp_avg_sq).mul_(1 - beta2)
    exp_avg_sq.add_(_sparse_like(grad, exp_avg_sq_update))
    numerator = exp_avg_update.add_(old_exp_avg)
    denom = exp_avg_sq_update.add_(old_exp_avg_sq).sqrt_().add_(eps)
    step_size = lr * bias_correction(beta2, step) ** 0.5 / bias_correction(beta1, step)
    param.add_(_sparse_like(grad, -step_size * numerator.div_(denom)))
# --- beyond torch.optim: Lion, Schedule-Free, AdEMAMix ----------------------------------------


def lion_(
    param: Tensor, grad: Tensor, exp_avg: Tensor, *, lr: float | Tensor, beta1: float, beta2: float,
    weight_decay: float,
) -> None:
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2).

    c_t = beta1 * m_{t-1} + (1 - beta1) * g_t
    w_t = w_{t-1} - lr * (sign(c_t) + lambda * w_{t-1})     (decay written as w <- w * (1 - lr * lambda) first)
    m_t = beta2 * m_{t-1} + (1 - beta2) * g_t
    Every coordinate moves by exactly lr: the sign discards the magnitude that Adam divides out.
    """
    if weight_decay != 0:
        param.mul_(1 - lr * weight_decay)
    direction = exp_avg.mul(beta1).add_(grad, alpha=1 - beta1).sign_()
    descend_(param, direction, lr)
    exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)


def schedule_free_(
    y: Tensor, z: Tensor, direction: Tensor, *, lr: float | Tensor, beta: float, ckp1: float | Tensor,
) -> None:
    """One Schedule-Free step (Defazio et al. 2024, "The Road Less Scheduled", eq. 1-3).

    With the base point z, the average x and the gradient point y = (1 - beta) z + beta x:
    z_{t+1} = z_t - lr * d_t                        (d_t: the direction, evaluated at y_t)
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}    (c_{t+1} = ckp1, the averaging weight)
    y_{t+1} = (1 - beta) z_{t+1} + beta x_{t+1}
    Only y (the parameter) and z are stored; y_{t+1} is written from y_t without forming x:
    y <- y + c (z - y);  y <- y + lr * (beta (1 - c) - 1) * d.
    """
    y.lerp_(z, ckp1)
    descend_(y, direction, lr * (1 - beta * (1 - ckp1)))
    descend_(z, direction, lr)


def schedule_free_to_average_(y: Tensor, z: Tensor, beta: float) -> None:
    """The parameter from y to the average x (``optimizer.eval()``): x = y + (1 - 1/beta) (z - y)."""
    y.lerp_(z, 1 - 1 / beta)


def schedule_free_to_gradient_point_(x: Tensor, z: Tensor, beta: float) -> None:
    """The parameter from x back to y (``optimizer.train()``): y = (1 - beta) z + beta x."""
    x.lerp_(z, 1 - beta)


def schedule_free_adam_direction(
    grad: Tensor, exp_avg_sq: Tensor, y: Tensor, *, beta2: float, eps: float, weight_decay: float,
    bias_correction2: float | Tensor,
) -> Tensor:
    """Schedule-Free AdamW's direction: the gradient over Adam's root mean square, plus decay at y.

    v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2
    d_t = g_t / (sqrt(v_t / (1 - beta2^t)) + eps) + lambda * y_t
    """
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    direction = grad / (exp_avg_sq / bias_correction2).sqrt_().add_(eps)
    if weight_decay != 0:
        direction.add_(y, alpha=weight_decay)
    return direction


def ademamix_alpha(step: float | Tensor, alpha: float, warmup: float | None) -> float | Tensor:
    """AdEMAMix's alpha scheduler: alpha_t = min(t * alpha / T, alpha) (alpha when T is None)."""
    if warmup is None:
        return alpha
    value = step * alpha / warmup
    return value.clamp(max=alpha) if isinstance(value, Tensor) else min(value, alpha)


def ademamix_beta3(step: float | Tensor, beta1: float, beta3: float, warmup: float | None) -> float | Tensor:
    """AdEMAMix's beta3 scheduler, linear in the half-life (Pagliardini et al. 2024, eq. 5):

    beta3_t = min(exp(ln(b1) ln(b3) / ((1 - t/T) ln(b3) + (t/T) ln(b1))), b3)   (b3 when T is None)
    """
    if warmup is None:
        return beta3
    log1, log3 = math.log(beta1), math.log(beta3)
    fraction = step / warmup
    exponent = log1 * log3 / ((1 - fraction) * log3 + fraction * log1)
    if isinstance(exponent, Tensor):
        return exponent.exp().clamp(max=beta3)
    return min(math.exp(exponent), beta3)


def ademamix_(
    param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, exp_avg_slow: Tensor, *,
    lr: float | Tensor, beta1: float, beta2: float, beta3: float | Tensor, alpha: float | Tensor, eps: float,
    step: float | Tensor,
) -> None:
    """AdEMAMix (Pagliardini et al. 2024, "The AdEMAMix Optimizer: Better, Faster, Older", Algorithm 1).

    m1_t = beta1 * m1_{t-1} + (1 - beta1) * g_t          (fast EMA, bias-corrected)
    m2_t = beta3 * m2_{t-1} + (1 - beta3) * g_t          (slow EMA, not corrected)
    v_t  = beta2 * v_{t-1}  + (1 - beta2) * g_t^2
    w_t  = w_{t-1} - lr * (m1_t / (1 - beta1^t) + alpha * m2_t) / (sqrt(v_t / (1 - beta2^t)) + eps)
    (beta3 and alpha are the scheduled beta3_t, alpha_t of :func:`ademamix_beta3`, :func:`ademamix_alpha`)
    """
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    exp_avg_slow.lerp_(grad, 1 - beta3)
    bias_correction1 = once_per_step(bias_correction(beta1, step))
    bias_correction2_sqrt = once_per_step(bias_correction(beta2, step) ** 0.5)
    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    update = (exp_avg / bias_correction1).add_(exp_avg_slow * alpha)
    descend_ratio_(param, update, denom, lr)
