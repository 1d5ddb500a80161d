"""Complex parameters: the rules see each complex number as a pair of reals, as torch.optim does,
and the state keeps the parameter's complex dtype (so state_dicts still interchange)."""

from __future__ import annotations

import pytest
import torch

import optimlab.optim as oo

CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
]


def _run(module, name, kwargs):
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen, dtype=torch.complex128).requires_grad_() for s in [(), (3,), (2, 2)]]
    real = torch.randn(3, generator=gen, dtype=torch.float64).requires_grad_()
    optimizer = getattr(module, name)(params + [real], **kwargs)
    for _ in range(30):
        optimizer.zero_grad()
        loss = sum((p.abs() ** 2).sum() + 0.1 * (p.abs() ** 4).sum() for p in params) + (real**2).sum()
        loss.backward()
        optimizer.step()
    return [p.detach() for p in params + [real]], optimizer.state_dict()


@pytest.mark.parametrize("name,kwargs", CASES, ids=[c[0] for c in CASES])
def test_complex_parameters_match_torch(name, kwargs):
    ours, our_state = _run(oo, name, kwargs)
    theirs, their_state = _run(torch.optim, name, kwargs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for index, state in our_state["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == their_state["state"][index][key].dtype, (index, key)
                torch.testing.assert_close(value, their_state["state"][index][key], rtol=1e-10, atol=1e-12)
