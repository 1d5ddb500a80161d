r"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner (Vyas et al. 2024); its matrix rules.

The rules (module functions) work on one parameter's gradient G, seen as a tensor of order k
(a matrix for k = 2) after optional merging of small dimensions. Per dimension i of size n_i
(<= ``max_precondition_dim``) SOAP keeps Shampoo's statistic

    L_i <- shampoo_beta L_i + (1 - shampoo_beta) G_(i) G_(i)^T      (G_(i): G unfolded along i)

and an orthonormal basis Q_i of its eigenvectors. Adam runs on the rotated gradient
G' = G x_1 Q_1^T ... x_k Q_k^T (``project``), its update is rotated back (``project_back``). Q_i is
found by an eigendecomposition at the first step and refreshed every ``precondition_frequency``
steps by one power iteration, Q_i <- QR(L_i Q_i), with Adam's second moment permuted to the new
order of the eigenvalue estimates (the paper's Algorithm 3 and 4).
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Any, Callable

import torch
from torch import Tensor

from .base import RuleOptimizer, new_step_counter
from .validate import check_betas, check_lr, check_nonnegative, check_positive_int, check_unit_interval

Basis = list[Tensor | None]  # one matrix per dimension; None: the identity (dimension too large, or 1-D)


def merge_small_dims(shape: tuple[int, ...] | torch.Size, max_dim: int) -> list[int]:
    """Merge neighbouring dimensions while their product stays <= max_dim: [1, 2, 512, 1, 2048] -> [2, 512, 2048]
    for max_dim 1024. (The reference returns [1] when everything merges into one dimension, and its
    reshape then fails; here the tensor becomes 1-D and ``precondition_1d`` decides.)"""
    merged: list[int] = []
    product = 1
    for size in shape:
        product *= size
        if product > max_dim:
            merged.append(product // size)
            product = size
    merged.append(product)
    return merged


def preconditioned_view(tensor: Tensor, merge_dims: bool, max_dim: int, channels_last: bool) -> Tensor:
    """The tensor in the layout SOAP preconditions: NHWC -> NCHW when ``channels_last``, then merged
    (1-D tensors are left as they are)."""
    if not merge_dims or tensor.dim() == 1:
        return tensor
    if channels_last and tensor.dim() == 4:
        tensor = tensor.permute(0, 3, 1, 2)
    return tensor.reshape(merge_small_dims(tensor.shape, max_dim))


def restore_layout(tensor: Tensor, like: Tensor, merge_dims: bool, channels_last: bool) -> Tensor:
    """Undo :func:`preconditioned_view`: back to the shape (and NHWC order) of ``like``."""
    if not merge_dims or like.dim() == 1:
        return tensor
    if channels_last and like.dim() == 4:
        return tensor.reshape(like.permute(0, 3, 1, 2).shape).permute(0, 2, 3, 1)
    return tensor.reshape(like.shape)


def new_statistics(grad: Tensor, max_dim: int, precondition_1d: bool) -> Basis:
    """Zero L_i per preconditioned dimension; None for a dimension over max_dim and for 1-D tensors
    unless ``precondition_1d`` (they fall back to Adam's diagonal scaling)."""
    if grad.dim() == 1 and not precondition_1d:
        return [None]
    return [None if size > max_dim else torch.zeros(size, size, dtype=grad.dtype, device=grad.device)
            for size in grad.shape]


def accumulate_statistics_(statistics: Basis, grad: Tensor, shampoo_beta: float) -> None:
    """L_i <- shampoo_beta L_i + (1 - shampoo_beta) G_(i) G_(i)^T for each preconditioned dimension i."""
    others = list(range(grad.dim()))
    for index, matrix in enumerate(statistics):
        if matrix is None:
            continue
        contracted = [*chain(others[:index], others[index + 1:])]
        matrix.lerp_(torch.tensordot(grad, grad, dims=[contracted, contracted]), 1 - shampoo_beta)


def eigenbasis(statistics: Basis) -> Basis:
    """Q_i: the eigenvectors of each L_i, by decreasing eigenvalue (``torch.linalg.eigh``, flipped)."""
    bases: Basis = []
    for matrix in statistics:
        if matrix is None:
            bases.append(None)
            continue
        identity = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
        _, vectors = torch.linalg.eigh(matrix + 1e-30 * identity)
        bases.append(torch.flip(vectors, dims=[1]))
    return bases


def refresh_eigenbasis(statistics: Basis, basis: Basis, exp_avg_sq: Tensor) -> tuple[Basis, Tensor]:
    """One power iteration per dimension: Q_i <- QR(L_i Q_i) with the columns sorted by the
    eigenvalue estimates diag(Q_i^T L_i Q_i); Adam's second moment is permuted to the new order.

    The QR runs in the statistics' dtype (float32 for half precision, which ``linalg.qr`` lacks);
    the reference casts it to float32 always.
    """
    bases: Basis = []
    for index, (matrix, old) in enumerate(zip(statistics, basis)):
        if matrix is None:
            bases.append(None)
            continue
        product = matrix @ old
        estimates = (old * product).sum(dim=0)
        order = torch.argsort(estimates, descending=True)
        exp_avg_sq = exp_avg_sq.index_select(index, order)
        iterate = product.index_select(1, order)
        dtype = iterate.dtype if iterate.dtype in (torch.float32, torch.float64) else torch.float32
        q, _ = torch.linalg.qr(iterate.to(dtype))
        bases.append(q.to(iterate.dtype))
    return bases, exp_avg_sq


def project(tensor: Tensor, basis: Basis, *, back: bool = False) -> Tensor:
    """G' = G x_1 Q_1^T ... x_k Q_k^T (``back``: G = G' x_1 Q_1 ... x_k Q_k); None keeps a dimension.

    Each contraction moves the dimension it rotates to the end, so after k of them the order is restored.
    """
    for matrix in basis:
        if matrix is None:
            tensor = tensor.permute([*range(1, tensor.dim()), 0])
        else:
            tensor = torch.tensordot(tensor, matrix, dims=[[0], [1 if back else 0]])
    return tensor


def soap_direction(
    grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, rotate: Callable[[Tensor], Tensor],
    rotate_back: Callable[[Tensor], Tensor], *, beta1: float, beta2: float, eps: float,
) -> Tensor:
    """Adam's direction computed in the eigenbasis (the paper's Algorithm 3, as the reference writes it):

    m_t = beta1 m_{t-1} + (1 - beta1) G_t                    (kept in the original basis)
    v_t = beta2 v_{t-1} + (1 - beta2) (G'_t)^2                (in the rotated basis, G' = rotate(G))
    N_t = rotate_back(rotate(m_t) / (sqrt(v_t) + eps))
    """
    projected = rotate(grad)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.lerp_(projected.square(), 1 - beta2)
    return rotate_back(rotate(exp_avg) / exp_avg_sq.sqrt().add_(eps))


class SOAP(RuleOptimizer):
    r"""SOAP (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using Adam"); matches
    ``pytorch_optimizer.SOAP``.

    .. code-block:: text

        input: lr, (beta1, beta2), shampoo_beta (None: beta2), lambda, f (precondition_frequency)
        step 1: L_i <- (1 - shampoo_beta) G_(i) G_(i)^T;  Q_i <- eigenvectors(L_i);  no update
        step t + 1 (t = 1, 2, ...):
            N_t <- soap_direction(G)       (Adam in the basis Q, see :func:`soap_direction`)
            w <- w - lr sqrt(1 - beta2^t) / (1 - beta1^t) N_t     (correct_bias; normalize_gradient: N / rms(N))
            w <- w (1 - lr lambda)                                 (decoupled weight decay)
            L_i <- shampoo_beta L_i + (1 - shampoo_beta) G_(i) G_(i)^T;   every f-th t: Q_i <- QR(L_i Q_i)

    1-D parameters (biases, norms) are **not** preconditioned unless ``precondition_1d=True``, and
    neither is a dimension larger than ``max_precondition_dim``: there SOAP is Adam (diagonal), as
    in the reference. The step is counted per parameter (the reference counts per group: the same
    unless a parameter misses gradients). Not elementwise, so it always runs per tensor (no flat
    path). State keys: ``step``, ``exp_avg``, ``exp_avg_sq``, ``GG`` (the L_i), ``Q``.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float | None = None,
        weight_decay: float = 1e-2,
        precondition_frequency: int = 10,
        max_precondition_dim: int = 10000,
        merge_dims: bool = False,
        precondition_1d: bool = False,
        correct_bias: bool = True,
        normalize_gradient: bool = False,
        data_format: str = "channels_first",
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        check_lr(lr)
        betas = check_betas(betas)
        if shampoo_beta is not None:
            check_unit_interval("shampoo_beta", shampoo_beta)
        check_nonnegative("weight_decay", weight_decay)
        check_positive_int("precondition_frequency", precondition_frequency)
        check_positive_int("max_precondition_dim", max_precondition_dim)
        check_nonnegative("eps", eps)
        if data_format not in ("channels_first", "channels_last"):
            raise ValueError(f"data_format={data_format!r} must be 'channels_first' or 'channels_last'")
        defaults = dict(lr=lr, betas=betas, shampoo_beta=shampoo_beta, weight_decay=weight_decay,
                        precondition_frequency=precondition_frequency, max_precondition_dim=max_precondition_dim,
                        merge_dims=merge_dims, precondition_1d=precondition_1d, correct_bias=correct_bias,
                        normalize_gradient=normalize_gradient, data_format=data_format, eps=eps, maximize=maximize,
                        fused=False)
        super().__init__(params, defaults)

    def _view(self, tensor: Tensor, group: dict[str, Any]) -> Tensor:
        return preconditioned_view(tensor, group["merge_dims"], group["max_precondition_dim"],
                                   group["data_format"] == "channels_last")

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        if param.is_complex():
            raise ValueError("SOAP does not support complex parameters")
        statistics = new_statistics(self._view(param, group), group["max_precondition_dim"], group["precondition_1d"])
        return {"step": new_step_counter(), "exp_avg": torch.zeros_like(param), "exp_avg_sq": torch.zeros_like(param),
                "GG": statistics, "Q": None}

    def _update_preconditioner(self, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: int) -> None:
        shampoo_beta = group["betas"][1] if group["shampoo_beta"] is None else group["shampoo_beta"]
        accumulate_statistics_(state["GG"], self._view(grad, group), shampoo_beta)
        if state["Q"] is None:
            state["Q"] = eigenbasis(state["GG"])
        if step > 0 and step % group["precondition_frequency"] == 0:
            channels_last = group["data_format"] == "channels_last"
            basis, exp_avg_sq = refresh_eigenbasis(state["GG"], state["Q"], self._view(state["exp_avg_sq"], group))
            state["Q"] = basis
            state["exp_avg_sq"] = restore_layout(exp_avg_sq, state["exp_avg_sq"], group["merge_dims"], channels_last)

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: float | None = None
    ) -> None:
        state["step"] += 1
        step = int(state["step"].item()) - 1  # the first step only measures: updates are counted from it
        if group["maximize"]:
            grad = -grad
        if step == 0:
            self._update_preconditioner(grad, state, group, step)
            return
        beta1, beta2 = group["betas"]
        step_size = group["lr"]
        if group["correct_bias"]:
            step_size *= math.sqrt(1 - beta2**step) / (1 - beta1**step)
        direction = self._direction(grad, state, group, beta1, beta2)
        if group["normalize_gradient"]:
            direction.div_(direction.square().mean().sqrt_().add_(group["eps"]))
        param.add_(direction, alpha=-step_size)
        if group["weight_decay"] != 0:
            param.mul_(1 - group["weight_decay"] * group["lr"])
        self._update_preconditioner(grad, state, group, step)

    def _direction(self, grad: Tensor, state: dict[str, Any], group: dict[str, Any], beta1: float, beta2: float) -> Tensor:
        merge, channels_last = group["merge_dims"], group["data_format"] == "channels_last"

        def rotate(tensor: Tensor, back: bool = False) -> Tensor:  # in the parameter's shape, as the reference
            return restore_layout(project(self._view(tensor, group), state["Q"], back=back), tensor, merge, channels_last)

        return soap_direction(grad, state["exp_avg"], state["exp_avg_sq"], rotate, lambda t: rotate(t, back=True),
                              beta1=beta1, beta2=beta2, eps=group["eps"])
