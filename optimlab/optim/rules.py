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

import torch
from torch import Tensor


@torch.library.custom_op("optimlab::scalar_once", mutates_args=())
def _scalar_once(value: Tensor) -> Tensor:
    return value.clone()


@_scalar_once.register_fake
def _(value: Tensor) -> Tensor:
    return torch.empty_like(value)


def once_per_step(value: float | Tensor) -> float | Tensor:
    """A step-dependent coefficient, computed once per step (a float, or a 0-d tensor that the
    compiler must not recompute inside the elementwise loop: the call is opaque to inductor)."""
    return _scalar_once(value) if isinstance(value, Tensor) else value


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
