"""L-BFGS: a quasi-Newton method that builds H^{-1} g from the last few (s, y) pairs.

A drop-in for ``torch.optim.LBFGS``: same arguments, defaults, state keys and decisions (the
same iterations and function evaluations), so that state_dicts move between the two. The two
pieces of mathematics live in their own functions: :func:`two_loop_direction` (the two-loop
recursion) and :func:`strong_wolfe_search` (bracketing and zoom with cubic interpolation, in
:mod:`optimlab.optim.line_search`).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor
from torch.optim import Optimizer

from .base import clone_tensors
from .line_search import strong_wolfe_search
from .validate import check_lr, check_nonnegative, check_positive_int

LINE_SEARCHES = (None, "strong_wolfe")
CURVATURE_MIN = 1e-10  # a pair (s, y) enters the history only if y^T s exceeds this


def two_loop_direction(
    grad: Tensor, old_dirs: list[Tensor], old_stps: list[Tensor], ro: list[Tensor], H_diag: Any, al: list[Any]
) -> Tensor:
    """The quasi-Newton direction d = -H_k g by the two-loop recursion (Nocedal & Wright, Alg. 7.4).

    The history holds, oldest first, ``old_stps[i] = s_i = w_{i+1} - w_i``, ``old_dirs[i] =
    y_i = g_{i+1} - g_i`` and ``ro[i] = 1 / (y_i^T s_i)`` (torch's key names). H_0 = H_diag * I with
    H_diag = s^T y / y^T y of the newest pair. ``al`` is scratch space for the alphas.

        q <- -g
        for i = newest .. oldest:  alpha_i <- rho_i s_i^T q;  q <- q - alpha_i y_i
        r <- H_diag * q
        for i = oldest .. newest:  beta <- rho_i y_i^T r;    r <- r + (alpha_i - beta) s_i
        return r
    """
    q = grad.neg()
    for i in range(len(old_dirs) - 1, -1, -1):
        al[i] = old_stps[i].dot(q) * ro[i]
        q.add_(old_dirs[i], alpha=-al[i])
    r = torch.mul(q, H_diag)
    for i in range(len(old_dirs)):
        beta = old_dirs[i].dot(r) * ro[i]
        r.add_(old_stps[i], alpha=al[i] - beta)
    return r


def remember_pair(
    y: Tensor, s: Tensor, old_dirs: list[Tensor], old_stps: list[Tensor], ro: list[Tensor], history_size: int
) -> Tensor | None:
    """Append (s, y) to the history, dropping the oldest pair when full; return the new H_diag.

    The pair is skipped (returns None) unless y^T s > 1e-10: the curvature condition that keeps
    the implied inverse Hessian positive definite.
    """
    ys = y.dot(s)
    if not ys > CURVATURE_MIN:
        return None
    if len(old_dirs) == history_size:
        old_dirs.pop(0)
        old_stps.pop(0)
        ro.pop(0)
    old_dirs.append(y)
    old_stps.append(s)
    ro.append(1.0 / ys)
    return ys / y.dot(y)


class LBFGS(Optimizer):
    r"""L-BFGS (Liu & Nocedal 1989), a drop-in for ``torch.optim.LBFGS``.

    .. code-block:: text

        input: lr, max_iter, max_eval, tolerance_grad, tolerance_change, history_size m
        each step(closure): f, g <- closure() at w
            if max|g| <= tolerance_grad: return
            repeat up to max_iter times:
                d <- -g on the very first iteration, else the two-loop direction -H g over the
                     last m pairs (s = t d, y = g_new - g_old; pairs with y^T s <= 1e-10 skipped)
                t <- lr * min(1, 1/|g|_1) on the very first iteration, else lr
                stop if g^T d > -tolerance_change (not a descent direction)
                w <- w + t d, with t from a strong-Wolfe line search if line_search_fn is set,
                     else the fixed t (and f, g re-evaluated unless this is the last iteration)
                stop if max_eval evaluations are spent, max|g| <= tolerance_grad,
                     max|t d| <= tolerance_change or |f - f_prev| < tolerance_change
        return f at the start of the step

    Args:
        params: the parameters (one param group, as torch).
        lr: step length before any line search (default 1).
        max_iter: iterations per ``step()`` call (default 20).
        max_eval: closure evaluations per ``step()`` call (default ``max_iter * 5 // 4``).
        tolerance_grad: stop when the largest gradient entry is at most this (default 1e-7).
        tolerance_change: stop when the step or the loss change is below this (default 1e-9).
        history_size: number m of (s, y) pairs kept (default 100).
        line_search_fn: ``None`` (fixed step) or ``"strong_wolfe"`` (c1 = 1e-4, c2 = 0.9).
        fused: accepted for the shared signature; L-BFGS always works on one flat vector.

    Closure: ``step(closure)`` requires a closure that zeroes the gradients, computes the loss,
    calls ``loss.backward()`` and returns the loss; it is called several times per step.

    State (on the first parameter, torch's keys): ``func_evals``, ``n_iter``, ``d``, ``t``,
    ``old_dirs`` (the y's), ``old_stps`` (the s's), ``ro``, ``H_diag``, ``al``,
    ``prev_flat_grad``, ``prev_loss``. Memory: about ``(2 * history_size + 3) * n`` numbers.

    Example:
        >>> w = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
        >>> opt = LBFGS([w], line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad(); loss = (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2
        ...     loss.backward(); return loss
        >>> _ = opt.step(closure)

    References: Nocedal & Wright, "Numerical Optimization", ch. 7.2 (two-loop recursion) and
    3.5 (line search); minFunc (M. Schmidt), whose decisions torch.optim.LBFGS reproduces.
    """

    needs_closure = True  # step() must be given a closure (the engine reads this)

    def __init__(
        self,
        params: Any,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
        *,
        fused: bool | None = None,
    ) -> None:
        check_lr(lr)
        check_positive_int("max_iter", max_iter)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        check_positive_int("max_eval", max_eval)
        check_nonnegative("tolerance_grad", tolerance_grad)
        check_nonnegative("tolerance_change", tolerance_change)
        check_positive_int("history_size", history_size)
        if line_search_fn not in LINE_SEARCHES:
            raise ValueError(f"line_search_fn={line_search_fn!r} must be None or 'strong_wolfe'")
        defaults = dict(
            lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn,
        )
        if fused is not None:
            defaults["fused"] = fused
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(f"LBFGS takes one param group (got {len(self.param_groups)}), as torch.optim.LBFGS")
        check_lr(self.param_groups[0]["lr"])  # a group dict may carry its own lr
        if any(p.is_complex() for p in self._params):
            raise ValueError("LBFGS: complex parameters are not supported")

    # -- the parameters as one flat vector ------------------------------------------------------
    @property
    def _params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def _flat_grad(self) -> Tensor:
        views = []
        for p in self._params:
            if p.grad is None:
                views.append(p.new_zeros(p.numel()))
            else:
                views.append((p.grad.to_dense() if p.grad.is_sparse else p.grad).reshape(-1))
        return torch.cat(views)

    def _move(self, t: Any, direction: Tensor) -> None:
        """w <- w + t * direction, the flat direction split back into the parameters."""
        offset = 0
        for p in self._params:
            p.add_(direction[offset:offset + p.numel()].view_as(p), alpha=t)
            offset += p.numel()

    def _evaluate_along(self, closure: Callable[[], Any], start: list[Tensor], t: Any, d: Tensor) -> tuple[float, Tensor]:
        """f and g at w + t d (for the line search); the parameters are put back to ``start``."""
        self._move(t, d)
        loss = float(closure())
        flat_grad = self._flat_grad()
        for p, value in zip(self._params, start):
            p.copy_(value)
        return loss, flat_grad

    # -- the step -------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Up to ``max_iter`` L-BFGS iterations; returns the loss before them."""
        if closure is None:
            raise ValueError(
                "LBFGS.step() requires a closure that zeroes the gradients, computes the loss, "
                "calls loss.backward() and returns the loss: opt.step(closure)"
            )
        if len(self.param_groups) != 1:
            raise ValueError(f"LBFGS takes one param group (got {len(self.param_groups)})")
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]

        state = self.state[self._params[0]]  # the global state lives on the first parameter, as torch
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if flat_grad.abs().max() <= tolerance_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag, prev_flat_grad, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")

        for iteration in range(1, max_iter + 1):
            state["n_iter"] += 1
            if state["n_iter"] == 1:  # the first iteration ever: steepest descent
                d = flat_grad.neg()
                old_dirs, old_stps, ro, H_diag = [], [], [], 1
            else:
                new_H_diag = remember_pair(
                    flat_grad.sub(prev_flat_grad), d.mul(t), old_dirs, old_stps, ro, group["history_size"]
                )
                if new_H_diag is not None:
                    H_diag = new_H_diag
                al = state.setdefault("al", [None] * group["history_size"])
                d = two_loop_direction(flat_grad, old_dirs, old_stps, ro, H_diag, al)

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.clone(memory_format=torch.contiguous_format)
            else:
                prev_flat_grad.copy_(flat_grad)
            prev_loss = loss

            # the first step ever is scaled so that it moves at most lr in the l1 norm
            t = min(1.0, 1.0 / flat_grad.abs().sum()) * lr if state["n_iter"] == 1 else lr
            gtd = flat_grad.dot(d)
            if gtd > -tolerance_change:
                break

            if group["line_search_fn"] == "strong_wolfe":
                start = [p.clone(memory_format=torch.contiguous_format) for p in self._params]
                loss, flat_grad, t, step_evals = strong_wolfe_search(
                    lambda t_, d_: self._evaluate_along(closure, start, t_, d_),
                    t, d, loss, flat_grad, gtd, max_ls=max_eval - evals,
                )
                self._move(t, d)
                converged = flat_grad.abs().max() <= tolerance_grad
            else:
                self._move(t, d)
                step_evals = 0
                if iteration != max_iter:  # the last iteration's loss is evaluated by the next step
                    loss = float(closure())
                    flat_grad = self._flat_grad()
                    converged = flat_grad.abs().max() <= tolerance_grad
                    step_evals = 1
            evals += step_evals
            state["func_evals"] += step_evals

            if iteration == max_iter or evals >= max_eval or converged:
                break
            if d.mul(t).abs().max() <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break

        state.update(
            d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
            prev_flat_grad=prev_flat_grad, prev_loss=prev_loss,
        )
        return orig_loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict (ours or torch's) without aliasing its tensors."""
        super().load_state_dict(clone_tensors(state_dict))
