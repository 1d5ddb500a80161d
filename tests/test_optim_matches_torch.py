"""optimlab.optim and torch.optim run side by side and agree (float64, rtol 1e-10)."""

import pytest
import torch

import optimlab.optim as oo

CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.01, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
]


def _problem(seed):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(), (3,), (4, 5), (2, 3, 2)]
    params = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    targets = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    return params, targets


def _run(cls, kwargs, steps=100):
    params, targets = _problem(0)
    params = [p.clone().requires_grad_() for p in params]
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": kwargs["lr"] / 2}]
    opt = cls(groups, **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(((p - t) ** 2).sum() + 0.1 * ((p - t) ** 4).sum() for p, t in zip(params, targets))
        loss.backward()
        opt.step()
    return [p.detach() for p in params], opt


@pytest.mark.parametrize("name,kwargs", CASES)
def test_trajectory_matches_torch(name, kwargs):
    ours, _ = _run(getattr(oo, name), kwargs)
    theirs, _ = _run(getattr(torch.optim, name), kwargs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,kwargs", CASES)
def test_state_dict_keys_match_torch(name, kwargs):
    _, ours = _run(getattr(oo, name), kwargs, steps=3)
    _, theirs = _run(getattr(torch.optim, name), kwargs, steps=3)
    a, b = ours.state_dict(), theirs.state_dict()
    assert a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        assert a["state"][key].keys() == b["state"][key].keys()
