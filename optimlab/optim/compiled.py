"""``fused=True``: the update rule compiled by torch.compile, one call per param group per step.

Two objects share the work:

* :class:`CompiledRule` applies a rule of ``rules.py`` to every whole segment of a group in one
  call of a compiled function (each optimizer compiles its own copy of the code, one graph per
  layout of buffers);
* :class:`SteadyStep` is the same call in the steady state of a training loop (the same
  parameters in the same places, each with a fresh dense gradient, the same hyperparameters
  but the learning rate): it checks that in a few C-level passes over the group and calls the
  compiled graph directly, without torch.compile's per-call machinery (frame evaluation, guards,
  config patching), which costs ~0.3 ms per step on a CPU once the step's memory traffic has
  pushed that Python out of the caches. Anything else falls back to the full step.
"""

from __future__ import annotations

import operator
import types
import warnings
from functools import partial
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor

from . import flat as flat_layout
from . import rules  # noqa: F401 - registers torch.ops.optimlab.scalar_once
from .flat import FlatSegment

# input layouts compiled per optimizer. Each optimizer compiles its own copy of the code, and torch.compile keeps
# at most 8 graphs per code object; past this many layouts (a model whose set of parameters with a gradient
# changes from step to step) the eager rule runs.
MAX_COMPILED_LAYOUTS = 6

_GRAD = operator.attrgetter("grad")
_LAYOUT_AND_REQUIRES_GRAD = operator.attrgetter("layout", "requires_grad")


def _update_all(rule: Callable[..., None], params: list[Tensor], grads: list[Tensor],
                states: list[dict[str, Tensor]], group: dict[str, Any], step: Tensor | None,
                counters: list[Tensor]) -> None:
    """What torch.compile turns into one call per step: `rule` on every buffer (a gradient may come
    in its parameter's shape: the rule sees it flat), and the step `counters` advanced."""
    for param, grad, state in zip(params, grads, states):
        rule(param, grad.view(param.shape), state, group, step=step)
    for counter in counters:
        counter.add_(1)


def _own_copy(function: Callable) -> Callable:
    """`function` with a code object of its own: torch.compile counts graphs per code object."""
    return types.FunctionType(function.__code__.replace(), function.__globals__, function.__name__)


class DirectCall(NamedTuple):
    """A compiled graph and where its inputs come from: graph input k is ``inputs[order[k]]``."""

    function: Callable[..., Any]
    order: list[int]


class CompiledCall(NamedTuple):
    """What one call of a :class:`CompiledRule` ran: its graph, if that can be called directly, and its
    inputs, with the gradients of its segments (kept by nobody once the step is over)."""

    direct: DirectCall | None
    inputs: list[Tensor]
    grads: list[Tensor]


def _inductor_recording(graphs: list[tuple[Callable, list[int]]], graph: torch.fx.GraphModule,
                        example_inputs: list[Tensor]) -> Callable:
    """torch.compile's default backend (inductor), recording each compiled graph with the ids of the
    tensors it was traced with (dynamo passes the real inputs), so that it can be called directly."""
    from torch._inductor.compile_fx import compile_fx

    share_step_coefficients(graph)
    # the size asserts of inductor's wrapper repeat what dynamo's guards (or SteadyStep.run) have checked: a few
    # us per tensor per call on cold caches
    compiled = compile_fx(graph, example_inputs, config_patches={"size_asserts": False})
    graphs.append((compiled, [id(value) for value in example_inputs]))
    return compiled


def share_step_coefficients(graph_module: torch.fx.GraphModule) -> int:
    """Compute each step coefficient (``rules.once_per_step``) once per graph instead of once per buffer.

    A graph over N buffers holds N ``scalar_once`` calls of the same expression of ``lr`` and
    ``step`` (the rule runs once per buffer); each is a call through the dispatcher at run time (a
    few us, tens once the caches are cold: 48 of them per Adam step on 24 tensors). The calls whose
    argument is the same pure expression of inputs that the graph never writes are merged into
    the first one. Returns how many calls were removed.
    """
    graph = graph_module.graph
    written = set()
    for node in graph.nodes:
        if node.op in ("call_method", "call_function") and _name(node.target).endswith("_") and node.args:
            first = node.args[0]
            written.update(first if isinstance(first, (list, tuple)) else [first])
        if isinstance(node.kwargs.get("out"), torch.fx.Node):
            written.add(node.kwargs["out"])
    first_of: dict[tuple, torch.fx.Node] = {}
    removed = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in _SCALAR_ONCE or len(node.args) != 1:
            continue
        key = _expression_key(node.args[0], written)
        if key is None:
            continue
        if key in first_of:
            node.replace_all_uses_with(first_of[key])
            graph.erase_node(node)
            removed += 1
        else:
            first_of[key] = node
    if removed:
        graph_module.recompile()
    return removed


