"""fused=True in the steady state of a loop: the compiled graph called directly (compiled.SteadyStep).

Every test runs the same loop on torch.optim and compares parameters and step counts (float64,
rtol 1e-10), with a group that holds both kinds of segment (two in-place tensors and three
gathered ones: the size rule lowered to 40 elements), and checks that the direct call really ran.
"""

import pytest
import torch

import optimlab.optim as oo
from optimlab.optim import compiled, flat

ALGORITHMS = [("Adam", dict(lr=0.01)), ("AdamW", dict(lr=0.01, weight_decay=0.1)),
              ("SGD", dict(lr=0.05, momentum=0.9)), ("Adam", dict(lr=0.01, amsgrad=True))]
IDS = ["adam", "adamw", "sgd-momentum", "adam-amsgrad"]
SHAPES = [(50,), (8, 9), (3,), (4, 2), (6,)]
STEPS = 20


@pytest.fixture(autouse=True)
def mixed_layout(monkeypatch):
    monkeypatch.setattr(flat, "COMPILED_BIG_NUMEL", 40)
    monkeypatch.setattr(flat, "BIG_NUMEL", 40)


@pytest.fixture
def direct_steps(monkeypatch):
    """Counts the steps that SteadyStep.run took (returned True)."""
    taken = []
    original = compiled.SteadyStep.run

    def spy(self, group):
        done = original(self, group)
        taken.append(done)
        return done

    monkeypatch.setattr(compiled.SteadyStep, "run", spy)
    return taken


def _params():
    gen = torch.Generator().manual_seed(3)
    return [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_() for s in SHAPES]


def _backward(params, step, skip=()):
    gen = torch.Generator().manual_seed(100 + step)
    targets = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]
    terms = [(((p - t) ** 2) * (i + 1)).sum() for i, (p, t) in enumerate(zip(params, targets)) if i not in skip]
    sum(terms, torch.zeros((), dtype=torch.float64)).backward()


def _steps(params, opt, steps):
    """The plain loop, yielding after each step."""
    for step in range(steps):
        opt.zero_grad()
        _backward(params, step)
        opt.step()
        yield step


def _run(cls, kwargs, event=None, steps=STEPS, **extra):
    params = _params()
    opt = cls(params, **kwargs, **extra)
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)  # a new lr every step
    saved = None
    for step in range(steps):
        opt.zero_grad()
        _backward(params, step, skip=(1,) if event == "no gradient" and step in (8, 9) else ())
        if event == "non-contiguous gradient" and step == 8:
            grad = params[1].grad
            params[1].grad = torch.empty(grad.shape[::-1], dtype=grad.dtype).t().copy_(grad)
        if event == "new betas" and step == 8 and "betas" in opt.param_groups[0]:
            opt.param_groups[0]["betas"] = (0.8, 0.99)
        if event == "new momentum" and step == 8 and "momentum" in opt.param_groups[0]:
            opt.param_groups[0]["momentum"] = 0.5
        if event == "load_state_dict" and step == 5:
            saved = opt.state_dict()
        if event == "load_state_dict" and step == 10:
            opt.load_state_dict(saved)
        if event == "moved data" and step == 8:
            for p in params:
                p.data = p.data.clone()
        opt.step()
        schedule.step()
    return params, opt


def _assert_same(cls_name, kwargs, event=None):
    ours, opt = _run(getattr(oo, cls_name), kwargs, event, fused=True)
    reference, ref_opt = _run(getattr(torch.optim, cls_name), kwargs, event)
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-10, atol=1e-12)
    for a, b in zip(ours, reference):
        assert ("step" in opt.state[a]) == ("step" in ref_opt.state[b])
        if "step" in ref_opt.state[b]:
            assert float(opt.state[a]["step"]) == float(ref_opt.state[b]["step"])


@pytest.mark.parametrize("name,kwargs", ALGORITHMS, ids=IDS)
def test_direct_steps_match_torch_with_a_new_lr_every_step(name, kwargs, direct_steps):
    _assert_same(name, kwargs)
    # step 1 starts the state (eager), step 2 compiles and lays out the steady step, 3.. run directly
    assert direct_steps == [True] * (STEPS - 2)


T, F = True, False
# what SteadyStep.run answered at steps 3..20 (the event comes at step 9; load_state_dict at step 11 drops the
# steady step without asking it, and the full step lays it out again)
EXPECTED = {
    # Adam's parameter 1 is two steps behind the others from then on: every step is a full one (two graphs);
    # SGD counts no steps: the direct step takes over again once every gradient is back
    "no gradient": {"Adam": [T] * 6 + [F], "AdamW": [T] * 6 + [F], "SGD": [T] * 6 + [F] + [T] * 9},
    # the full step copies the odd gradient (a graph of its own) and lays out no steady step; the next one does
    "non-contiguous gradient": [T] * 6 + [F] + [T] * 10,
    "new betas": {"Adam": [T] * 6 + [F] + [T] * 11, "AdamW": [T] * 6 + [F] + [T] * 11, "SGD": [T] * 18},
    "new momentum": {"Adam": [T] * 18, "AdamW": [T] * 18, "SGD": [T] * 6 + [F] + [T] * 11},
    "load_state_dict": [T] * 17,
    "moved data": [T] * 6 + [F] + [T] * 11,
}


