"""The flat path stays a drop-in: grads, clipping, AMP, groups, state_dict, schedulers, saving, fallbacks."""

import io
import warnings

import pytest
import torch

import optimlab.optim as oo


def _model(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)).to(dtype)


def _batch(step, dtype=torch.float64):
    gen = torch.Generator().manual_seed(100 + step)
    return torch.randn(16, 4, generator=gen, dtype=dtype), torch.randn(16, 2, generator=gen, dtype=dtype)


def _loss(model, step):
    x, y = _batch(step)
    return torch.nn.functional.mse_loss(model(x), y)


def _flat_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def train_side_by_side(make_opt_ours, make_opt_torch, train_step, steps=25):
    """Run the same loop with our optimizer (flat) and torch's; return both final parameter vectors."""
    results = []
    for make in (make_opt_ours, make_opt_torch):
        model = _model()
        opt = make(model)
        for step in range(steps):
            train_step(model, opt, step)
        results.append(_flat_params(model))
    return results


def assert_same_as_torch(cls_name, kwargs, train_step, steps=25):
    ours, theirs = train_side_by_side(
        lambda m: getattr(oo, cls_name)(m.parameters(), **kwargs),
        lambda m: getattr(torch.optim, cls_name)(m.parameters(), **kwargs),
        train_step, steps,
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_parameters_stay_the_same_objects_and_values_and_share_one_buffer():
    model = _model()
    before = [(p, p.detach().clone()) for p in model.parameters()]
    opt = oo.Adam(model.parameters())
    storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert len(storages) == 1  # one flat buffer
    for (param, value), now in zip(before, model.parameters()):
        assert param is now and torch.equal(param, value)
    assert opt.param_groups[0]["params"][0] is before[0][0]


@pytest.mark.parametrize("mode", ["opt_none", "opt_zero", "model_zero", "alternate"])
def test_every_way_of_clearing_gradients(mode):
    def train_step(model, opt, step):
        if mode == "opt_none" or (mode == "alternate" and step % 2):
            opt.zero_grad()
        elif mode == "model_zero":
            model.zero_grad()
        else:
            opt.zero_grad(set_to_none=False)
        _loss(model, step).backward()
        _loss(model, step + 1000).backward()  # two backward passes accumulate
        opt.step()

    assert_same_as_torch("Adam", dict(lr=0.01), train_step)


def test_set_to_none_gives_none_and_set_to_none_false_gives_zeros():
    model = _model()
    opt = oo.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for set_to_none in (False, True):
        _loss(model, 0).backward()
        opt.step()
        opt.zero_grad(set_to_none=set_to_none)
        for p in model.parameters():
            assert (p.grad is None) if set_to_none else torch.count_nonzero(p.grad) == 0


def test_gradient_clipping():
    def train_step(model, opt, step):
        opt.zero_grad()
        (10 * _loss(model, step)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
        opt.step()

    assert_same_as_torch("SGD", dict(lr=0.05, momentum=0.9), train_step)


def test_amp_grad_scaler_unscale_and_skipped_steps():
    def train_step(model, opt, step):
        scaler = opt.scaler
        opt.zero_grad()
        loss = _loss(model, step) * (float("inf") if step == 3 else 1.0)  # step 3 must be skipped
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()

    def with_scaler(opt):
        opt.scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
        return opt

    ours, theirs = train_side_by_side(
        lambda m: with_scaler(oo.Adam(m.parameters(), lr=0.01)),
        lambda m: with_scaler(torch.optim.Adam(m.parameters(), lr=0.01)),
        train_step,
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_lr_scheduler():
    def make(cls):
        def build(model):
            opt = cls(model.parameters(), lr=0.05, momentum=0.5)
            opt.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
            return opt
        return build

    def train_step(model, opt, step):
        opt.zero_grad()
        _loss(model, step).backward()
        opt.step()
        opt.schedule.step()

    ours, theirs = train_side_by_side(make(oo.RMSprop), make(torch.optim.RMSprop), train_step)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_add_param_group_later():
    def make(cls):
        def build(model):
            opt = cls(model[0].parameters(), lr=0.01)
            opt.added = False
            return opt
        return build

    def train_step(model, opt, step):
        if step == 5:
            opt.add_param_group({"params": model[2].parameters(), "lr": 0.02})
        opt.zero_grad()
        _loss(model, step).backward()
        opt.step()

    ours, theirs = train_side_by_side(make(oo.AdamW), make(torch.optim.AdamW), train_step)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_parameter_without_gradient_is_skipped_and_keeps_its_own_step():
    def train_step(model, opt, step):
        opt.zero_grad()
        _loss(model, step).backward()
        if step % 3 == 1:
            model[0].bias.grad = None  # this parameter sits out: torch neither updates nor counts it
        if step == 4:
            model[2].weight.grad = None
        opt.step()

    assert_same_as_torch("Adam", dict(lr=0.01, amsgrad=True), train_step)
    assert_same_as_torch("Adagrad", dict(lr=0.1, lr_decay=0.1), train_step)
    assert_same_as_torch("SGD", dict(lr=0.1, momentum=0.9), train_step)
    model = _model()
    opt = oo.Adam(model.parameters(), lr=0.01)
    for step in range(7):
        train_step(model, opt, step)
    steps = {name: opt.state[p]["step"].item() for name, p in model.named_parameters()}
    assert steps == {"0.weight": 7, "0.bias": 5, "2.weight": 6, "2.bias": 7}


def _trained(cls, steps=5, fused=None, **kwargs):
    model = _model()
    extra = {} if cls.__module__.startswith("torch") else {"fused": fused}
    opt = cls(model.parameters(), lr=0.01, **kwargs, **extra)
    for step in range(steps):
        opt.zero_grad()
        _loss(model, step).backward()
        opt.step()
    return model, opt


def _continue(model, opt, start, steps=5):
    for step in range(start, start + steps):
        opt.zero_grad()
        _loss(model, step).backward()
        opt.step()
    return _flat_params(model)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_state_dict_has_torch_keys_and_shapes(name):
    kwargs = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    _, ours = _trained(getattr(oo, name), **kwargs)
    model, theirs = _trained(getattr(torch.optim, name), **kwargs)
    a, b = ours.state_dict(), theirs.state_dict()
    assert a["state"].keys() == b["state"].keys()
    for index, param in enumerate(model.parameters()):
        assert a["state"][index].keys() == b["state"][index].keys()
        for key, value in b["state"][index].items():
            assert a["state"][index][key].shape == value.shape
            torch.testing.assert_close(a["state"][index][key], value, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("source,target", [("flat", "torch"), ("torch", "flat"), ("flat", "per_tensor"),
                                           ("per_tensor", "flat")])
def test_state_dict_moves_between_implementations(source, target):
    makers = {
        "flat": lambda m: oo.Adam(m.parameters(), lr=0.01, amsgrad=True),
        "per_tensor": lambda m: oo.Adam(m.parameters(), lr=0.01, amsgrad=True, fused=False),
        "torch": lambda m: torch.optim.Adam(m.parameters(), lr=0.01, amsgrad=True),
    }
    model = _model()
    opt = makers[source](model)
    _continue(model, opt, 0)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    expected = _continue(model, opt, 5)

    buffer.seek(0)
    saved = torch.load(buffer)
    resumed = _model(seed=1)
    resumed.load_state_dict(saved["model"])
    resumed_opt = makers[target](resumed)
    resumed_opt.load_state_dict(saved["opt"])
    torch.testing.assert_close(_continue(resumed, resumed_opt, 5), expected, rtol=1e-10, atol=1e-12)


def test_torch_save_of_the_model_after_flattening():
    model, _ = _trained(oo.Adam)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(_flat_params(loaded), _flat_params(model), rtol=0, atol=0)
    x, _ = _batch(0)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_unflattenable_parameters_fall_back_with_one_warning():
    results = []
    for use_ours in (True, False):
        torch.manual_seed(0)
        base = torch.randn(10, dtype=torch.float64)
        values = [
            torch.randn(3, 4, dtype=torch.float64).t(),  # non-contiguous
            base[:5],  # shares its storage: updated in place, where it lies (no warning)
            torch.randn(3, dtype=torch.complex128),  # complex
            torch.randn(6, dtype=torch.float64),  # fine: flattened
        ]
        params = [torch.nn.Parameter(v) for v in values]
        if use_ours:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                opt = oo.Adam(params, lr=0.1, fused=True)
            messages = [str(w.message) for w in caught if "per-tensor path" in str(w.message)]
            assert len(messages) == 1 and "2 parameter(s)" in messages[0], messages
            assert "['params'][0] (shape (4, 3)): non-contiguous" in messages[0]
            assert "['params'][2] (shape (3,)): dtype torch.complex128" in messages[0]
        else:
            opt = torch.optim.Adam(params, lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            sum((p.abs() ** 2).sum() for p in params).backward()
            opt.step()
        results.append([p.detach().clone() for p in params])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_sparse_gradients_raise_like_the_per_tensor_path():
    for fused in (None, False):
        embedding = torch.nn.Embedding(10, 3, sparse=True)
        opt = oo.Adam(embedding.parameters(), fused=fused)
        embedding(torch.tensor([1, 2])).sum().backward()
        with pytest.raises(RuntimeError, match="sparse"):
            opt.step()


def test_parameter_moved_after_construction_is_still_updated():
    model = _model()
    opt = oo.SGD(model.parameters(), lr=0.1)
    weight = model[0].weight
    weight.data = weight.data.clone()  # no longer a view of the flat buffer
    _loss(model, 0).backward()
    before = weight.detach().clone()
    expected = before - 0.1 * weight.grad
    opt.step()
    assert not torch.equal(weight.detach(), before)
    # one float64 step: `w - 0.1 * g` and torch's `w.add_(g, alpha=-0.1)` round differently, by up to
    # an ulp of w (a fused multiply-add on some CPUs): a few float64 eps, relative, is the honest tolerance
    eps = torch.finfo(torch.float64).eps
    torch.testing.assert_close(weight.detach(), expected, rtol=4 * eps, atol=4 * eps * before.abs().max().item())


def test_a_sparse_step_leaves_no_stale_gradient_check_behind():
    """Step 1 has a sparse gradient (the group goes per tensor after the dense check of some segments);
    step 2 has hand-set gradients only: every segment must look at its gradients again."""

    def run(cls):
        gen = torch.Generator().manual_seed(0)
        first = torch.nn.Parameter(torch.randn(4, dtype=torch.float64, generator=gen))  # a float64 store
        second = torch.nn.Parameter(torch.randn(5, generator=gen))  # a float32 store
        embedding = torch.nn.Embedding(6, 2, sparse=True)
        embedding.weight.data = torch.randn(6, 2, generator=gen)
        kept = embedding.weight.detach()  # held elsewhere: updated in place, its own segment, after the stores
        opt = cls([first, second, embedding.weight], lr=0.1)
        opt.zero_grad()
        (first.sum() + second.sum() + embedding(torch.tensor([1, 3])).sum()).backward()
        opt.step()
        opt.zero_grad()
        first.grad = torch.full_like(first, 2.0)
        second.grad = torch.full_like(second, -3.0)
        opt.step()
        return [first.detach().clone(), second.detach().clone(), kept.clone()]

    for ours, reference in zip(run(oo.SGD), run(torch.optim.SGD)):
        torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-7)