_SCALAR_ONCE = (torch.ops.optimlab.scalar_once, torch.ops.optimlab.scalar_once.default)


def _name(target: Any) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _expression_key(value: Any, written: set) -> tuple | None:
    """A structural key of `value`, an argument in an FX graph: equal keys, equal values. None when it
    reads something the graph writes, or holds an op that writes or is not a plain function of its arguments."""
    if isinstance(value, (list, tuple)):
        keys = [_expression_key(item, written) for item in value]
        return None if None in keys else ("seq", tuple(keys))
    if not isinstance(value, torch.fx.Node):
        return ("const", type(value).__name__, repr(value))
    if value in written:
        return None
    if value.op == "placeholder":
        return ("input", value.target)
    if value.op not in ("call_function", "call_method") or _name(value.target).endswith("_"):
        return None
    args = _expression_key(value.args, written)
    kwargs = _expression_key(tuple(sorted(value.kwargs.items())), written)
    if args is None or kwargs is None:
        return None
    return (value.op, value.target, args, kwargs)


def _rule_inputs(params: list[Tensor], grads: list[Tensor], states: list[dict[str, Tensor]],
                 scalars: tuple[Tensor, Tensor], counters: list[Tensor]) -> list[Tensor]:
    """Every tensor a compiled call reads or writes, in one list."""
    return [*params, *grads, *(value for state in states for value in state.values()), *scalars, *counters]


