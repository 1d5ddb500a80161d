"""Newton's method with the exact Hessian of the loss, for problems with a few thousand parameters."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.overrides import TorchFunctionMode

from .base import clone_tensors
from .validate import check_lr, check_nonnegative, check_positive_int

MODES = ("saddle_free", "plain")
DEFAULT_MAX_PARAMS = 2000  # a 2000 x 2000 Hessian: 2000 batched backward passes, 32 MB in float64
RELATIVE_CURVATURE_FLOOR = 1e-12  # curvature below this times the largest counts as none


class BackwardKeepsGraph(TorchFunctionMode):
    """Within this mode, ``loss.backward()`` keeps its graph (``retain_graph=True``), in this thread only.

    A closure written for torch's LBFGS calls ``loss.backward()``, which frees the graph that
    Newton still needs to differentiate the gradient a second time. ``Tensor.backward`` dispatches
    through ``__torch_function__``, and a torch-function mode is thread-local: nothing is patched,
    other threads and ``torch.autograd.backward`` itself are untouched. (A closure that calls
    ``torch.autograd.backward(loss)`` directly frees the graph; Newton then says so.)
    """

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        if func is Tensor.backward:
            bound = _TENSOR_BACKWARD.bind(*args, **kwargs)
            bound.arguments["retain_graph"] = True
            return func(*bound.args, **bound.kwargs)
        return func(*args, **kwargs)


_TENSOR_BACKWARD = inspect.signature(Tensor.backward)


def flat_gradient_and_hessian(loss: Tensor, params: list[Tensor]) -> tuple[Tensor, Tensor]:
    """The gradient g (n,) and the exact Hessian H (n, n) of ``loss`` over ``params``, flattened.

    g comes from one backward pass with ``create_graph=True``; the n rows of H = d g / d w from
    one batched (vmapped) backward pass of g against the identity, or n plain passes when an
    operation has no batching rule.
    """
    grads = torch.autograd.grad(loss, params, create_graph=True, materialize_grads=True)
    flat_grad = torch.cat([g.reshape(-1) for g in grads])
    n = flat_grad.numel()
    if not flat_grad.requires_grad:  # the loss is linear in the parameters: H = 0
        return flat_grad.detach(), flat_grad.new_zeros(n, n)
    identity = torch.eye(n, dtype=flat_grad.dtype, device=flat_grad.device)
    try:
        rows = torch.autograd.grad(
            flat_grad, params, grad_outputs=identity, retain_graph=True, is_grads_batched=True,
            materialize_grads=True,
        )
        hessian = torch.cat([r.reshape(n, -1) for r in rows], dim=1)
    except RuntimeError:  # an op without a vmap rule: one backward pass per row
        hessian = torch.stack([
            torch.cat([r.reshape(-1) for r in torch.autograd.grad(
                flat_grad, params, grad_outputs=row, retain_graph=True, materialize_grads=True)])
            for row in identity
        ])
    return flat_grad.detach(), hessian.detach()


def newton_direction(hessian: Tensor, grad: Tensor, damping: float, mode: str) -> tuple[Tensor, bool]:
    """The Newton direction and whether ``H + damping*I`` was positive definite.

    * positive definite: ``d = -(H + damping*I)^{-1} g`` by a Cholesky solve (both modes);
    * otherwise, with ``H = V diag(lambda) V^T`` and ``d = -V diag(1 / c) V^T g``:
      ``mode="plain"``: ``c = lambda + damping``, the textbook step, attracted to saddles and
      maxima; ``mode="saddle_free"``: ``c = |lambda| + damping`` (Dauphin et al. 2014), which
      descends along negative-curvature directions instead of climbing them.

    Where ``|c|`` is below 1e-12 of the largest (no curvature: Newton's step is undefined there,
    as at an inflection point or along an unused parameter) ``c = 1``: a gradient step.
    """
    identity = torch.eye(hessian.shape[0], dtype=hessian.dtype, device=hessian.device)
    factor, info = torch.linalg.cholesky_ex(hessian + damping * identity)
    if info.item() == 0:
        return -torch.cholesky_solve(grad.unsqueeze(1), factor).squeeze(1), True
    eigenvalues, eigenvectors = torch.linalg.eigh(hessian)
    curvature = eigenvalues + damping if mode == "plain" else eigenvalues.abs() + damping
    floor = RELATIVE_CURVATURE_FLOOR * curvature.abs().max().clamp_min(torch.finfo(curvature.dtype).tiny)
    inverse = torch.where(curvature.abs() > floor, 1.0 / curvature, torch.ones_like(curvature))
    return -(eigenvectors @ (inverse * (eigenvectors.T @ grad))), False


class Newton(Optimizer):
    r"""Newton's method with the exact Hessian of the loss over all parameters.

    .. code-block:: text

        input: lr (eta), damping (mu), mode
        for t = 1, 2, ...
            f, g, H <- loss, gradient and Hessian at w_{t-1}      (one closure call, autograd)
            if H + mu*I is positive definite:  d <- -(H + mu*I)^{-1} g
            elif mode = "plain":                d <- -(H + mu*I)^{-1} g     (textbook)
            else ("saddle_free"):               d <- -(|H| + mu*I)^{-1} g   (|H| = V |Lambda| V^T)
            w_t <- w_{t-1} + eta * d
        return f(w_{t-1})

    On a positive-definite quadratic one step with ``lr=1`` lands on the minimum. Where H is
    not positive definite the textbook step heads for the critical point of the local quadratic
    model, whatever it is. On the saddle ``f(x, y) = x^2 - y^2`` (H = diag(2, -2)) from (x, y):

    * ``mode="plain"`` steps to (0, 0), the saddle point, in one step, and stays there;
    * ``mode="saddle_free"`` (default) steps to (0, 2y): it solves the x direction exactly and
      doubles the distance from the saddle along y, where f decreases (descent, not ascent).

    On D2L's ``f(x) = x cos(cx)`` the plain step also jumps to nearby maxima where f'' < 0.
    In directions without curvature (an inflection point, a linear loss) Newton's step is
    undefined; both modes take a gradient step there (see :func:`newton_direction`).

    Closure contract: ``step(closure)`` requires a closure that computes the loss from the
    parameters with autograd enabled and returns it. It may call ``loss.backward()`` (as closures
    for LBFGS do): during the call ``backward`` keeps the graph (see :class:`BackwardKeepsGraph`),
    so the Hessian is still available; the ``.grad`` it writes is left as it is. The closure is
    called once per step.

    Args:
        params: the parameters (one param group; the Hessian couples all of them).
        lr: step scale eta ("Newton with a learning rate"); 1 is the pure Newton step.
        damping: mu >= 0 added to the Hessian's diagonal (Levenberg); shortens the step.
        mode: ``"saddle_free"`` (default) or ``"plain"`` (textbook H^{-1} g); see above.
        max_params: refuse problems with more parameters (the Hessian has n^2 entries and costs
            n backward passes); default 2000.
        fused: accepted for the shared signature; Newton always works on one flat vector.

    State (on the first parameter, as torch's LBFGS): ``n_iter`` (steps taken),
    ``positive_definite`` (of the last damped Hessian).

    Example:
        >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> opt = Newton([w])
        >>> def closure():
        ...     opt.zero_grad(); loss = (w[0] - 3) ** 2 + 10 * (w[1] + 1) ** 2; loss.backward(); return loss
        >>> _ = opt.step(closure)   # w is now (3, -1)

    References: Nocedal & Wright, "Numerical Optimization", ch. 3.4; Dauphin et al.,
    "Identifying and attacking the saddle point problem", NeurIPS 2014; D2L 12.3.
    """

    needs_closure = True  # step() must be given a closure (the engine reads this)

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        damping: float = 0.0,
        mode: str = "saddle_free",
        max_params: int = DEFAULT_MAX_PARAMS,
        *,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(lr=lr, damping=damping, mode=mode, max_params=max_params, fused=fused)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(
                f"Newton takes one param group (got {len(self.param_groups)}): the Hessian couples all parameters"
            )
        self._check_group(self.param_groups[0])

    def _check_group(self, group: dict[str, Any]) -> None:
        """The hyperparameters, the parameter count against max_params, real parameters only."""
        check_lr(group["lr"])
        check_nonnegative("damping", group["damping"])
        check_positive_int("max_params", group["max_params"])
        if group["mode"] not in MODES:
            raise ValueError(f"mode={group['mode']!r} must be one of: {', '.join(MODES)}")
        count = sum(p.numel() for p in group["params"])
        if count > group["max_params"]:
            raise ValueError(
                f"Newton: {count} parameters exceed max_params={group['max_params']} "
                f"(the Hessian would have {count}^2 entries); raise max_params or use LBFGS"
            )
        if any(p.is_complex() for p in group["params"]):
            raise ValueError("Newton: complex parameters are not supported")

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:  # type: ignore[override]
        """One Newton step; returns the loss at the parameters before the step."""
        if closure is None:
            raise ValueError(
                "Newton.step() requires a closure that recomputes the loss and returns it "
                "(the Hessian is computed from it): opt.step(closure)"
            )
        group = self.param_groups[0]
        self._check_group(group)
        params = [p for p in group["params"] if p.requires_grad]
        with torch.enable_grad(), BackwardKeepsGraph():
            loss = closure()
        if not isinstance(loss, Tensor) or loss.grad_fn is None:
            raise ValueError(
                "Newton: the closure must return the loss as a tensor computed from the parameters with autograd"
            )
        try:
            with torch.enable_grad():
                grad, hessian = flat_gradient_and_hessian(loss, params)
        except RuntimeError as error:
            if "second time" not in str(error):
                raise
            raise ValueError("Newton: the closure freed the loss's graph (torch.autograd.backward(loss)); "
                             "call loss.backward() or no backward at all") from None
        direction, positive_definite = newton_direction(hessian, grad, group["damping"], group["mode"])
        offset = 0
        for p in params:
            p.add_(direction[offset:offset + p.numel()].view_as(p), alpha=group["lr"])
            offset += p.numel()
        state = self.state[group["params"][0]]
        state["n_iter"] = state.get("n_iter", 0) + 1
        state["positive_definite"] = positive_definite
        return loss.detach()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict without aliasing its tensors; missing group keys get the defaults."""
        super().load_state_dict(clone_tensors(state_dict))
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
