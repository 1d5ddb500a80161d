"""Sparse gradients (nn.Embedding(sparse=True)) in SGD, Adagrad and SparseAdam, against torch.optim.

A model of an embedding table (sparse gradients) and a dense weight in one param group, plus a dense
group of its own: 100 steps, float64, rtol 1e-10, every option combination that torch allows with
sparse gradients (weight decay raises RuntimeError there, in both libraries).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from optim_torch_cases import RTOL, grid, max_rel_error
import optimlab.optim as oo

STEPS = 100


def _sgd_cases() -> list[dict]:
    cases = grid(momentum=[0.0, 0.9], dampening=[0.0, 0.1], nesterov=[False, True], maximize=[False, True])
    return [dict(lr=0.01, **c) for c in cases if not c["nesterov"] or (c["momentum"] > 0 and c["dampening"] == 0)]


CASES = (
    [("SGD", c) for c in _sgd_cases()]
    + [("Adagrad", dict(lr=0.1, **c)) for c in grid(lr_decay=[0.0, 0.01], initial_accumulator_value=[0.0, 0.1],
                                                    eps=[1e-10, 1e-3], maximize=[False, True])]
    + [("SparseAdam", dict(lr=0.05, **c)) for c in grid(betas=[(0.9, 0.999), (0.8, 0.99)], maximize=[False, True])]
    # a Tensor lr, where torch takes one
    + [("SGD", dict(lr=torch.tensor(0.01, dtype=torch.float64), momentum=0.9)),
       ("Adagrad", dict(lr=torch.tensor(0.1, dtype=torch.float64))),
       ("SparseAdam", dict(lr=torch.tensor(0.05, dtype=torch.float64)))]
)


def _run(module, name: str, kwargs: dict, steps: int = STEPS, per_tensor: bool = False) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    table = torch.randn(12, 3, dtype=torch.float64, generator=gen).requires_grad_()
    weight = torch.randn(3, 2, dtype=torch.float64, generator=gen).requires_grad_()
    other = torch.randn(4, dtype=torch.float64, generator=gen).requires_grad_()
    targets = torch.randn(12, 2, dtype=torch.float64, generator=gen)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    extra = {"fused": False} if per_tensor else {}
    if name == "SparseAdam":  # dense gradients are refused: the table alone
        groups, dense = [{"params": [table]}], []
    else:
        groups, dense = [{"params": [table, weight], **extra}, {"params": [other], "lr": kwargs["lr"] / 2, **extra}], [
            weight, other]
    opt = getattr(module, name)(groups, **kwargs)
    for step in range(steps):
        rows = torch.tensor([step % 12, (5 * step + 2) % 12, step % 12, (7 * step) % 12])
        hidden = F.embedding(rows, table, sparse=True)
        output = hidden @ weight if dense else hidden[:, :2]
        loss = 0.5 * ((output - targets[rows]) ** 2).sum() + (0.5 * (other - 1) ** 2).sum() * bool(dense)
        for param in (table, *dense):
            param.grad = None
        (sign * loss).backward()
        if dense and step % 3 == 2:
            weight.grad = None  # a step without it
        opt.step()
    return [table, *dense]


@pytest.mark.parametrize("case", CASES, ids=[f"{n}-" + ",".join(f"{k}={v}" for k, v in c.items()) for n, c in CASES])
def test_sparse_matches_torch(case):
    name, kwargs = case
    ours = _run(oo, name, kwargs)
    assert ours[0].grad.is_sparse
    assert max_rel_error(ours, _run(torch.optim, name, kwargs)) <= RTOL


@pytest.mark.parametrize("name", ["SGD", "Adagrad"])
def test_sparse_per_tensor_path_matches_torch(name):
    kwargs = dict(lr=0.01, momentum=0.9) if name == "SGD" else dict(lr=0.1)
    assert max_rel_error(_run(oo, name, kwargs, per_tensor=True), _run(torch.optim, name, kwargs)) <= RTOL


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, weight_decay=0.01)),
                                          ("Adagrad", dict(lr=0.1, weight_decay=0.01))])
def test_sparse_with_weight_decay_raises_as_torch(name, kwargs):
    for module in (torch.optim, oo):
        with pytest.raises(RuntimeError):
            _run(module, name, kwargs, steps=1)


def test_sparse_adam_refuses_dense_gradients_as_torch():
    for module in (torch.optim, oo):
        param = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        opt = module.SparseAdam([param])
        param.grad = torch.ones(3, dtype=torch.float64)
        with pytest.raises(RuntimeError, match="dense gradients"):
            opt.step()


@pytest.mark.parametrize("name", ["Adam", "RMSprop", "NAdam", "RAdam", "Adamax", "Adadelta", "ASGD", "Rprop",
                                  "Adafactor"])
def test_classes_without_sparse_support_refuse_it_as_torch(name):
    for module in (torch.optim, oo):
        table = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
        opt = getattr(module, name)([table])
        F.embedding(torch.tensor([1, 3]), table, sparse=True).sum().backward()
        with pytest.raises(RuntimeError, match="sparse"):
            opt.step()
