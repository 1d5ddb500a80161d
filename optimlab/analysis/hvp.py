"""Hessian-vector products of a network's loss, without ever forming the Hessian.

``HessianOperator(model, loss_fn, inputs, targets)`` is the linear map ``v -> H v`` where H is the
Hessian of the mean loss over the given examples with respect to the model's trainable parameters,
flattened into one vector of length ``dim``. Each product is Pearlmutter's trick by double
backward: ``H v = d/dw <grad L(w), v>``, one forward and two backward passes per chunk of data.

The data is processed in chunks of ``chunk_size`` examples, so memory stays bounded on a full
training set; the mean loss over N examples is ``L = sum_c (n_c / N) L_c`` and so
``H v = sum_c (n_c / N) H_c v`` (``loss_fn`` must average over its batch, as torch's losses do).

The model's mode is explicit (``mode="eval"`` or ``"train"``) and recorded: BatchNorm and dropout
give a different Hessian in each. In train mode the dropout masks are drawn from a fixed seed per
chunk, so every product applies the *same* matrix (Lanczos needs a fixed operator), and BatchNorm
uses the statistics of each chunk (so the Hessian depends on ``chunk_size``; it is recorded).
The model is left as it was found: the forward passes run on copies of its buffers (BatchNorm
running statistics), ``.grad`` fields are not touched, and its mode and the global random state are
restored after each product.

``MatrixOperator(H)`` wraps an explicit symmetric matrix with the same interface, for small
problems and for tests.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

MODES = ("train", "eval")


@dataclass
class OperatorInfo:
    """What a curvature result was measured on: recorded with every result."""

    mode: str  # "train" or "eval" (or "matrix" for an explicit matrix)
    data: str  # e.g. "full training set (1437 examples)" or "first 5000 of 60000 examples"
    examples: int
    chunk_size: int
    dim: int  # number of parameters (size of the Hessian)
    device: str
    dtype: str
    dropout_seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} must be one of: {', '.join(MODES)}")
    return mode


def describe_data(used: int, available: int) -> str:
    if used == available:
        return f"full set ({available} examples)"
    return f"first {used} of {available} examples"


class HessianOperator:
    """The Hessian of ``mean loss_fn(model(inputs), targets)`` as a matrix-free linear operator.

    Args:
        model: any ``nn.Module``; the Hessian is over its parameters with ``requires_grad``.
        loss_fn: ``loss_fn(outputs, targets) -> scalar``, the mean over the batch.
        inputs, targets: the data (tensors with the examples along dim 0); moved to the model's device.
        mode: ``"eval"`` or ``"train"``; the model is put in this mode for each product and restored.
        max_examples: use the first N examples only (None: all of them).
        chunk_size: examples per forward pass (None: all at once).
        dropout_seed: the seed of the dropout masks in train mode (the same masks for every product).
        reuse_graph: with one chunk, keep the gradient's graph between products (one backward per
            product instead of a forward and two backwards; costs the graph's memory).
        params: the parameters to differentiate by (default: all with requires_grad).
        penalty: ``penalty(model) -> scalar`` added to the mean loss (e.g. an L2 term), or None.
        of: how many examples ``inputs`` were taken from, when the caller passed only the first
            ones (a DataLoader-backed task gathers no more than it uses); for the description.

    ``op.matvec(v)`` returns ``H v`` for a flat vector ``v`` of length ``op.dim``;
    ``op.gradient()`` returns the loss and the flat gradient; ``op.info`` records mode and data.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        inputs: Tensor,
        targets: Tensor,
        *,
        mode: str = "eval",
        max_examples: int | None = None,
        chunk_size: int | None = None,
        dropout_seed: int = 0,
        reuse_graph: bool = True,
        params: Sequence[Tensor] | None = None,
        penalty: Callable[[nn.Module], Tensor | float] | None = None,
        of: int | None = None,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.penalty = penalty
        self.mode = check_mode(mode)
        self.params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no parameters with requires_grad=True")
        first = self.params[0]
        self.device, self.dtype = first.device, first.dtype
        available = len(inputs)
        if len(targets) != available:
            raise ValueError(f"inputs ({available}) and targets ({len(targets)}) differ in length")
        if max_examples is not None and not 0 < max_examples:
            raise ValueError(f"max_examples={max_examples} must be a positive integer or None")
        used = available if max_examples is None else min(max_examples, available)
        if used == 0:
            raise ValueError("no examples to measure the Hessian on")
        self.inputs = inputs[:used].to(self.device)
        self.targets = targets[:used].to(self.device)
        if chunk_size is not None and chunk_size <= 0:
            raise ValueError(f"chunk_size={chunk_size} must be a positive integer or None")
        self.chunk_size = used if chunk_size is None else min(chunk_size, used)
        self.dropout_seed = dropout_seed
        self.reuse_graph = reuse_graph
        self.dim = sum(p.numel() for p in self.params)
        self.products = 0  # number of Hessian-vector products computed
        self.seconds = 0.0
        self._cached_grads: tuple[Tensor, ...] | None = None
        self.info = OperatorInfo(
            mode=self.mode, data=describe_data(used, of or available), examples=used, chunk_size=self.chunk_size,
            dim=self.dim, device=str(self.device), dtype=str(self.dtype).replace("torch.", ""),
            dropout_seed=dropout_seed if mode == "train" else None,
        )

    # -- the chunks and the model's state -------------------------------------------------------
    def _chunks(self) -> list[tuple[Tensor, Tensor, float]]:
        total = len(self.inputs)
        return [
            (self.inputs[i:i + self.chunk_size], self.targets[i:i + self.chunk_size],
             min(self.chunk_size, total - i) / total)
            for i in range(0, total, self.chunk_size)
        ]

    def _chunk_loss(self, index: int, x: Tensor, y: Tensor) -> Tensor:
        # Fixed dropout masks per chunk: every product applies the same matrix.
        if self.mode == "train":
            torch.manual_seed(self.dropout_seed + index)
        # Copies of the buffers: BatchNorm in train mode updates its running statistics in place,
        # which must neither change the model nor invalidate a graph kept between products.
        state = {**dict(self.model.named_parameters()),
                 **{name: b.detach().clone() for name, b in self.model.named_buffers()}}
        loss = self.loss_fn(torch.func.functional_call(self.model, state, (x,)), y)
        # the penalty is added to every chunk's loss; the chunk weights sum to 1, so it counts once
        return loss + self.penalty(self.model) if self.penalty is not None else loss

    def _run_in_mode(self, compute: Callable[[], Any]) -> Any:
        """Run `compute` with the model in `self.mode`; restore its mode and the random state."""
        was_training = self.model.training
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                self.model.train(self.mode == "train")
                with torch.enable_grad():
                    return compute()
        finally:
            self.model.train(was_training)

    # -- public operations -----------------------------------------------------------------------
    def flatten(self, tensors: Sequence[Tensor]) -> Tensor:
        return torch.cat([t.reshape(-1) for t in tensors])

    def unflatten(self, vector: Tensor) -> list[Tensor]:
        pieces, start = [], 0
        for p in self.params:
            pieces.append(vector[start:start + p.numel()].view_as(p))
            start += p.numel()
        return pieces

    def gradient(self) -> tuple[float, Tensor]:
        """The mean loss and its flat gradient over the operator's data (in its mode)."""

        def compute() -> tuple[float, Tensor]:
            loss_total, grad_total = 0.0, torch.zeros(self.dim, device=self.device, dtype=self.dtype)
            for index, (x, y, weight) in enumerate(self._chunks()):
                loss = self._chunk_loss(index, x, y)
                grads = torch.autograd.grad(loss, self.params)
                loss_total += weight * loss.item()
                grad_total += weight * self.flatten(grads)
            return loss_total, grad_total

        return self._run_in_mode(compute)

    def matvec(self, vector: Tensor) -> Tensor:
        """``H v`` for a flat vector ``v`` (length ``dim``, on the model's device and dtype)."""
        if vector.shape != (self.dim,):
            raise ValueError(f"vector of shape {tuple(vector.shape)} given; expected ({self.dim},)")
        started = time.perf_counter()
        pieces = self.unflatten(vector.to(device=self.device, dtype=self.dtype))
        chunks = self._chunks()
        if len(chunks) == 1 and self.reuse_graph:
            result = self._run_in_mode(lambda: self._cached_product(pieces))
        else:
            result = self._run_in_mode(lambda: self._chunked_product(chunks, pieces))
        self.products += 1
        self.seconds += time.perf_counter() - started
        return result

    def release(self) -> None:
        """Free the cached gradient graph (call before training on; done by the analysis functions)."""
        self._cached_grads = None

    def __call__(self, vector: Tensor) -> Tensor:
        return self.matvec(vector)

    # -- the two ways of computing a product ----------------------------------------------------
    def _chunked_product(self, chunks: list[tuple[Tensor, Tensor, float]], pieces: list[Tensor]) -> Tensor:
        result = torch.zeros(self.dim, device=self.device, dtype=self.dtype)
        for index, (x, y, weight) in enumerate(chunks):
            loss = self._chunk_loss(index, x, y)
            grads = torch.autograd.grad(loss, self.params, create_graph=True)
            hv = torch.autograd.grad(grads, self.params, grad_outputs=pieces, allow_unused=True)
            result += weight * self._flatten_products(hv)
        return result

    def _cached_product(self, pieces: list[Tensor]) -> Tensor:
        if self._cached_grads is None:
            x, y, _ = self._chunks()[0]
            loss = self._chunk_loss(0, x, y)
            self._cached_grads = torch.autograd.grad(loss, self.params, create_graph=True)
        hv = torch.autograd.grad(self._cached_grads, self.params, grad_outputs=pieces, retain_graph=True,
                                 allow_unused=True)
        return self._flatten_products(hv)

    def _flatten_products(self, hv: Sequence[Tensor | None]) -> Tensor:
        # A parameter the gradient does not depend on (e.g. the last layer's bias) has H v = 0 there.
        return self.flatten([h.detach() if h is not None else torch.zeros_like(p) for h, p in zip(hv, self.params)])


class MatrixOperator:
    """An explicit symmetric matrix with the operator interface (``matvec``, ``dim``, ``info``)."""

    def __init__(self, matrix: Tensor) -> None:
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"matrix of shape {tuple(matrix.shape)} given; expected a square matrix")
        self.matrix = matrix
        self.dim = matrix.shape[0]
        self.device, self.dtype = matrix.device, matrix.dtype
        self.products = 0
        self.seconds = 0.0
        self.info = OperatorInfo(mode="matrix", data="explicit matrix", examples=0, chunk_size=0, dim=self.dim,
                                 device=str(self.device), dtype=str(self.dtype).replace("torch.", ""))

    def matvec(self, vector: Tensor) -> Tensor:
        self.products += 1
        return self.matrix @ vector

    def release(self) -> None:
        pass

    def __call__(self, vector: Tensor) -> Tensor:
        return self.matvec(vector)