class CompiledRule:
    """`rule` compiled by torch.compile into one call per step over all whole segments of a group.

    One call, not one per buffer: on a CPU each call of a compiled function costs tens of
    microseconds, and a few hundred once the memory traffic of a step has pushed torch.compile's
    own code and data out of the caches (measured: 0.3 ms per call on 24 x 1M Adam).
    ``lr`` and ``step`` go in as 0-d tensors on the buffers' device (refilled in place each
    step), so schedules and the step counter never recompile; the other hyperparameters are
    constants of the kernel (changing momentum or betas recompiles once). A layout (the sizes,
    dtypes and state keys of the buffers) compiles once; ``dynamic=False``, because the
    size-generic kernel ran 2x slower on a CPU (31.7 vs 17.0 ms per Adam step on 25M parameters).
    Inductor caches compiled kernels on disk across runs (``TORCHINDUCTOR_CACHE_DIR``).
    """

    def __init__(self, rule: Callable[..., None]) -> None:
        self.rule = rule
        self.graphs: list[tuple[Callable, list[int]]] = []  # every graph compiled, see _inductor_recording
        self.compiled = torch.compile(_own_copy(_update_all), dynamic=False,
                                      backend=partial(_inductor_recording, self.graphs))
        self.layouts: set[tuple] = set()
        self.scalars: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}
        self.direct: dict[tuple, DirectCall | None] = {}  # (layout, other hyperparameters) -> its graph
        self.broken: str | None = None  # why compiling failed: every later call runs the eager rule

    def accepts(self, layout: tuple) -> bool:
        """True when `layout` is compiled or may still be (at most MAX_COMPILED_LAYOUTS of them)."""
        if layout in self.layouts:
            return True
        if len(self.layouts) >= MAX_COMPILED_LAYOUTS:
            return False
        self.layouts.add(layout)
        return True

    def scalar_tensors(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """The 0-d ``lr`` and ``step`` tensors for buffers like `like` (float64 on a CPU keeps
        1 - beta**t as exact as the per-tensor path)."""
        key = (like.device, like.dtype)
        if key not in self.scalars:
            dtype = torch.float64 if like.device.type == "cpu" else like.dtype
            self.scalars[key] = (torch.zeros((), dtype=dtype, device=like.device),
                                 torch.zeros((), dtype=dtype, device=like.device))
        return self.scalars[key]

    def __call__(self, segments: list[FlatSegment], group: dict[str, Any], step: float | None,
                 state: dict[Tensor, dict[str, Any]]) -> CompiledCall | None:
        """Update the whole of every segment (all on one device) in one call and count the update in
        the segments (`state`: the optimizer's); None, touching nothing, if this layout is not compiled."""
        if self.broken is not None:
            return None
        params, grads, states = map(list, zip(*(segment.whole_inputs() for segment in segments)))
        counters = [segment.steps for segment in segments] if step is not None else []
        # the step vectors live on the CPU: a graph over CPU buffers advances them; a GPU graph leaves them to
        # one eager op (a CPU write inside a GPU graph is a device sync)
        eager_counters, counters = (counters, []) if params[0].device.type != "cpu" else ([], counters)
        layout = (step is None,) + tuple((p.numel(), p.dtype, g.dtype, tuple(g.shape), tuple(s), len(segment.params))
                                         for p, g, s, segment in zip(params, grads, states, segments))
        if not self.accepts(layout):
            return None
        lr, step_tensor = self.scalar_tensors(params[0])
        lr.fill_(group["lr"])
        hyper = {name: value for name, value in group.items() if name != "params"}
        hyper["lr"] = lr
        if step is not None:
            step_tensor.fill_(step)
        # count before the call, not after: its memory traffic pushes these Python objects out of the caches
        # (24 x 1M Adam: 0.26 ms of bookkeeping after the call)
        flat_layout.advance_whole(segments, state)
        if eager_counters:
            torch._foreach_add_(eager_counters, 1)
        compiled_before = len(self.graphs)
        try:
            self.compiled(self.rule, params, grads, states, hyper, None if step is None else step_tensor, counters)
        except _compile_errors() as error:  # no C++ compiler, no Triton: the eager flat path instead
            if eager_counters:
                torch._foreach_sub_(eager_counters, 1)
            flat_layout.undo_advance(segments, step)
            self.broken = str(error).strip().splitlines()[0][:300]
            owner = type(getattr(self.rule, "__self__", self)).__name__
            warnings.warn(f"{owner}: fused=True could not compile the update rule ({self.broken}); this optimizer "
                          f"runs the same rule eagerly on its flat buffers (as fused=None) instead", stacklevel=7)
            return None
        inputs = _rule_inputs(params, grads, states, (lr, step_tensor), counters)
        return CompiledCall(self._direct_call((layout, _constants(group)), compiled_before, inputs), inputs, grads)

    def _direct_call(self, key: tuple, compiled_before: int, inputs: list[Tensor]) -> DirectCall | None:
        """The graph the last call ran, if it was one graph traced from `inputs` alone (not split by a graph
        break, no other tensor lifted into it); found again by `key` when the call compiled nothing."""
        new = self.graphs[compiled_before:]
        if not new:
            return self.direct.get(key)
        direct = None
        if len(new) == 1:
            function, ids = new[0]
            position = {id(value): index for index, value in enumerate(inputs)}
            order = [position.get(value) for value in ids]
            if None not in order:
                direct = DirectCall(function, order)
        self.direct[key] = direct
        return direct


def _constants(group: dict[str, Any]) -> tuple | None:
    """The hyperparameters a graph bakes in (all but params and lr), hashable; None if some cannot be compared."""
    try:
        constants = tuple((name, value) for name, value in group.items() if name not in ("params", "lr"))
        hash(constants)
    except TypeError:
        return None
    if any(isinstance(value, Tensor) for _, value in constants):
        return None
    return constants


def _compile_errors() -> tuple[type[BaseException], ...]:
    """What torch.compile raises when it cannot build a kernel here (InductorError is torch >= 2.6's)."""
    import torch._dynamo.exc
    import torch._inductor.exc

    inductor_error = getattr(torch._inductor.exc, "InductorError", None)
    return (torch._dynamo.exc.BackendCompilerFailed,) + ((inductor_error,) if inductor_error else ())


def compile_rule(rule: Callable[..., None]) -> CompiledRule:
    """The rule compiled into one call per step (see :class:`CompiledRule`)."""
    return CompiledRule(rule)


class SteadyStep:
    """One param group's compiled step, repeated while nothing but the gradients and the learning rate changes.

    Built right after a full step that updated every segment of the group in one compiled call on
    a CPU. :meth:`run` repeats that call with the new gradients if, and only if:

    * every parameter's data still lies where it did (no ``model.to()``, no ``.data = ...``);
    * every gathered parameter's ``.grad`` is its view of the store's buffer (the hooks put it there);
    * every in-place parameter has a dense, contiguous gradient that does not require grad (torch
      keeps a ``.grad`` at its parameter's shape, dtype and device);
    * every hyperparameter but ``lr`` is what the graph was compiled with.

    It counts the step in the segments' step vectors (``state['step']``) as the full step does;
    the segments' Python copy of the count is brought up to date by :meth:`settle` before anything
    else looks at it.
    """

    def __init__(self, segments: list[FlatSegment], group: dict[str, Any], direct: DirectCall, inputs: list[Tensor],
                 grads_used: list[Tensor], scalars: tuple[Tensor, Tensor], next_step: float | None) -> None:
        self.segments = segments
        self.function = direct.function
        self.params = [param for segment in segments for param in segment.params]
        self.data_ptrs = list(map(Tensor.data_ptr, self.params))
        stores = [segment for segment in segments if not segment.in_place]
        self.store_params = [param for segment in stores for param in segment.params]
        self.store_grads = [view for segment in stores for view in segment.grad_views]
        self.in_place_params = [segment.params[0] for segment in segments if segment.in_place]
        self.plain_dense = [(torch.strided, False)] * len(self.in_place_params)
        # the graph's inputs are `the in-place parameters' gradients of this step + others`, in the graph's order
        fresh = [grad for segment, grad in zip(segments, grads_used) if segment.in_place]
        ids = {id(value): index for index, value in enumerate(fresh)}
        others = [value for value in inputs if id(value) not in ids]
        ids.update({id(value): len(fresh) + index for index, value in enumerate(others)})
        self.others = others
        self.order = [ids[id(inputs[index])] for index in direct.order]
        self.group_then = dict(group)  # hashable values only (see after()): equal means the same graph
        self.lr, self.step_tensor = scalars
        self.next_step = next_step

    @classmethod
    def after(cls, segments: list[FlatSegment], group: dict[str, Any], call: CompiledCall,
              compiled: CompiledRule) -> SteadyStep | None:
        """The steady step of a group whose whole step just ran as one compiled `call` over `segments`
        (None where it cannot be repeated directly: no single graph, a device other than the CPU, a
        hyperparameter that is a tensor, a gradient that is not a contiguous dense view)."""
        direct = call.direct
        if direct is None or _constants(group) is None or segments[0].data.device.type != "cpu":
            return None
        for segment in segments:
            grad = segment.params[0].grad if segment.in_place else None
            if grad is not None and (grad.requires_grad or not grad.is_contiguous()):
                return None  # the full step used a copy of this gradient (create_graph=True, odd strides)
        return cls(segments, group, direct, call.inputs, call.grads, compiled.scalar_tensors(segments[0].data),
                   segments[0].next_step())

    def run(self, group: dict[str, Any]) -> bool:
        """The step, if the group is still in the state this was built in (see the class); False, touching
        nothing, otherwise."""
        if list(map(Tensor.data_ptr, self.params)) != self.data_ptrs:
            return False
        if not all(map(operator.is_, map(_GRAD, self.store_params), self.store_grads)):
            return False
        # torch keeps a .grad at its parameter's shape, dtype and device; what may change is whether there is
        # one, its layout (sparse), its strides and, after backward(create_graph=True), requires_grad
        grads = list(map(_GRAD, self.in_place_params))
        try:
            if list(map(_LAYOUT_AND_REQUIRES_GRAD, grads)) != self.plain_dense:
                return False
        except AttributeError:  # a parameter without a gradient this step
            return False
        if not all(map(Tensor.is_contiguous, grads)):
            return False
        self.group_then["lr"] = group["lr"]
        if group != self.group_then:
            return False
        self.lr.fill_(group["lr"])
        if self.next_step is not None:
            self.step_tensor.fill_(self.next_step)
        if self.store_params:
            flat_layout.mark_changed(self.store_params)
        values = grads + self.others
        self.function(*map(values.__getitem__, self.order))  # advances the step vectors too
        if self.next_step is not None:
            self.next_step += 1
        return True

    def settle(self) -> None:
        """Bring the segments' Python copy of the step count up to the steps this ran."""
        if self.next_step is None:
            return
        for segment in self.segments:
            segment.step_of[:] = [self.next_step - 1] * len(segment.params)
