"""The torch.optim.Optimizer subclass that every rule-based optimizer of optimlab shares.

A subclass says which state it keeps (`init_state`) and how one parameter (or one flat
buffer) is updated (`apply_rule`, which calls a function of `rules.py`). This class owns the
rest of the drop-in surface: closures, lazy state, the step counter, safe loading.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor
from torch.optim import Optimizer

from .validate import check_betas, check_lr, check_nonnegative, check_unit_interval, check_unsupported_flag


def scalar_dtype() -> torch.dtype:
    """The dtype torch.optim uses for the `step` counter: float64 under a float64 default."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def new_step_counter() -> Tensor:
    """A fresh `state['step']`, laid out as torch.optim lays it out (a 0-d CPU tensor)."""
    return torch.tensor(0.0, dtype=scalar_dtype())


def clone_tensors(value: Any) -> Any:
    """Deep-copy the tensors of a state_dict so that loading never aliases the caller's tensors."""
    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {key: clone_tensors(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clone_tensors(item) for item in value]
    if isinstance(value, tuple):
        return tuple(clone_tensors(item) for item in value)
    return value


# the checks that every param group's hyperparameters pass, whichever class owns them
GROUP_CHECKS: dict[str, Callable[[Any], Any]] = {
    "lr": check_lr,
    "betas": check_betas,
    "alpha": lambda value: check_unit_interval("alpha", value, closed_right=True),
    **{name: (lambda value, name=name: check_nonnegative(name, value))
       for name in ("eps", "weight_decay", "momentum", "dampening", "lr_decay", "initial_accumulator_value")},
}


def check_group(group: dict[str, Any]) -> None:
    """Reject a param group's bad hyperparameters (torch checks only the constructor's defaults)."""
    for key, check in GROUP_CHECKS.items():
        if key in group:
            check(group[key])
    if group.get("nesterov") and (group.get("momentum", 0) <= 0 or group.get("dampening", 0) != 0):
        raise ValueError(
            f"nesterov=True requires momentum > 0 and dampening = 0 "
            f"(got momentum={group.get('momentum')}, dampening={group.get('dampening')})"
        )


class RuleOptimizer(Optimizer):
    """Base of SGD, Adagrad, RMSprop, Adam, AdamW: applies `apply_rule` per parameter."""

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        check_unsupported_flag("differentiable", defaults.get("differentiable", False))
        check_unsupported_flag("capturable", defaults.get("capturable", False))
        super().__init__(params, defaults)

    # -- what a subclass provides -------------------------------------------------------------
    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        raise NotImplementedError

    def apply_rule(self, param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- the drop-in surface -----------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's add_param_group, with the group's hyperparameters validated first."""
        check_group({**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}})
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step. `closure` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self.step_group(group)
        return loss

    def step_group(self, group: dict[str, Any]) -> None:
        """The reference path: the rule applied to each parameter that has a gradient."""
        for param in group["params"]:
            if param.grad is None:
                continue
            if param.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            # `self.state` is a defaultdict: read it without creating entries torch would not have
            state = self.state[param] if param in self.state else {}
            if not state:
                state = self.init_state(param, group)
            if param.is_complex():
                state = self._apply_rule_complex(param, state, group)
            else:
                self.apply_rule(param, param.grad, state, group)
            if state:
                self.state[param] = state

    def _apply_rule_complex(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
        """A complex number is a pair of reals to the rules (as torch.optim); the state stays complex."""
        real_shape = torch.view_as_real(param).shape
        real_state = {
            k: torch.view_as_real(v) if isinstance(v, Tensor) and v.is_complex() else v for k, v in state.items()
        }
        self.apply_rule(torch.view_as_real(param), torch.view_as_real(param.grad), real_state, group)
        return {
            k: torch.view_as_complex(v) if isinstance(v, Tensor) and v.shape == real_shape and not v.is_complex() else v
            for k, v in real_state.items()
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict (ours or torch.optim's) without aliasing its tensors.

        Group keys that the saved dict lacks (saved by an older version or by torch) are filled
        with this optimizer's defaults; torch moves state tensors to each parameter's device.
        """
        super().load_state_dict(clone_tensors(state_dict))
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
