"""Every option combination of torch.optim's SGD, Adagrad, RMSprop, Adam and AdamW: optimlab and
torch.optim run side by side for 100 steps and agree (float64: rtol 1e-10; float32: rtol 1e-5).

The problem: several tensors (0-d to 3-d) in two param groups with different hyperparameters,
loss sum((w - c)^2 + 0.1 (w - c)^4) with its gradient written in closed form (no autograd, to
keep the file fast), and one tensor whose gradient is None on odd steps (torch skips it then).
"""

from __future__ import annotations

import itertools

import pytest
import torch

import optimlab.optim as oo

SHAPES = [(), (3,), (4, 5), (2, 3, 2), (1,)]
STEPS = 100


def _grid(**values: list) -> list[dict]:
    keys = list(values)
    return [dict(zip(keys, combo)) for combo in itertools.product(*values.values())]


def _sgd_cases() -> list[dict]:
    cases = _grid(momentum=[0.0, 0.9], dampening=[0.0, 0.1], nesterov=[False, True],
                  weight_decay=[0.0, 0.01], maximize=[False, True])
    return [c for c in cases if not c["nesterov"] or (c["momentum"] > 0 and c["dampening"] == 0)]


CASES = (
    [("SGD", dict(lr=0.01, **c)) for c in _sgd_cases()]
    + [("Adagrad", dict(lr=0.1, **c)) for c in _grid(
        lr_decay=[0.0, 0.01], weight_decay=[0.0, 0.01], initial_accumulator_value=[0.0, 0.1],
        eps=[1e-10, 1e-3], maximize=[False, True])]
    + [("RMSprop", dict(lr=0.01, **c)) for c in _grid(
        alpha=[0.99, 0.9], momentum=[0.0, 0.5], centered=[False, True], weight_decay=[0.0, 0.01],
        maximize=[False, True])]
    + [(name, dict(lr=0.01, betas=(0.8, 0.99), **c)) for name in ("Adam", "AdamW")
       for c in _grid(amsgrad=[False, True], weight_decay=[0.0, 0.01], maximize=[False, True])]
)


def _case_id(case: tuple[str, dict]) -> str:
    name, kwargs = case
    return name + "-" + ",".join(f"{k}={v}" for k, v in kwargs.items() if k not in ("lr", "betas"))


def _second_group_options(name: str, kwargs: dict) -> dict:
    """Hyperparameters that differ in the second group: half the lr and another decay/weight decay."""
    options = {"lr": kwargs["lr"] / 2, "weight_decay": 0.02}
    if name in ("Adam", "AdamW"):
        options["betas"] = (0.9, 0.999)
    if name == "RMSprop":
        options["alpha"] = 0.95
    if name == "SGD" and kwargs["momentum"] > 0:
        options["momentum"] = 0.5
    return options


def _problem(dtype: torch.dtype, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    starts = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in SHAPES]
    centers = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in SHAPES]
    return starts, centers


def make_pair(name: str, kwargs: dict, dtype: torch.dtype) -> tuple[list, list, list]:
    """Two identical parameter sets with optimlab's and torch's optimizer on them, and the centers."""
    starts, centers = _problem(dtype)
    pairs = []
    for module in (oo, torch.optim):
        params = [s.clone().requires_grad_() for s in starts]
        groups = [{"params": params[:2]}, {"params": params[2:], **_second_group_options(name, kwargs)}]
        pairs.append((params, getattr(module, name)(groups, **kwargs)))
    return pairs[0], pairs[1], centers


def set_gradients(params: list[torch.Tensor], centers: list[torch.Tensor], step: int, sign: float = 1.0) -> None:
    """sign * grad of sum((w - c)^2 + 0.1 (w - c)^4) = 2 (w - c) + 0.4 (w - c)^3; the last tensor skips odd steps.

    With maximize=True the optimizers ascend, so the objective is the negated loss (sign = -1).
    """
    for index, (p, c) in enumerate(zip(params, centers)):
        if index == len(params) - 1 and step % 2 == 1:
            p.grad = None
            continue
        diff = p.detach() - c
        p.grad = sign * (2 * diff + 0.4 * diff**3)


def advance(pair: tuple[list, torch.optim.Optimizer], centers: list, steps: range) -> None:
    params, optimizer = pair
    sign = -1.0 if optimizer.defaults.get("maximize") else 1.0
    for step in steps:
        set_gradients(params, centers, step, sign)
        optimizer.step()


TOLERANCES = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_matches_torch_for_100_steps(case, dtype):
    name, kwargs = case
    ours, theirs, centers = make_pair(name, kwargs, dtype)
    advance(ours, centers, range(STEPS))
    advance(theirs, centers, range(STEPS))
    for a, b in zip(ours[0], theirs[0]):
        assert a.shape == b.shape and a.dtype == b.dtype
        torch.testing.assert_close(a.detach(), b.detach(), **TOLERANCES[dtype])
    # the state agrees too, key by key
    state_a, state_b = ours[1].state_dict()["state"], theirs[1].state_dict()["state"]
    assert state_a.keys() == state_b.keys()
    for index in state_a:
        assert state_a[index].keys() == state_b[index].keys()
        for key, value in state_a[index].items():
            if isinstance(value, torch.Tensor):
                torch.testing.assert_close(value, state_b[index][key], **TOLERANCES[dtype])
            else:
                assert value == state_b[index][key]


def test_the_grid_covers_every_option():
    names = {name for name, _ in CASES}
    assert names == {"SGD", "Adagrad", "RMSprop", "Adam", "AdamW"}
    assert len(CASES) == 20 + 32 + 32 + 8 + 8
    assert any(kw.get("nesterov") and kw.get("weight_decay") and kw.get("maximize") for _, kw in CASES)
