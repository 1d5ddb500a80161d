"""Flat buffers: a param group's parameters, gradients and states laid out for one rule call per buffer.

Two objects share the work:

* a :class:`FlatStore` is *where parameters live*: one contiguous ``data`` buffer per (device,
  dtype) for small parameters, each Parameter's ``.data`` set to a view of it (the Parameter
  objects and the model stay the same), and a matching ``grad`` buffer. A post-accumulate-grad
  hook on each of its parameters copies a fresh gradient (after ``zero_grad()``, torch's
  default ``set_to_none=True``) into the grad buffer right after backward produced it, while it
  is still in cache, and makes ``param.grad`` the view; later backward passes, ``clip_grad_norm_``,
  ``GradScaler.unscale_`` and DDP then write into the buffer in place. A store is shared: a
  second optimizer over the same parameters finds them in the first one's store (a weak registry
  keyed by the buffer's address) and works on the same buffers instead of moving them again.
* a :class:`FlatSegment` is *one optimizer's view* of a consecutive range of one store (or of one
  big parameter left where it is), with the optimizer's own state buffers (``exp_avg``,
  ``momentum_buffer``...). The per-parameter state dicts hold views of them, and
  ``state['step']`` is a 0-d view of one step vector per segment, so ``state_dict()`` shows
  torch's keys and shapes.

Which parameters are gathered into a store (:func:`plan_segments`): the small ones
(``numel < BIG_NUMEL``; ``COMPILED_BIG_NUMEL``, the same, under ``fused=True``) whose memory no
other tensor holds. A big parameter, or one whose
storage another tensor also holds (``w = p.detach()`` or a ``model.state_dict()`` taken before,
weight tying through ``.data``), is updated *in place*, where it lies, with the gradient where
backward left it: nothing is copied, and every reference keeps following the parameter.

A step applies the rule once per *run*: a maximal range of consecutive parameters that all have a
gradient, the same step count and the same started state. Normally a segment is one run. A
parameter without a gradient splits the runs and is skipped, as torch skips it.
"""

from __future__ import annotations

import glob
import operator
import weakref
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import Tensor

_GRAD = operator.attrgetter("grad")
# elements per eager chunk on a CPU; None: eager_chunk() derives it from the size of the CPU's last-level cache
EAGER_CHUNK: int | None = None
# Parameters with at least this many elements are updated in place instead of gathered. Gathering costs a
# copy of each fresh gradient in the hook (~8 bytes per element, cheap only while the gradient is in cache);
# an in-place segment costs an eager rule call per tensor per step (tens of us; under fused=True all whole
# segments of a group share one compiled call). benchmarks/real_loop.py on 24 x 1M, three runs with
# the other side of the rule as an ablation (benchmarks/results/real_loop-vm-cpu-*.json, a loaded 2-core
# machine): gathering made step() alone 1.1-1.4x faster every time, but the whole iteration, which is what
# a user waits for, was faster in place in two runs (Adam compiled 0.96x vs 0.79x torch fused's) and even
# in the third. So from 2^18 elements (1 MiB of float32, about what a core's cache holds) in place.
BIG_NUMEL = 1 << 18
# The same rule under fused=True, kept as its own knob. Gathering big tensors there costs the hook's gradient
# copy in backward and saves nothing in the step now that one compiled call updates every segment. Two quiet
# 2-core runs of benchmarks/real_loop.py --ablation on 24 x 1M (with one compiled call per tensor then):
# gathered, step() 1.05-1.10x torch fused's vs 0.84-0.93x in place, but the whole iteration 0.81-0.99x vs
# 0.92-1.02x. What a user waits for is the iteration, so big tensors stay in place here too.
COMPILED_BIG_NUMEL = BIG_NUMEL
Rule = Callable[..., None]  # apply_rule(param, grad, state, group, step=...)
InitState = Callable[[Tensor, dict], dict]

# data buffer address -> the live store that owns it (a second optimizer looks its parameters up here)
_STORES: weakref.WeakValueDictionary[int, FlatStore] = weakref.WeakValueDictionary()


def flatten_blocker(param: Tensor) -> str | None:
    """Why `param` cannot be on the flat path at all (None when it can, gathered or in place)."""
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
    return None


