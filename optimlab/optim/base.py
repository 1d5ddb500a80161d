"""The torch.optim.Optimizer subclass that every rule-based optimizer of optimlab shares.

A subclass says which state it keeps (`init_state`) and how one parameter (or one flat
buffer) is updated (`apply_rule`, which calls a function of `rules.py`). This class owns the
rest of the drop-in surface: closures, lazy state, the step counter, safe loading, and the
choice between the per-tensor reference path (``fused=False``) and the flat path of
:mod:`optimlab.optim.flat` (``fused=None``: flat buffers, eager vectorized ops; ``fused=True``:
flat buffers and the rule compiled by ``torch.compile``, one call per param group per step).
"""

from __future__ import annotations

import operator
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import torch
from torch import Tensor
from torch.optim import Optimizer

from . import flat as flat_layout
from .compiled import CompiledCall, CompiledRule, SteadyStep, compile_rule
from .flat import FlatSegment, plan_segments
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


@dataclass
class FlatGroup:
    """How one param group is laid out: flat segments, and the parameters left per-tensor."""

    segments: list[FlatSegment]
    per_tensor: list[Tensor] = field(default_factory=list)
    dirty: bool = True  # per-parameter state may hold tensors that are not views of the buffers
    steady: SteadyStep | None = None  # fused=True: the step repeated directly while nothing else changes


# group keys that say how an optimizer runs, not what it computes: a state_dict may lack them
# (saved by torch or an older version) and they never tell one optimizer class from another
IMPLEMENTATION_KEYS = frozenset(
    {"foreach", "fused", "capturable", "differentiable", "maximize", "decoupled_weight_decay", "eps_inside_sqrt"}
)

