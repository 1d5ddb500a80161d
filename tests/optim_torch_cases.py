"""Shared by tests/test_optim_torch_*.py: torch.optim's classes against optimlab's, side by side.

The problem: tensors of several shapes (0-d to 3-d; Muon: 2-D only, tall and wide) in two param
groups with different hyperparameters, the loss sum((w - c)^2 / 2 + 0.025 (w - c)^4) with its
gradient in closed form, and one tensor whose gradient is None on odd steps (torch skips it).
Everything in float64: two runs of the same op sequence agree to rounding, so rtol 1e-10.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

import optimlab.optim as oo

SHAPES = [(), (3,), (4, 5), (2, 3, 2), (1,)]
MATRIX_SHAPES = [(4, 5), (6, 3), (5, 5), (3, 7)]
STEPS = 100
RTOL = 1e-10
# classes whose rule runs on optimlab's flat path by default (the others always run per tensor)
FLAT = {"Adamax", "Adadelta", "RAdam", "Rprop"}


def grid(**values: list) -> list[dict]:
    keys = list(values)
    return [dict(zip(keys, combo)) for combo in itertools.product(*values.values())]


# every option combination each torch class has (capturable/differentiable/foreach: see the tests)
OPTIONS: dict[str, list[dict]] = {
    "Adamax": grid(betas=[(0.9, 0.999), (0.8, 0.99)], eps=[1e-8, 1e-3], weight_decay=[0.0, 0.01],
                   maximize=[False, True]),
    "Adadelta": grid(rho=[0.9, 0.5], eps=[1e-6, 1e-3], weight_decay=[0.0, 0.01], maximize=[False, True]),
    "NAdam": grid(betas=[(0.9, 0.999), (0.8, 0.99)], weight_decay=[0.0, 0.01], momentum_decay=[4e-3, 0.1],
                  decoupled_weight_decay=[False, True], maximize=[False, True]),
    "RAdam": grid(betas=[(0.9, 0.999), (0.8, 0.99)], eps=[1e-8, 1e-3], weight_decay=[0.0, 0.01],
                  decoupled_weight_decay=[False, True], maximize=[False, True]),
    "ASGD": grid(lambd=[1e-4, 1e-2], alpha=[0.75, 1.0], t0=[1e6, 10.0], weight_decay=[0.0, 0.01],
                 maximize=[False, True]),
    "Rprop": grid(etas=[(0.5, 1.2), (0.3, 1.5)], step_sizes=[(1e-6, 50), (1e-3, 0.05)], maximize=[False, True]),
    "Adafactor": grid(beta2_decay=[-0.8, -0.5], eps=[(None, 1e-3), (1e-6, 1e-2)], d=[1.0, 2.0],
                      weight_decay=[0.0, 0.01], maximize=[False, True]),
    "Muon": grid(momentum=[0.95, 0.0], nesterov=[True, False], weight_decay=[0.1, 0.0],
                 adjust_lr_fn=[None, "original", "match_rms_adamw"]),
}
LR = {"Adamax": 0.01, "Adadelta": 1.0, "NAdam": 0.01, "RAdam": 0.01, "ASGD": 0.05, "Rprop": 0.01,
      "Adafactor": 0.05, "Muon": 0.02}


def cases() -> list[tuple[str, dict]]:
    return [(name, {"lr": LR[name], **options}) for name, grid_ in OPTIONS.items() for options in grid_]


def case_id(case: tuple[str, dict]) -> str:
    name, kwargs = case
    return name + "-" + ",".join(f"{k}={v}" for k, v in kwargs.items() if k != "lr")


def second_group(name: str, kwargs: dict) -> dict:
    """Other hyperparameters for the second group: half the lr and one of the class's own options."""
    lr = kwargs["lr"]
    options: dict[str, Any] = {"lr": lr / 2 if not isinstance(lr, torch.Tensor) else lr / 2}
    options.update({
        "Adamax": {"betas": (0.85, 0.995)}, "NAdam": {"betas": (0.85, 0.995), "momentum_decay": 0.01},
        "RAdam": {"betas": (0.85, 0.995)}, "Adadelta": {"rho": 0.8}, "ASGD": {"lambd": 1e-3, "t0": 5.0},
        "Rprop": {"etas": (0.4, 1.3)}, "Adafactor": {"beta2_decay": -0.6, "d": 1.5}, "Muon": {"momentum": 0.9},
    }[name])
    return options


def problem(shapes: list[tuple], seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    starts = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    centers = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    return starts, centers


def shapes_for(name: str) -> list[tuple]:
    return MATRIX_SHAPES if name == "Muon" else SHAPES


def build(module: Any, name: str, kwargs: dict, starts: list[torch.Tensor], per_tensor: bool = False):
    """Parameters (copies of `starts`) in two groups, and `module.name`'s optimizer over them."""
    params = [s.clone().requires_grad_() for s in starts]
    extra = {"fused": False} if per_tensor else {}
    groups = [{"params": params[:2], **extra}, {"params": params[2:], **second_group(name, kwargs), **extra}]
    return params, getattr(module, name)(groups, **kwargs)


def set_grads(params: list[torch.Tensor], centers: list[torch.Tensor], step: int, maximize: bool = False) -> None:
    """Gradient of f = sum((w - c)^2 / 2 + 0.025 (w - c)^4) (of -f when `maximize`, so that ascent
    stays bounded); the last tensor has no gradient on odd steps."""
    for index, (param, center) in enumerate(zip(params, centers)):
        if index == len(params) - 1 and step % 2 == 1 and len(params) > 2:
            param.grad = None
            continue
        diff = param.detach() - center
        grad = diff + 0.1 * diff**3
        param.grad = -grad if maximize else grad


def run(module: Any, name: str, kwargs: dict, steps: int = STEPS, per_tensor: bool = False, seed: int = 0):
    starts, centers = problem(shapes_for(name), seed)
    params, opt = build(module, name, kwargs, starts, per_tensor)
    for step in range(steps):
        set_grads(params, centers, step, kwargs.get("maximize", False))
        opt.step()
    return params, opt


def max_rel_error(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> float:
    """max |a - b| / max(|b|, 1e-3): relative, with an absolute floor for values that pass near 0."""
    return max(((a.detach() - b.detach()).abs() / b.detach().abs().clamp(min=1e-3)).max().item()
               for a, b in zip(ours, theirs))


def state_tensors(opt: Any) -> list[torch.Tensor]:
    """Every tensor of the optimizer's state (ASGD's average ``ax``, the moments...), in a fixed order."""
    state = opt.state_dict()["state"]
    return [torch.as_tensor(state[index][key]) for index in sorted(state) for key in sorted(state[index])]


def outcome(opt: Any, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """What two equal runs must agree on: the parameters and the whole state."""
    return [*params, *state_tensors(opt)]


def both(name: str, kwargs: dict, steps: int = STEPS, per_tensor: bool = False) -> float:
    """The largest relative difference between optimlab's and torch's runs (parameters and state)."""
    ours = outcome(*reversed(run(oo, name, kwargs, steps, per_tensor)))
    theirs = outcome(*reversed(run(torch.optim, name, kwargs, steps)))
    assert len(ours) == len(theirs)
    return max_rel_error(ours, theirs)