def storage_holders(tensor: Tensor) -> int:
    """How many tensors (and storage objects) hold `tensor`'s memory, `tensor` included."""
    storage = tensor.untyped_storage()
    return torch._C._storage_Use_Count(storage._cdata) - 1  # minus the temporary `storage` itself


def _views(buffer: Tensor, offsets: list[int], params: list[Tensor]) -> list[Tensor]:
    return [buffer[start:start + p.numel()].view(p.shape) for start, p in zip(offsets, params)]


def _offsets(params: list[Tensor]) -> list[int]:
    offsets = [0]
    for param in params:
        offsets.append(offsets[-1] + param.numel())
    return offsets


class FlatStore:
    """Small parameters of one (device, dtype) moved into one data buffer, with one grad buffer."""

    def __init__(self, params: list[Tensor]) -> None:
        self.params = params
        self.offsets = _offsets(params)
        first = params[0]
        self.data = torch.empty(self.offsets[-1], dtype=first.dtype, device=first.device)
        self.grad = torch.zeros_like(self.data)
        with torch.no_grad():
            torch.cat([p.detach().reshape(-1) for p in params], out=self.data)
        for param, view in zip(params, _views(self.data, self.offsets, params)):
            param.data = view
        self.data_ptrs = [param.data_ptr() for param in params]
        self.grad_views = _views(self.grad, self.offsets, params)
        for param, view in zip(params, self.grad_views):
            if param.grad is not None and param.grad.layout == torch.strided:
                view.copy_(param.grad)
                param.grad = view
        self.index = {id(param): index for index, param in enumerate(params)}
        me = weakref.ref(self)
        handles = [  # a frozen parameter gets none (torch refuses it); if unfrozen later the step copies its grad
            param.register_post_accumulate_grad_hook(_gather_hook(me, i))
            for i, param in enumerate(params) if param.requires_grad and param.grad_fn is None
        ]
        weakref.finalize(self, _remove_hooks, handles)
        _STORES[self.data.untyped_storage().data_ptr()] = self

    def position(self, param: Tensor) -> int | None:
        """The index of `param` in this store, if it still lives here."""
        index = self.index.get(id(param))
        if index is None or self.params[index] is not param or param.data_ptr() != self.data_ptrs[index]:
            return None
        return index


def _gather_hook(store_ref: weakref.ref, index: int) -> Callable[[Tensor], None]:
    """Right after backward accumulated `param.grad`: copy a fresh gradient into the store's buffer."""

    def gather(param: Tensor) -> None:
        store = store_ref()
        if store is None or store.params[index] is not param or param.data_ptr() != store.data_ptrs[index]:
            return  # the store is gone, or the parameter moved (model.to): the next step lays it out again
        grad, view = param.grad, store.grad_views[index]
        if grad is None or grad is view or grad.layout != torch.strided or grad.requires_grad:
            return  # create_graph=True keeps its differentiable gradient; the step copies it without a graph
        view.copy_(grad)
        param.grad = view

    return gather


def _remove_hooks(handles: list) -> None:
    for handle in handles:
        handle.remove()


