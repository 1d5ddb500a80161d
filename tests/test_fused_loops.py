"""The loops users write, 50 steps each, give torch.optim's parameters (float64, rtol 1e-10).

The model mixes both kinds of flat segment: with ``BIG_NUMEL`` lowered to 50, the two weight
matrices (128 and 64 elements) are updated in place, where they lie, and the biases are gathered
into a store whose gradients arrive through the post-accumulate-grad hooks.
"""

import pytest
import torch

import optimlab.optim as oo
from optimlab.optim import flat

STEPS = 50
ALGORITHMS = [("Adam", dict(lr=0.01)), ("AdamW", dict(lr=0.01, weight_decay=0.1)),
              ("SGD", dict(lr=0.05, momentum=0.9))]
ALGORITHM_IDS = [name for name, _ in ALGORITHMS]


@pytest.fixture(autouse=True)
def both_kinds_of_segment(monkeypatch):
    monkeypatch.setattr(flat, "BIG_NUMEL", 50)
    monkeypatch.setattr(flat, "COMPILED_BIG_NUMEL", 50)


def _model(dtype=torch.float64):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)).to(dtype)


def _batch(step, dtype=torch.float64):
    gen = torch.Generator().manual_seed(100 + step)
    return torch.randn(16, 4, generator=gen, dtype=dtype), torch.randn(16, 2, generator=gen, dtype=dtype)


def _loss(model, step, dtype=torch.float64):
    x, y = _batch(step, dtype)
    return torch.nn.functional.mse_loss(model(x), y)


def _params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def plain(model, opt, step):
    opt.zero_grad()
    _loss(model, step).backward()
    opt.step()


def zeros(model, opt, step):
    opt.zero_grad(set_to_none=False)
    _loss(model, step).backward()
    opt.step()


def accumulate(model, opt, step):
    opt.zero_grad()
    for micro in range(3):
        (_loss(model, 1000 * micro + step) / 3).backward()
    opt.step()


def clip(model, opt, step):
    opt.zero_grad()
    (10 * _loss(model, step)).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
    opt.step()


def scaler(model, opt, step):
    if not hasattr(opt, "scaler"):
        opt.scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    opt.zero_grad()
    loss = _loss(model, step) * (float("inf") if step == 7 else 1.0)  # step 7 is skipped
    opt.scaler.scale(loss).backward()
    opt.scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.scaler.step(opt)
    opt.scaler.update()


def autocast(model, opt, step):
    opt.zero_grad()
    x, y = _batch(step, torch.float32)  # autocast leaves float64 alone: a float32 model, as in practice
    with torch.autocast("cpu", dtype=torch.bfloat16):  # matmuls in bfloat16, the same in both runs
        out = model(x)
    torch.nn.functional.mse_loss(out.float(), y).backward()
    opt.step()


def model_zero_grad(model, opt, step):
    model.zero_grad()
    _loss(model, step).backward()
    opt.step()


LOOPS = [plain, zeros, accumulate, clip, scaler, autocast, model_zero_grad]


def _train(make, loop, steps=STEPS):
    model = _model(torch.float32 if loop is autocast else torch.float64)
    opt = make(model)
    for step in range(steps):
        loop(model, opt, step)
    return model, opt


def _assert_same_as_torch(name, kwargs, loop, fused=None, rtol=1e-10, atol=1e-12):
    if loop is autocast:  # float32 parameters: two float32 implementations agree to a few ulps per step
        rtol, atol = max(rtol, 1e-5), max(atol, 1e-6)
    ours, opt = _train(lambda m: getattr(oo, name)(m.parameters(), **kwargs, fused=fused), loop)
    theirs, _ = _train(lambda m: getattr(torch.optim, name)(m.parameters(), **kwargs), loop)
    torch.testing.assert_close(_params(ours), _params(theirs), rtol=rtol, atol=atol)
    return opt


@pytest.mark.parametrize("loop", LOOPS, ids=[loop.__name__ for loop in LOOPS])
@pytest.mark.parametrize("name,kwargs", ALGORITHMS, ids=ALGORITHM_IDS)
def test_loop_matches_torch(name, kwargs, loop):
    opt = _assert_same_as_torch(name, kwargs, loop)
    kinds = {segment.in_place for flat_group in opt._flat_groups.values() for segment in flat_group.segments}
    assert kinds == {True, False}  # both the in-place and the gathered segments were exercised


def test_gathered_gradients_arrive_through_the_hook_and_stay_views():
    model, opt = _train(lambda m: oo.Adam(m.parameters(), lr=0.01), plain, steps=2)
    opt.zero_grad()
    _loss(model, 3).backward()
    bias = model[0].bias  # gathered: its fresh gradient was copied into the store by the hook
    store = next(s.store for g in opt._flat_groups.values() for s in g.segments if not s.in_place)
    assert bias.grad.untyped_storage().data_ptr() == store.grad.untyped_storage().data_ptr()
    weight = model[0].weight  # in place: its gradient stays where backward put it
    assert weight.grad.untyped_storage().data_ptr() != store.grad.untyped_storage().data_ptr()


def test_create_graph_gradient_is_not_detached_by_the_hook():
    model = _model()
    oo.Adam(model.parameters(), lr=0.01)
    _loss(model, 0).backward(create_graph=True)
    assert model[0].bias.grad.requires_grad  # a double-backward user keeps their differentiable gradient
    model.zero_grad()


@pytest.mark.slow
@pytest.mark.parametrize("loop", [plain, accumulate, scaler], ids=["plain", "accumulate", "scaler"])
def test_compiled_rule_in_the_loop_matches_torch(loop):
    _assert_same_as_torch("Adam", dict(lr=0.01), loop, fused=True, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("built", ["before", "after"])
def test_compiled_model_matches_torch(built):
    """torch.compile'd model, optimizer built before or after its first call."""
    results = []
    for cls in (oo.Adam, torch.optim.Adam):
        model = _model()
        compiled = torch.compile(model)
        if built == "after":
            compiled(_batch(0)[0])
        opt = cls(model.parameters(), lr=0.01)
        for step in range(STEPS):
            opt.zero_grad()
            x, y = _batch(step)
            torch.nn.functional.mse_loss(compiled(x), y).backward()
            opt.step()
        results.append(_params(model))
    torch.testing.assert_close(results[0], results[1], rtol=1e-10, atol=1e-12)
