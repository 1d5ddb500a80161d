"""Flat buffers: a param group's parameters, gradients and states in one buffer per (device, dtype).

A :class:`FlatSegment` owns three kinds of contiguous 1-D buffers for the parameters of one
group that share a device and a dtype:

* ``data``: the parameter values. Each Parameter stays the same Python object; its ``.data`` is
  set to a view ``data[offset:offset + numel].view(shape)``, so the model is untouched.
* ``grad``: the gradients. After a step each ``param.grad`` is a view of it, so autograd (which
  accumulates in place into an existing ``.grad``), ``clip_grad_norm_``, ``GradScaler.unscale_``
  and DDP all write straight into the buffer. A gradient that arrives as a fresh tensor (after
  ``zero_grad(set_to_none=True)``) is copied in with one ``_foreach_copy_`` at the next step.
* ``states[key]``: ``exp_avg``, ``momentum_buffer``... The optimizer's per-parameter state dicts
  hold views of them, and ``state['step']`` is a 0-d view of one step vector per segment, so
  ``state_dict()`` shows torch's keys and shapes; the flat layout is internal.

A step applies the rule once per *run*: a maximal range of consecutive parameters that all have a
gradient, the same step count and the same started state. Normally a segment is one run. A
parameter without a gradient splits the runs and is skipped, as torch skips it.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Iterable

import torch
from torch import Tensor

_GRAD = operator.attrgetter("grad")
EAGER_CHUNK = 1 << 18  # elements per eager chunk on a CPU: 1 MiB of float32 per buffer
Rule = Callable[..., None]  # apply_rule(param, grad, state, group, step=...)
InitState = Callable[[Tensor, dict], dict]


def flatten_blocker(param: Tensor, own_storages: set[int] = frozenset()) -> str | None:
    """Why `param` cannot live in a flat buffer (None when it can).

    A parameter whose storage is one of `own_storages` (a buffer of this optimizer) may move.
    """
    if type(param) not in (torch.nn.Parameter, Tensor):
        return f"tensor subclass {type(param).__name__}"
    if param.layout != torch.strided:
        return f"layout {param.layout}"
    if param.is_complex() or not param.is_floating_point():
        return f"dtype {param.dtype}"
    if param.device.type == "meta":
        return "meta device"
    if not param.is_contiguous():
        return "non-contiguous"
    if param._base is not None:
        return "a view of another tensor"
    storage = param.untyped_storage()
    if storage.data_ptr() in own_storages:
        return None
    if param.storage_offset() != 0 or storage.nbytes() != param.numel() * param.element_size():
        return "shares its storage with another tensor"
    return None


def _views(buffer: Tensor, offsets: list[int], params: list[Tensor]) -> list[Tensor]:
    return [buffer[start:start + p.numel()].view(p.shape) for start, p in zip(offsets, params)]


class FlatSegment:
    """The parameters of one group on one (device, dtype), with flat data, grad and state buffers."""

    def __init__(self, params: list[Tensor]) -> None:
        self.params = params
        self.offsets = [0]
        for param in params:
            self.offsets.append(self.offsets[-1] + param.numel())
        total, first = self.offsets[-1], params[0]
        self.data = torch.empty(total, dtype=first.dtype, device=first.device)
        self.grad = torch.zeros(total, dtype=first.dtype, device=first.device)
        with torch.no_grad():
            if params:
                torch.cat([p.detach().reshape(-1) for p in params], out=self.data)
        self.data_views = _views(self.data, self.offsets, params)
        self.grad_views = _views(self.grad, self.offsets, params)
        for param, view in zip(params, self.data_views):
            param.data = view
        self.data_ptrs = [view.data_ptr() for view in self.data_views]
        for param, view in zip(params, self.grad_views):
            if param.grad is not None and param.grad.layout == torch.strided:
                view.copy_(param.grad)
                param.grad = view
        self.states: dict[str, Tensor] = {}
        self.key_order: list[str] = []
        self.steps = torch.zeros(len(params), dtype=_step_dtype())
        self.step_of: list[float | None] = [None] * len(params)
        self.keys_of: list[tuple[str, ...]] = [()] * len(params)
        self.uniform = True

    # -- keeping the layout honest -------------------------------------------------------------
    def moved(self) -> bool:
        """True when some parameter's data no longer lives in this buffer (model.to(), .data = ...)."""
        return list(map(Tensor.data_ptr, self.params)) != self.data_ptrs

    def collect_grads(self) -> list[bool] | None:
        """Bring every dense gradient into the flat grad buffer; None means all are there.

        Otherwise returns which parameters have a gradient this step. Sparse gradients raise, as
        the per-tensor path does.
        """
        grads = list(map(_GRAD, self.params))
        if all(map(operator.is_, grads, self.grad_views)):
            return None
        present, targets, sources = [], [], []
        for param, grad, view in zip(self.params, grads, self.grad_views):
            present.append(grad is not None)
            if grad is None or grad is view:
                continue
            if grad.layout != torch.strided:
                raise RuntimeError("optimlab optimizers do not support sparse gradients")
            targets.append(view)
            sources.append(grad)
            param.grad = view
        if targets:
            torch._foreach_copy_(targets, sources)
        return None if all(present) else present

    def adopt_state(self, state: dict[Tensor, dict[str, Any]]) -> None:
        """Copy each parameter's state tensors into the flat buffers and bind views in their place."""
        for index, param in enumerate(self.params):
            param_state = state[param] if param in state else {}
            self.step_of[index] = None
            if "step" in param_state:
                self.steps[index] = float(param_state["step"])
                self.step_of[index] = float(self.steps[index])
                param_state["step"] = self.steps[index]
            keys = []
            for key, value in param_state.items():
                if isinstance(value, Tensor) and key != "step":
                    view = self._state_view(key, value.dtype, index)
                    view.copy_(value.reshape(view.shape))
                    param_state[key] = view
                    keys.append(key)
            self.keys_of[index] = tuple(keys)
        self._refresh_uniform()

    def _state_view(self, key: str, dtype: torch.dtype, index: int) -> Tensor:
        if key not in self.states:
            self.states[key] = torch.zeros_like(self.data, dtype=dtype)
            self.key_order.append(key)
        start, param = self.offsets[index], self.params[index]
        return self.states[key][start:start + param.numel()].view(param.shape)

    def _refresh_uniform(self) -> None:
        self.uniform = len(set(self.step_of)) <= 1 and len(set(self.keys_of)) <= 1

    # -- the step --------------------------------------------------------------------------------
    def runs(self, present: list[bool] | None) -> list[tuple[int, int]]:
        """Maximal ranges [i, j) of parameters with a gradient, equal step and equal started state."""
        if present is None and self.uniform:
            return [(0, len(self.params))]
        runs: list[tuple[int, int]] = []
        start = None
        for index in range(len(self.params) + 1):
            end_here = index == len(self.params) or (present is not None and not present[index])
            same = (
                not end_here and start is not None
                and self.step_of[index] == self.step_of[start] and self.keys_of[index] == self.keys_of[start]
            )
            if start is not None and not same:
                runs.append((start, index))
                start = None
            if start is None and not end_here:
                start = index
        return runs

    def step(
        self,
        state: dict[Tensor, dict[str, Any]],
        group: dict[str, Any],
        rule: Rule,
        init_state: InitState,
        compiled_rule: Rule | None = None,
    ) -> None:
        """Apply `rule` once per run of this segment (`compiled_rule` for a whole, started segment)."""
        present = self.collect_grads()
        for first, last in self.runs(present):
            self._step_run(first, last, state, group, rule, init_state, compiled_rule)

    def _step_run(self, first, last, state, group, rule, init_state, compiled_rule) -> None:
        start, end = self.offsets[first], self.offsets[last]
        step, keys = self.step_of[first], self.keys_of[first]
        param, grad = self.data[start:end], self.grad[start:end]
        if step is None and not keys:  # state not started: create it as the per-tensor path would
            fresh = init_state(param, group)
            if "step" in fresh:
                step = float(fresh.pop("step"))
                self.steps[first:last] = step
            for key, value in fresh.items():
                self._state_slice(key, value.dtype)[start:end].copy_(value)
            keys = tuple(fresh)
        next_step = None if step is None else step + 1
        whole = first == 0 and last == len(self.params)
        if compiled_rule is not None and whole and keys:  # one kernel, one pass over the buffers
            compiled_rule(param, grad, {key: self.states[key][start:end] for key in keys}, group, step=next_step)
            new_keys = keys
        else:
            new_keys = self._eager_run(start, end, keys, group, rule, next_step)
        if next_step is not None:
            self.steps[first:last] += 1
        if new_keys != self.keys_of[first] or self.step_of[first] is None and next_step is not None:
            self._bind_run(first, last, state, new_keys, next_step)
        elif next_step is not None:
            self.step_of[first:last] = [next_step] * (last - first)
            if not whole:
                self._refresh_uniform()

    def _eager_run(self, start: int, end: int, keys: tuple[str, ...], group: dict, rule: Rule, step) -> tuple:
        """The eager rule over [start, end) in cache-sized chunks on a CPU (each op of the rule then
        re-reads its inputs from cache, as the per-tensor path does with small tensors)."""
        chunk = EAGER_CHUNK if self.data.device.type == "cpu" else end - start
        new_keys = keys
        for begin in range(start, max(end, start + 1), max(chunk, 1)):  # an empty run still runs once
            stop = min(begin + chunk, end)
            chunk_state = {key: self.states[key][begin:stop] for key in keys}
            rule(self.data[begin:stop], self.grad[begin:stop], chunk_state, group, step=step)
            for key, value in chunk_state.items():  # state the rule created (SGD's first velocity)
                if key not in keys:
                    self._state_slice(key, value.dtype)[begin:stop].copy_(value)
            new_keys = tuple(chunk_state)
        return new_keys

    def _state_slice(self, key: str, dtype: torch.dtype) -> Tensor:
        if key not in self.states:
            self.states[key] = torch.zeros_like(self.data, dtype=dtype)
            self.key_order.append(key)
        return self.states[key]

    def _bind_run(self, first: int, last: int, state: dict, keys: tuple[str, ...], step: float | None) -> None:
        for index in range(first, last):
            param = self.params[index]
            param_state = state[param]  # a defaultdict: creates the entry, as torch does at a first step
            if step is not None:
                param_state["step"] = self.steps[index]
            for key in keys:
                param_state[key] = self._state_view(key, self.states[key].dtype, index)
            self.step_of[index], self.keys_of[index] = step, keys
        self._refresh_uniform()

    def zero_grad(self) -> bool:
        """Zero the flat grad buffer in one op when every gradient is a view of it."""
        if all(map(operator.is_, map(_GRAD, self.params), self.grad_views)):
            self.grad.zero_()
            return True
        return False


def _step_dtype() -> torch.dtype:
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def build_segments(params: Iterable[Tensor], own_storages: set[int]) -> tuple[list[FlatSegment], dict[Tensor, str]]:
    """Place the flattenable `params` into one segment per (device, dtype); return the others' reasons."""
    by_layout: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
    blocked: dict[Tensor, str] = {}
    for param in params:
        reason = flatten_blocker(param, own_storages)
        if reason is None:
            by_layout.setdefault((param.device, param.dtype), []).append(param)
        else:
            blocked[param] = reason
    return [FlatSegment(group) for group in by_layout.values()], blocked