# keys that torch's LR schedulers add to param groups
SCHEDULER_KEYS = frozenset({"initial_lr", "max_lr", "min_lr", "base_lr", "max_momentum", "base_momentum"})

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
    """Base of SGD, Adagrad, RMSprop, Adam, AdamW: applies `apply_rule` per parameter or per flat buffer."""

    # hooks for subclasses whose state or rule is not elementwise (keep the defaults for the rest)
    flattens = True  # False: every group takes the per-tensor path (0-d per-parameter state, matrix rules)
    sparse_grads = False  # True: `apply_rule` also takes sparse COO gradients (per-tensor path)

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        check_unsupported_flag("differentiable", defaults.get("differentiable", False))
        check_unsupported_flag("capturable", defaults.get("capturable", False))
        self._flat_groups: dict[int, FlatGroup] = {}  # keyed by id(group["params"])
        self._compiled_rule: CompiledRule | None = None
        self._warned_per_tensor = False
        super().__init__(params, defaults)

    # -- what a subclass provides -------------------------------------------------------------
    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        raise NotImplementedError

    def apply_rule(
        self, param: Tensor, grad: Tensor, state: dict[str, Tensor], group: dict[str, Any], step: float | None = None
    ) -> None:
        """Update `param` in place. `step` (the number of this update) is given by the flat path;
        the per-tensor path leaves it None and the rule advances ``state['step']`` itself."""
        raise NotImplementedError

    # -- the drop-in surface -----------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's add_param_group, with the group's hyperparameters validated first, then flattened."""
        self.check_group({**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}})
        super().add_param_group(param_group)
        self._flatten(self.param_groups[-1])  # its parameters move into flat buffers

    def check_group(self, group: dict[str, Any]) -> None:
        """Validate one group's hyperparameters (a subclass with other constraints overrides this)."""
        check_group(group)

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
        """The flat path where the group is flattened, the per-tensor path for the rest."""
        flat = self._flat_groups.get(id(group["params"]))
        if flat is not None and flat.steady is not None:
            if group.get("fused") is True and not torch.compiler.is_compiling() and flat.steady.run(group):
                return
            flat.steady.settle()
            flat.steady = None
        flat_path = flat is not None and group.get("fused") is not False
        # a class that takes sparse gradients checks that none is: at once true when every gradient is a view of
        # its store's buffer (the hooks put it there), which collect_grads() then need not look at again
        in_buffers = flat_path and self.sparse_grads and self._dense_in_buffers(flat)
        if not flat_path or (self.sparse_grads and not in_buffers and has_sparse_grad(group)):
            if flat is not None:
                flat.dirty = True  # the per-tensor path may have created state outside the buffers
            self.step_params(group["params"], group)
            return
        if any(segment.moved() for segment in flat.segments):
            flat = self._flatten(group)  # model.to(...) or .data = ...: lay the group out again
            in_buffers = False
        if flat.dirty:
            for segment in flat.segments:
                segment.adopt_state(self.state)
            flat.dirty = False
        compiled = group.get("fused") is True
        deferred = [
            segment for segment in flat.segments
            if not segment.step(self.state, group, self.apply_rule, self.init_state, defer_whole=compiled,
                                grads_in_buffer=in_buffers)
        ]
        if deferred:
            call = self._step_compiled(deferred, group)
            if call is not None and len(deferred) == len(flat.segments) and not flat.per_tensor:
                flat.steady = SteadyStep.after(deferred, group, call, self._compiled())
        self.step_params(flat.per_tensor, group)

    def _step_compiled(self, segments: list[FlatSegment], group: dict[str, Any]) -> CompiledCall | None:
        """One compiled call over every whole, started segment of a group with the same device, dtype and step (the
        eager rule once the optimizer has compiled MAX_COMPILED_LAYOUTS layouts); that call when it was one
        call over all `segments`."""
        batches: dict[tuple, list[FlatSegment]] = defaultdict(list)
        for segment in segments:
            batches[(segment.data.device, segment.data.dtype, segment.next_step())].append(segment)
        compiled = self._compiled()
        calls = []
        for (_, _, step), members in batches.items():
            calls.append(compiled(members, group, step, self.state))
            if calls[-1] is None:
                for segment in members:
                    segment.step(self.state, group, self.apply_rule, self.init_state)
        return calls[0] if len(calls) == 1 else None

    @staticmethod
    def _dense_in_buffers(flat: FlatGroup) -> bool:
        """True when every gradient of the flat group is a view of its store's buffer or a dense in-place
        one: then none is sparse, decided with one C-level pass per segment."""
        return not flat.per_tensor and all(segment.holds_dense_grads() for segment in flat.segments)

    def step_params(self, params: list[Tensor], group: dict[str, Any]) -> None:
        """The reference path: the rule applied to each parameter that has a gradient."""
        for param in params:
            if param.grad is None:
                continue
            if param.grad.is_sparse and not self.sparse_grads:
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

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled optimizers run every group on the per-tensor path (the buffers are not pickled)."""
        super().__setstate__(state)
        self.__dict__.setdefault("_flat_groups", {})
        self.__dict__.setdefault("_compiled_rule", None)
        self.__dict__.setdefault("_warned_per_tensor", False)

    # -- flat layout ---------------------------------------------------------------------------

    def _flatten(self, group: dict[str, Any]) -> FlatGroup | None:
        key = id(group["params"])
        if group.get("fused") is False or not self.flattens:
            self._flat_groups.pop(key, None)
            return None
        compiled = group.get("fused") is True
        segments, blocked = plan_segments(group["params"], big_numel=flat_layout.COMPILED_BIG_NUMEL if compiled else None)
        if blocked:
            self._warn_per_tensor(blocked, group)
        flat = self._flat_groups[key] = FlatGroup(segments, [p for p in group["params"] if p in blocked])
        return flat

    def _warn_per_tensor(self, blocked: dict[Tensor, str], group: dict[str, Any]) -> None:
        if self._warned_per_tensor:
            return
        self._warned_per_tensor = True
        group_index = next(i for i, g in enumerate(self.param_groups) if g is group)
        index_of = {id(p): i for i, p in enumerate(group["params"])}
        named = [f"param_groups[{group_index}]['params'][{index_of[id(p)]}] (shape {tuple(p.shape)}): {reason}"
                 for p, reason in blocked.items()]
        more = f" and {len(named) - 3} more" if len(named) > 3 else ""
        warnings.warn(
            f"{type(self).__name__}: {len(blocked)} parameter(s) stay on the per-tensor path (correct, slower), "
            f"{'; '.join(named[:3])}{more}", stacklevel=3,
        )

    def _compiled(self) -> CompiledRule:
        """The rule compiled by torch.compile; hyperparameters are unspecialized floats, so a new
        lr or step does not recompile."""
        if self._compiled_rule is None:
            self._compiled_rule = compile_rule(self.apply_rule)
        return self._compiled_rule

    def zero_grad(self, set_to_none: bool = True) -> None:
        """torch's zero_grad; with ``set_to_none=False`` a flat grad buffer is zeroed in one op."""
        if set_to_none:
            super().zero_grad(set_to_none=True)
            return
        done: set[int] = set()
        for flat in self._flat_groups.values():
            for segment in flat.segments:
                if segment.zero_grad():
                    done.update(id(p) for p in segment.params)
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None and id(param) not in done:
                    zero_gradient(param)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict (ours or torch.optim's) without aliasing its tensors.

        Group keys that the saved dict lacks (saved by an older version or by torch) are filled
        with this optimizer's defaults; torch moves state tensors to each parameter's device;
        flattened groups copy the loaded state into their buffers; each group keeps its own `fused`.
        A state_dict of another optimizer class, or for parameters of other shapes, is refused with
        one line (ValueError) before anything is loaded.
        """
        self.check_loadable(state_dict)
        implementations = [group.get("fused") for group in self.param_groups]
        super().load_state_dict(clone_tensors(state_dict))
        for group, fused in zip(self.param_groups, implementations):
            for key, value in self.defaults.items():
                group.setdefault(key, value)
            group["fused"] = fused  # a checkpoint does not change how this optimizer runs
        for flat in self._flat_groups.values():
            flat.steady = None  # adopt_state() reads the loaded step counts
            for segment in flat.segments:
                segment.adopt_state(self.state)
            flat.dirty = False

    def check_loadable(self, state_dict: dict[str, Any]) -> None:
        """Raise ValueError (one line) if `state_dict` was saved by another optimizer class (a group
        lacks some of this class's hyperparameters and has another's) or for parameters of other
        shapes (a state tensor's shape differs from the one `init_state` makes for its parameter)."""
        name = type(self).__name__
        saved_groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if not isinstance(saved_groups, list) or not isinstance(state_dict.get("state"), dict):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups'")
        required = set(self.defaults) - IMPLEMENTATION_KEYS
        for index, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            missing = sorted(required - set(saved))
            # keys another class has (SGD's 'nesterov' in Adam's dict); an older save only lacks keys
            foreign = sorted(set(saved) - set(self.defaults) - IMPLEMENTATION_KEYS - SCHEDULER_KEYS - {"params"})
            if missing and foreign:
                raise ValueError(
                    f"{name}.load_state_dict: param group {index} lacks {', '.join(map(repr, missing))} and has "
                    f"{', '.join(map(repr, foreign))}: a state_dict of another optimizer class?"
                )
            for position, (param, saved_id) in enumerate(zip(group["params"], saved.get("params", []))):
                self._check_state_shapes(state_dict["state"].get(saved_id, {}), param, group, index, position)

    def _check_state_shapes(self, saved: dict[str, Any], param: Tensor, group: dict[str, Any],
                            group_index: int, position: int) -> None:
        if not saved:
            return
        try:  # the state this class makes for the parameter, built on the meta device (no memory)
            expected = self.init_state(torch.empty_like(param, device="meta"), group)
        except Exception:  # noqa: BLE001 - a subclass whose init_state cannot run on meta: nothing to compare
            return
        flat = id(group["params"]) in self._flat_groups  # the flat path keeps every non-scalar state param-shaped
        for key, value in saved.items():
            want = expected.get(key)
            if want is None and flat and isinstance(value, Tensor) and value.dim() > 0:
                want = torch.empty_like(param, device="meta")
            if isinstance(value, Tensor) and isinstance(want, Tensor) and value.shape != want.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: state {key!r} of param_groups[{group_index}]"
                    f"['params'][{position}] has shape {tuple(value.shape)}, the parameter needs "
                    f"{tuple(want.shape)} (a state_dict of another model?)"
                )

def has_sparse_grad(group: dict[str, Any]) -> bool:
    """True when some parameter of the group holds a sparse gradient (the step then runs per tensor)."""
    grads = filter(partial(operator.is_not, None), map(operator.attrgetter("grad"), group["params"]))
    return any(map(operator.attrgetter("is_sparse"), grads))


def zero_gradient(param: Tensor) -> None:
    """Zero one ``.grad`` in place as torch's zero_grad(set_to_none=False) does."""
    grad = param.grad
    if grad.grad_fn is not None:
        grad.detach_()
    else:
        grad.requires_grad_(False)
    grad.zero_()
