"""The update rules, each written once, as in-place elementwise tensor math.

Every function here takes tensors that are either one parameter or one flat buffer holding a
whole param group (the caller decides), plus plain numbers. None of them loops over tensors,
checks devices or branches on dtypes. The formulas follow the notes (D2L chapter 11) and the
conventions of torch.optim where libraries differ:

* momentum is ``v = mu*v + (1 - dampening)*g`` (torch), not ``v = beta*v + lr*g`` (D2L); the two
  are the same method with the lr moved in or out of the velocity;
* eps is added *outside* the square root (torch, Kingma & Ba); D2L writes it inside for RMSProp.

The step counter ``step`` is the number of this update, starting at 1.
"""

from __future__ import annotations

from torch import Tensor


def bias_correction(beta: float, step: int | float) -> float:
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


def sgd_(
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Tensor | None,
    *,
    lr: float,
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
    param.add_(grad, alpha=-lr)


def adagrad_(
    param: Tensor, grad: Tensor, sum_: Tensor, *, lr: float, lr_decay: float, eps: float, step: float
) -> None:
    """AdaGrad: per-coordinate steps shrink with the accumulated squared gradients.

    s_t = s_{t-1} + g_t^2
    w_t = w_{t-1} - lr_t * g_t / (sqrt(s_t) + eps),   lr_t = lr / (1 + (t - 1) * lr_decay)
    """
    clr = lr / (1 + (step - 1) * lr_decay)
    sum_.addcmul_(grad, grad, value=1)
    std = sum_.sqrt().add_(eps)
    param.addcdiv_(grad, std, value=-clr)


def rmsprop_(
    param: Tensor,
    grad: Tensor,
    square_avg: Tensor,
    grad_avg: Tensor | None,
    momentum_buffer: Tensor | None,
    *,
    lr: float,
    alpha: float,
    eps: float,
    momentum: float,
    centered: bool,
) -> None:
    """RMSProp: divide by a leaky average of squared gradients (gamma = alpha).

    s_t = alpha * s_{t-1} + (1 - alpha) * g_t^2
    centered: m_t = alpha * m_{t-1} + (1 - alpha) * g_t,  s_t <- s_t - m_t^2
    d_t = g_t / (sqrt(s_t) + eps)
    w_t = w_{t-1} - lr * d_t,  or with momentum: b_t = mu * b_{t-1} + d_t,  w_t = w_{t-1} - lr * b_t
    """
    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    if centered:
        grad_avg.lerp_(grad, 1 - alpha)
        avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
    else:
        avg = square_avg.sqrt()
    avg.add_(eps)
    if momentum > 0:
        momentum_buffer.mul_(momentum).addcdiv_(grad, avg)
        param.add_(momentum_buffer, alpha=-lr)
    else:
        param.addcdiv_(grad, avg, value=-lr)


def adam_(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor | None,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    step: float,
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
        step_size = lr / bias_correction(beta1, step)
        bias_correction2_sqrt = bias_correction(beta2, step) ** 0.5
    else:
        step_size, bias_correction2_sqrt = lr, 1.0
    second_moment = exp_avg_sq
    if amsgrad:
        max_exp_avg_sq.copy_(max_exp_avg_sq.maximum(exp_avg_sq))
        second_moment = max_exp_avg_sq
    denom = (second_moment.sqrt() / bias_correction2_sqrt).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-step_size)