class FlatSegment:
    """One optimizer's consecutive range of a store (or one in-place parameter) and its state buffers."""

    def __init__(self, params: list[Tensor], data: Tensor, grad_views: list[Tensor | None],
                 grad: Tensor | None, store: FlatStore | None) -> None:
        self.params = params
        self.offsets = _offsets(params)
        self.data = data
        self.grad = grad
        self.grad_views = grad_views
        self.store = store  # keeps the store (its buffers and hooks) alive while this segment uses it
        self.in_place = store is None
        self.data_ptrs = [param.data_ptr() for param in params]
        self.states: dict[str, Tensor] = {}
        self.key_order: list[str] = []
        self.steps = torch.zeros(len(params), dtype=_step_dtype())
        self.step_of: list[float | None] = [None] * len(params)
        self.keys_of: list[tuple[str, ...]] = [()] * len(params)
        self.uniform = True

    @classmethod
    def over(cls, store: FlatStore, first: int, last: int) -> FlatSegment:
        """Parameters first..last-1 of `store`."""
        start, end = store.offsets[first], store.offsets[last]
        return cls(store.params[first:last], store.data[start:end], store.grad_views[first:last],
                   store.grad[start:end], store)

    @classmethod
    def where_it_lies(cls, param: Tensor) -> FlatSegment:
        """One parameter updated in its own memory with the gradient where backward left it."""
        return cls([param], param.detach().view(-1), [None], None, None)

    # -- keeping the layout honest -------------------------------------------------------------
    def moved(self) -> bool:
        """True when some parameter's data no longer lives where it did (model.to(), .data = ...)."""
        # no list: a large allocation right after backward freed its graph can cost milliseconds (glibc
        # consolidates the freed chunks then), which would land in the step of whoever allocates first
        return any(map(operator.ne, map(Tensor.data_ptr, self.params), self.data_ptrs))

    def holds_dense_grads(self) -> bool:
        """True when no gradient of this segment is sparse, decided without a Python loop: a
        store's gradients that are views of its buffer are dense."""
        if self.in_place:
            grad = self.params[0].grad
            return grad is None or not grad.is_sparse
        return self._grads_in_buffer()

    def _grads_in_buffer(self) -> bool:
        """Every `.grad` is its view of the grad buffer (the hooks put them there): one C-level pass."""
        return all(map(operator.is_, map(_GRAD, self.params), self.grad_views))

    def collect_grads(self, in_buffer: bool = False) -> list[bool] | None:
        """Bring every dense gradient into the flat grad buffer; None means all are there (known
        without looking when `in_buffer`).

        Otherwise returns which parameters have a gradient this step. Sparse gradients raise, as
        the per-tensor path does. An in-place segment uses the gradient where it lies.
        """
        if self.in_place:
            return self._grad_where_it_lies()
        if in_buffer or self._grads_in_buffer():
            return None
        grads = list(map(_GRAD, self.params))
        present, targets, sources = [], [], []
        for param, grad, view in zip(self.params, grads, self.grad_views):
            present.append(grad is not None)
            if grad is None or grad is view:
                continue
            if grad.layout != torch.strided:
                raise RuntimeError("optimlab optimizers do not support sparse gradients")
            targets.append(view)
            sources.append(grad.detach())
            param.grad = view
        if targets:
            torch._foreach_copy_(targets, sources)
        return None if all(present) else present

    def _grad_where_it_lies(self) -> list[bool] | None:
        grad = self.params[0].grad
        if grad is None:
            return [False]
        if grad.layout != torch.strided:
            raise RuntimeError("optimlab optimizers do not support sparse gradients")
        # the gradient itself (its shape; the rule sees it flat); a copy only for an odd-strided gradient. `.grad`
        # itself never requires grad unless backward ran with create_graph=True, and the rule only reads it
        self.grad = grad if grad.is_contiguous() and not grad.requires_grad else grad.detach().reshape(-1)
        return None

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
        defer_whole: bool = False,
        grads_in_buffer: bool = False,
    ) -> bool:
        """Apply `rule` once per run of this segment; returns True when done.

        With `defer_whole`, a segment that is one started run (the usual case: every gradient
        present, one step count) is left to one compiled call over many segments: it returns
        False, and the caller updates the buffers of :meth:`whole_inputs` and counts the update
        with :func:`advance_whole`. `grads_in_buffer`: the caller has just seen that every gradient
        of this store segment is a view of its buffer.
        """
        present = self.collect_grads(in_buffer=grads_in_buffer)
        if defer_whole and present is None and self.uniform and self.keys_of[0]:
            return False
        for first, last in self.runs(present):
            self._step_run(first, last, state, group, rule, init_state)
        self._release_grad()
        return True

    def whole_inputs(self) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """The rule's buffers for the whole segment: data, gradient and the started state."""
        return self.data, self.grad, {key: self.states[key] for key in self.keys_of[0]}

    def next_step(self) -> float | None:
        """The number of the coming update of a uniform segment (None for a rule without a count)."""
        return None if self.step_of[0] is None else self.step_of[0] + 1

    def _release_grad(self) -> None:
        if self.in_place:
            self.grad = None  # hold no gradient between steps (zero_grad() must be able to free it)

    def _step_run(self, first, last, state, group, rule, init_state) -> None:
        start, end = self.offsets[first], self.offsets[last]
        step, keys = self.step_of[first], self.keys_of[first]
        param = self.data[start:end]
        if step is None and not keys:  # state not started: create it as the per-tensor path would
            fresh = init_state(param, group)
            if "step" in fresh:
                step = float(fresh.pop("step"))
                self.steps[first:last] = step
            for key, value in fresh.items():
                self._state_slice(key, value.dtype)[start:end].copy_(value)
            keys = tuple(fresh)
        next_step = None if step is None else step + 1
        new_keys = self._eager_run(start, end, keys, group, rule, next_step)
        self._advance(first, last, state, new_keys, next_step)

    def _advance(self, first: int, last: int, state: dict, new_keys: tuple[str, ...], next_step: float | None,
                 counted: bool = False) -> None:
        """Parameters first..last-1 were updated: advance their step (unless `counted` already did it
        in the step vector) and bind any state the rule created."""
        whole = first == 0 and last == len(self.params)
        if not self.in_place:
            mark_changed(self.params if whole else self.params[first:last])
        if next_step is not None and not counted:
            if whole:  # the common case, without slicing: this runs once per segment per step
                self.steps += 1
            else:
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
        if self.data.device.type == "cpu":
            prepare_heap()
            chunk = eager_chunk(self.data.element_size())
        else:
            chunk = end - start
        grad = self.grad.view(-1)
        new_keys = keys
        for begin in range(start, max(end, start + 1), max(chunk, 1)):  # an empty run still runs once
            stop = min(begin + chunk, end)
            chunk_state = {key: self.states[key][begin:stop] for key in keys}
            rule(self.data[begin:stop], grad[begin:stop], chunk_state, group, step=step)
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
        if not self.in_place and self._grads_in_buffer():
            self.grad.zero_()
            return True
        return False


