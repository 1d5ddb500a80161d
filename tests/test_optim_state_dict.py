"""state_dicts move between optimlab and torch.optim both ways; resuming from a saved state (through
torch.save/torch.load) continues the uninterrupted trajectory; loading copies instead of aliasing."""

from __future__ import annotations

import io

import pytest
import torch

import optimlab.optim as oo
from test_optim_all_options import _problem, _second_group_options, advance

FULL_STATE_CASES = [
    ("SGD", dict(lr=0.01, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
]
MODULES = {"optimlab": oo, "torch": torch.optim}


def _build(module, name: str, kwargs: dict, dtype=torch.float64):
    starts, centers = _problem(dtype)
    params = [s.clone().requires_grad_() for s in starts]
    groups = [{"params": params[:2]}, {"params": params[2:], **_second_group_options(name, kwargs)}]
    return (params, getattr(module, name)(groups, **kwargs)), centers


def _through_bytes(state_dict: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer)


@pytest.mark.parametrize("source,target", [("optimlab", "torch"), ("torch", "optimlab"), ("optimlab", "optimlab")])
@pytest.mark.parametrize("name,kwargs", FULL_STATE_CASES, ids=[c[0] + str(i) for i, c in enumerate(FULL_STATE_CASES)])
def test_resume_from_saved_state_continues_the_trajectory(name, kwargs, source, target):
    uninterrupted, centers = _build(MODULES[source], name, kwargs)
    advance(uninterrupted, centers, range(100))

    first_half, _ = _build(MODULES[source], name, kwargs)
    advance(first_half, centers, range(50))
    saved_params = _through_bytes([p.detach() for p in first_half[0]])
    saved_state = _through_bytes(first_half[1].state_dict())

    resumed, _ = _build(MODULES[target], name, kwargs)
    with torch.no_grad():
        for p, value in zip(resumed[0], saved_params):
            p.copy_(value)
    resumed[1].load_state_dict(saved_state)
    advance(resumed, centers, range(50, 100))
    for a, b in zip(resumed[0], uninterrupted[0]):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,kwargs", FULL_STATE_CASES, ids=[c[0] + str(i) for i, c in enumerate(FULL_STATE_CASES)])
def test_state_dict_layout_matches_torch(name, kwargs):
    ours, centers = _build(oo, name, kwargs)
    theirs, _ = _build(torch.optim, name, kwargs)
    advance(ours, centers, range(3))
    advance(theirs, centers, range(3))
    a, b = ours[1].state_dict(), theirs[1].state_dict()
    # optimlab adds `fused` where torch lacks it (RMSprop); torch loads the extra key unharmed
    assert [sorted(set(g) - {"fused"}) for g in a["param_groups"]] == [sorted(set(g) - {"fused"}) for g in b["param_groups"]]
    for key in a["state"]:
        for state_key, value in a["state"][key].items():
            other = b["state"][key][state_key]
            assert type(value) is type(other)
            if isinstance(value, torch.Tensor):
                assert (value.shape, value.dtype, value.device) == (other.shape, other.dtype, other.device)


@pytest.mark.parametrize("name,kwargs", FULL_STATE_CASES, ids=[c[0] + str(i) for i, c in enumerate(FULL_STATE_CASES)])
def test_loading_copies_instead_of_aliasing(name, kwargs):
    source, centers = _build(torch.optim, name, kwargs)
    advance(source, centers, range(5))
    state_dict = source[1].state_dict()
    target, _ = _build(oo, name, kwargs)
    target[1].load_state_dict(state_dict)
    before = {i: {k: v.clone() for k, v in s.items() if isinstance(v, torch.Tensor)}
              for i, s in target[1].state_dict()["state"].items()}
    for state in state_dict["state"].values():  # mutate the source dict after loading
        for value in state.values():
            if isinstance(value, torch.Tensor):
                value.add_(1.0)
    state_dict["param_groups"][0]["lr"] = 123.0
    after = target[1].state_dict()
    assert after["param_groups"][0]["lr"] == kwargs["lr"]
    for i, state in before.items():
        for key, value in state.items():
            torch.testing.assert_close(after["state"][i][key], value, rtol=0, atol=0)


def test_loading_fills_group_keys_a_saved_dict_lacks():
    (params, optimizer), _ = _build(oo, "Adam", dict(lr=0.01))
    state_dict = optimizer.state_dict()
    for group in state_dict["param_groups"]:
        del group["amsgrad"]  # as if saved by a version that did not know the key
    optimizer.load_state_dict(state_dict)
    assert all(group["amsgrad"] is False for group in optimizer.param_groups)
