"""State dicts of optimlab's NAdam, RAdam, Adamax, Adadelta, ASGD, Rprop, Adafactor, Muon and
SparseAdam load into torch.optim's classes and back: a run saved after 50 steps by one library and
continued by the other for 50 more ends where torch's uninterrupted 100-step run ends (rtol 1e-10)."""

from __future__ import annotations

import pytest
import torch

from optim_torch_cases import LR, OPTIONS, RTOL, build, max_rel_error, problem, set_grads, shapes_for
import optimlab.optim as oo

NAMES = list(OPTIONS)
HALF = 50


def _options(name: str) -> dict:
    """A non-default combination: the last of the grid (weight decay, maximize... switched on)."""
    return {"lr": LR[name], **OPTIONS[name][-1]}


def _resumed(name: str, first, second) -> list[torch.Tensor]:
    kwargs = _options(name)
    starts, centers = problem(shapes_for(name))
    params, opt = build(first, name, kwargs, starts)
    for step in range(HALF):
        set_grads(params, centers, step, kwargs.get("maximize", False))
        opt.step()
    saved = opt.state_dict()
    params2, opt2 = build(second, name, kwargs, [p.detach() for p in params])
    opt2.load_state_dict(saved)
    for step in range(HALF, 2 * HALF):
        set_grads(params2, centers, step, kwargs.get("maximize", False))
        opt2.step()
    return params2


def _uninterrupted(name: str) -> list[torch.Tensor]:
    kwargs = _options(name)
    starts, centers = problem(shapes_for(name))
    params, opt = build(torch.optim, name, kwargs, starts)
    for step in range(2 * HALF):
        set_grads(params, centers, step, kwargs.get("maximize", False))
        opt.step()
    return params


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("direction", ["optimlab->torch", "torch->optimlab", "optimlab->optimlab"])
def test_state_dict_round_trip(name, direction):
    first, second = {"optimlab->torch": (oo, torch.optim), "torch->optimlab": (torch.optim, oo),
                     "optimlab->optimlab": (oo, oo)}[direction]
    assert max_rel_error(_resumed(name, first, second), _uninterrupted(name)) <= RTOL


def _embedding_run(module, steps: int, resume_into=None, **kwargs):
    """An embedding table with sparse gradients (three rows a step, some repeated)."""
    gen = torch.Generator().manual_seed(3)
    table = torch.randn(10, 4, dtype=torch.float64, generator=gen).requires_grad_()
    targets = torch.randn(10, 4, dtype=torch.float64, generator=gen)
    opt = getattr(module, "SparseAdam")([table], lr=0.05, **kwargs)
    for step in range(steps):
        if step == steps // 2 and resume_into is not None:
            saved = opt.state_dict()
            table = table.detach().clone().requires_grad_()
            opt = getattr(resume_into, "SparseAdam")([table], lr=0.05, **kwargs)
            opt.load_state_dict(saved)
        rows = torch.tensor([step % 10, (3 * step + 1) % 10, step % 10])
        loss = 0.5 * ((torch.nn.functional.embedding(rows, table, sparse=True) - targets[rows]) ** 2).sum()
        table.grad = None
        loss.backward()
        opt.step()
    return table


@pytest.mark.parametrize("first, second", [(oo, torch.optim), (torch.optim, oo)])
def test_sparse_adam_state_dict_both_ways(first, second):
    resumed = _embedding_run(first, 40, resume_into=second)
    reference = _embedding_run(torch.optim, 40)
    assert max_rel_error([resumed], [reference]) <= RTOL