def last_level_cache_bytes(caches: str = "/sys/devices/system/cpu/cpu0/cache") -> int | None:
    """The size of the CPU's largest cache (Linux sysfs: `caches`/index*/size, e.g. "32768K"), None where
    it cannot be read."""
    sizes = []
    for path in glob.glob(f"{caches}/index*/size"):
        try:
            text = Path(path).read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes) if sizes else None


_CACHE_BYTES = last_level_cache_bytes()


def eager_chunk(element_size: int) -> int:
    """Elements per chunk of the eager flat path on a CPU: 1/16 of the last-level cache per buffer, so the
    chunks of the 3-6 buffers a rule touches (and its temporaries) stay in cache from one op of the rule to
    the next; 1 MiB per buffer where the cache size is unknown. On this 2-core EPYC (32 MiB L3: 2^19
    float32 elements), 24 x 1M, step ms at 2^18 / 2^19 / 2^20 elements: SGD-momentum 13.7 / 12.1 / 11.1,
    Adam 28.9 / 28.2 / 30.8, Adagrad 19.3 / 17.8 / 18.8, RMSprop 22.6 / 19.6 / 20.0."""
    if EAGER_CHUNK is not None:
        return EAGER_CHUNK
    chunk_bytes = _CACHE_BYTES // 16 if _CACHE_BYTES else 1 << 20
    return 1 << max(14, (chunk_bytes // element_size).bit_length() - 1)


_HEAP_PREPARED = False
GLIBC_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling for its adaptive mmap threshold on 64-bit systems


def prepare_heap() -> None:
    """Let glibc's malloc settle where the eager rule's temporaries stop costing page faults (once per process).

    Each chunk of the eager rule allocates a few temporaries of the chunk's size (Adam: sqrt(v), then
    / sqrt(1 - beta2^t)) and frees them. Depending on how the heap happened to be laid out, those
    frees left a free block above glibc's trim threshold (2x its adaptive mmap threshold, a few MB
    here) at the top of the heap, which glibc then returned to the system, so the next chunk faulted
    its pages in again: 46,624 page faults and 92 instead of 35 ms per AdamW step on 10,000 x 2,500
    (torch's foreach step suffers the same). glibc raises both thresholds by itself when a mapped
    block of up to 32 MiB is freed; this allocates and frees one, so that they start at 32 MiB (mmap)
    and 64 MiB (trim), as they would after any such free. Elsewhere than glibc it costs one
    allocation and changes nothing.
    """
    global _HEAP_PREPARED
    if not _HEAP_PREPARED:
        _HEAP_PREPARED = True
        torch.empty((GLIBC_MMAP_THRESHOLD_MAX - (64 << 10)) // 4, dtype=torch.float32)  # mapped, then unmapped


def mark_changed(params: list[Tensor]) -> None:
    """Bump the autograd version counters of gathered parameters after their update: their data is a view
    set through ``.data``, so a write to the store's buffer does not count as an in-place change of the
    parameter, and a graph that saved one would silently use the new values in backward instead of
    raising "modified by an inplace operation", as it does after torch.optim's default step."""
    try:
        torch.autograd.graph.increment_version(params)
    except (AttributeError, TypeError):  # torch < 2.5: one tensor at a time
        for param in params:
            torch._C._increment_version(param)


def advance_whole(segments: list[FlatSegment], state: dict[Tensor, dict[str, Any]]) -> None:
    """Count, in the segments' Python bookkeeping, the update that one compiled call applies to each of
    `segments`, whole; the call itself advances their step vectors. Done just before the call (its
    memory traffic would push these objects out of the caches); :func:`undo_advance` takes it back
    if the call fails to compile."""
    for segment in segments:
        segment._advance(0, len(segment.params), state, segment.keys_of[0], segment.next_step(), counted=True)
        segment._release_grad()


def undo_advance(segments: list[FlatSegment], step: float | None) -> None:
    """Take back :func:`advance_whole` of `segments` (whose update, number `step`, did not happen)."""
    if step is None:
        return
    for segment in segments:
        segment.step_of[:] = [step - 1] * len(segment.params)


def _step_dtype() -> torch.dtype:
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def plan_segments(
    params: Iterable[Tensor], big_numel: int | None = None
) -> tuple[list[FlatSegment], dict[Tensor, str]]:
    """Lay out `params`: segments over stores (existing or new) and in-place segments; return the
    parameters that cannot be on the flat path at all with their reasons.

    A parameter already in a live store (another optimizer's, or this one's before a re-layout)
    stays there. A new small parameter is gathered into a new store only when no other tensor
    holds its memory, so that moving it surprises nobody; the rest are updated in place.
    """
    big_numel = BIG_NUMEL if big_numel is None else big_numel
    blocked: dict[Tensor, str] = {}
    placed: dict[int, tuple[FlatStore, list[int]]] = {}
    in_place: list[Tensor] = []
    candidates: list[Tensor] = []
    for param in params:
        reason = flatten_blocker(param)
        if reason is not None:
            blocked[param] = reason
            continue
        store = _STORES.get(param.untyped_storage().data_ptr())
        index = store.position(param) if store is not None else None
        if index is not None:
            placed.setdefault(id(store), (store, []))[1].append(index)
        elif param.numel() >= big_numel:
            in_place.append(param)
        else:
            candidates.append(param)
    gather: dict[tuple[torch.device, torch.dtype], list[Tensor]] = defaultdict(list)
    for param, alone in zip(candidates, _held_only_by_themselves(candidates)):
        if alone:
            gather[(param.device, param.dtype)].append(param)
        else:
            in_place.append(param)
    for members in gather.values():
        store = FlatStore(members)
        placed[id(store)] = (store, list(range(len(members))))
    segments = [
        FlatSegment.over(store, first, last) for store, indices in placed.values() for first, last in _ranges(indices)
    ]
    return segments + [FlatSegment.where_it_lies(param) for param in in_place], blocked


def _held_only_by_themselves(params: list[Tensor]) -> list[bool]:
    """For each parameter: is its memory held by no tensor other than these parameters, which do not overlap?"""
    by_storage: dict[int, list[Tensor]] = defaultdict(list)
    for param in params:
        by_storage[param.untyped_storage().data_ptr()].append(param)
    alone: dict[int, bool] = {}
    for ptr, members in by_storage.items():
        spans = sorted((p.storage_offset(), p.storage_offset() + p.numel()) for p in members)
        disjoint = all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))
        alone[ptr] = disjoint and storage_holders(members[0]) == len({id(p) for p in members})
    return [alone[param.untyped_storage().data_ptr()] for param in params]


def _ranges(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted indices as maximal [first, last) ranges of consecutive numbers."""
    ranges: list[tuple[int, int]] = []
    for index in sorted(set(indices)):
        if ranges and ranges[-1][1] == index:
            ranges[-1] = (ranges[-1][0], index + 1)
        else:
            ranges.append((index, index + 1))
    return ranges