@pytest.mark.parametrize("event", list(EXPECTED))
@pytest.mark.parametrize("name,kwargs", ALGORITHMS[:3], ids=IDS[:3])
def test_anything_but_the_gradients_and_lr_changing_takes_the_full_step(name, kwargs, event, direct_steps):
    _assert_same(name, kwargs, event)
    expected = EXPECTED[event]
    assert direct_steps == (expected[name] if isinstance(expected, dict) else expected)


@pytest.mark.parametrize("index", [0, 2], ids=["in-place", "gathered"])
def test_a_sparse_gradient_in_the_steady_state_raises_like_torch(index, direct_steps):
    params = _params()
    opt = oo.Adam(params, lr=0.01, fused=True)
    for _ in _steps(params, opt, 4):
        pass
    opt.zero_grad()
    _backward(params, 4)
    before = [p.detach().clone() for p in params]
    params[index].grad = params[index].grad.to_sparse()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        opt.step()
    torch_params = [p.detach().clone().requires_grad_() for p in params]
    torch_params[index].grad = params[index].grad
    with pytest.raises(RuntimeError, match="sparse gradients"):
        torch.optim.Adam(torch_params, lr=0.01).step()
    assert direct_steps == [True, True, False]
    for a, b in zip(params, before):
        assert torch.equal(a.detach(), b)  # nothing was updated


@pytest.mark.parametrize("fused", [True, None])
def test_a_step_counts_as_an_in_place_change_so_autograd_sees_it(fused, direct_steps):
    """As after torch.optim's default step, a graph that saved a parameter refuses to backward after an
    update: in place and gathered parameters alike (the latter's data is a view set through .data)."""
    params = _params()
    opt = oo.Adam(params, lr=0.01, fused=fused)
    for _ in _steps(params, opt, 4):
        pass
    saved_for_backward = sum((p * p).sum() for p in params)  # p * p saves p
    opt.zero_grad()
    _backward(params, 4)
    versions = [p._version for p in params]
    opt.step()
    assert direct_steps == ([True] * 3 if fused else [])
    assert all(p._version > v for p, v in zip(params, versions))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        saved_for_backward.backward()


def _coefficient_graph(write_between: bool) -> torch.fx.GraphModule:
    def f(lr, step, a, b, c):
        a.mul_(torch.ops.optimlab.scalar_once(lr / (1 - 0.9**step)))
        if write_between:
            lr.add_(1.0)
        b.mul_(torch.ops.optimlab.scalar_once(lr / (1 - 0.9**step)))
        c.mul_(torch.ops.optimlab.scalar_once(lr / (1 - 0.99**step)))  # another coefficient
        return a, b, c

    return torch.fx.symbolic_trace(f)


def _evaluate(graph_module):
    lr, step = torch.tensor(0.5, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64)
    return graph_module(lr, step, torch.ones(3), torch.ones(3), torch.ones(3))


def _scalar_once_calls(graph_module):
    return sum(node.target in compiled._SCALAR_ONCE for node in graph_module.graph.nodes)


@pytest.mark.parametrize("write_between", [False, True])
def test_step_coefficients_are_shared_only_when_nothing_changes_them(write_between):
    expected = _evaluate(_coefficient_graph(write_between))
    graph_module = _coefficient_graph(write_between)
    removed = compiled.share_step_coefficients(graph_module)
    assert removed == (0 if write_between else 1)
    assert _scalar_once_calls(graph_module) == 3 - removed
    for a, b in zip(_evaluate(graph_module), expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("fused", [True, None])
def test_no_gradient_outlives_zero_grad(fused, direct_steps):
    """The optimizer keeps no reference to a step's gradients: zero_grad() frees the in-place parameters' own
    gradient tensors, after the full compiled step (step 2) as after a direct one (step 4)."""
    import gc
    import weakref

    params = _params()
    opt = oo.Adam(params, lr=0.01, fused=fused)
    for step in _steps(params, opt, 4):
        gradients = [weakref.ref(p.grad) for p in params[:2]]
        opt.zero_grad()
        gc.collect()
        assert [g() for g in gradients] == [None, None], f"step {step + 1}"
    assert direct_steps == ([True] * 2 if fused else [])
