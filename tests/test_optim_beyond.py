"""Lion, Schedule-Free AdamW/SGD, AdEMAMix and SOAP against their reference packages (float64, rtol 1e-9).

References: lion-pytorch (Lion), schedulefree (AdamWScheduleFree, SGDScheduleFree), pytorch_optimizer
(AdEMAMix, SOAP); all in the `test` extra. Each comparison runs 60 steps on several param groups and
0-d to 3-D tensors, with a state_dict round trip at step 30 on our side; each class also has a
mutant (a subtly wrong rule) that the same comparison must catch.
"""

from __future__ import annotations

import pytest
import torch

import optimlab.optim as oo
from optimlab.optim import rules
from optimlab.optim import soap as soap_module

lion_pytorch = pytest.importorskip("lion_pytorch")
schedulefree = pytest.importorskip("schedulefree")
pytorch_optimizer = pytest.importorskip("pytorch_optimizer")

# rebuilding an optimizer at the resume step leaves the parameters in the first one's flat buffers
pytestmark = pytest.mark.filterwarnings("ignore:.*stay on the per-tensor path")

STEPS, RESUME_AT = 60, 30
SHAPES = [(), (3,), (4, 5), (2, 3, 2)]


def _problem(shapes, dtype):
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    targets = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    return params, targets


def _loss(params, targets, step):
    """A smooth non-quadratic loss whose gradient changes with the step (so the moments are exercised)."""
    return sum(((p - t) ** 2).sum() + 0.1 * ((p - t) ** 4).sum() + 0.2 * torch.sin((step % 3 + 1) * p).sum()
               for p, t in zip(params, targets))


def run(make, *, shapes=SHAPES, dtype=torch.float64, steps=STEPS, resume_at=None, schedule_free=False,
        toggle_at=None, lr_scale=0.5):
    """Train with `make(groups)`; optionally rebuild the optimizer from its state_dict at `resume_at`.

    Two param groups (the second with a smaller lr). ``schedule_free``: train() before the steps,
    eval() around `toggle_at` (an evaluation mid-run), and returns the weights of train and eval mode.
    """
    params, targets = _problem(shapes, dtype)
    params = [p.clone().requires_grad_() for p in params]

    def build():
        first = make([{"params": params[:2]}, {"params": params[2:]}])
        first.param_groups[1]["lr"] = first.param_groups[1]["lr"] * lr_scale
        return first

    opt = build()
    if schedule_free:
        opt.train()
    for step in range(steps):
        if step == resume_at:
            if schedule_free:
                opt.eval()  # the documented way to checkpoint a schedule-free optimizer
            saved = opt.state_dict()
            opt = build()
            opt.load_state_dict(saved)
            if schedule_free:
                opt.train()
        if schedule_free and step == toggle_at:
            opt.eval()
            opt.train()
        opt.zero_grad()
        _loss(params, targets, step).backward()
        opt.step()
    trained = [p.detach().clone() for p in params]
    if not schedule_free:
        return trained
    opt.eval()
    return trained, [p.detach().clone() for p in params]


def assert_matches(ours, theirs, rtol=1e-9, atol=1e-12):
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


# --- Lion ------------------------------------------------------------------------------------

LION_CASES = [dict(lr=1e-2), dict(lr=1e-2, betas=(0.95, 0.98), weight_decay=0.1),
              dict(lr=3e-3, weight_decay=1e-3, decoupled_weight_decay=True)]


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("kwargs", LION_CASES)
def test_lion_matches_lion_pytorch(kwargs, fused):
    ours = run(lambda g: oo.Lion(g, fused=fused, **kwargs), resume_at=RESUME_AT)
    theirs = run(lambda g: lion_pytorch.Lion(g, **kwargs))
    assert_matches(ours, theirs)


def test_lion_mutant_fails(monkeypatch):
    """The sign taken of the updated momentum m_t (one EMA) instead of the interpolation c_t."""
    def wrong(param, grad, exp_avg, *, lr, beta1, beta2, weight_decay):
        exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)
        param.mul_(1 - lr * weight_decay).add_(exp_avg.sign(), alpha=-lr)

    monkeypatch.setattr(rules, "lion_", wrong)
    with pytest.raises(AssertionError):
        assert_matches(run(lambda g: oo.Lion(g, lr=1e-2)), run(lambda g: lion_pytorch.Lion(g, lr=1e-2)))


# --- Schedule-Free -----------------------------------------------------------------------------

SF_ADAMW_CASES = [dict(lr=0.01), dict(lr=0.02, betas=(0.8, 0.99), weight_decay=0.01, warmup_steps=10, r=0.5),
                  dict(lr=0.01, weight_lr_power=1.0, eps=1e-6)]
SF_SGD_CASES = [dict(lr=0.01), dict(lr=0.02, momentum=0.8, weight_decay=0.01, warmup_steps=10, r=1.0)]


def _sf_pairs():
    for kwargs in SF_ADAMW_CASES:
        yield "adamw", kwargs
    for kwargs in SF_SGD_CASES:
        yield "sgd", kwargs


SF_CLASSES = {"adamw": ("ScheduleFreeAdamW", "AdamWScheduleFree"), "sgd": ("ScheduleFreeSGD", "SGDScheduleFree")}


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("kind,kwargs", list(_sf_pairs()))
def test_schedule_free_matches_schedulefree(kind, kwargs, fused):
    """Both modes: y (train) and the average x (eval), with an eval()/train() toggle mid-run."""
    ours_cls, theirs_cls = (getattr(oo, SF_CLASSES[kind][0]), getattr(schedulefree, SF_CLASSES[kind][1]))
    ours = run(lambda g: ours_cls(g, fused=fused, **kwargs), resume_at=RESUME_AT, schedule_free=True, toggle_at=45)
    theirs = run(lambda g: theirs_cls(g, **kwargs), schedule_free=True, toggle_at=45)
    assert_matches(ours[0], theirs[0])
    assert_matches(ours[1], theirs[1])
    assert all(not torch.allclose(a, b) for a, b in zip(*ours) if a.numel())  # the two modes do differ


def test_schedule_free_state_dict_loads_into_reference():
    """Our group keys (k, weight_sum, lr_max...) and state keys (z, exp_avg_sq) are the reference's."""
    params, targets = _problem(SHAPES, torch.float64)
    ours_params = [p.clone().requires_grad_() for p in params]
    ours = oo.ScheduleFreeAdamW(ours_params, lr=0.01)
    for step in range(10):
        ours.zero_grad()
        _loss(ours_params, targets, step).backward()
        ours.step()
    theirs_params = [p.detach().clone().requires_grad_() for p in ours_params]
    theirs = schedulefree.AdamWScheduleFree(theirs_params, lr=0.01)
    theirs.load_state_dict(ours.state_dict())
    ours.eval()
    theirs.eval()
    assert_matches([p.detach() for p in ours_params], [p.detach() for p in theirs_params])


@pytest.mark.parametrize("mutant", ["average_weight", "bias_correction"])
def test_schedule_free_mutants_fail(monkeypatch, mutant):
    """The y step without its (1 - c) factor; Adam's second moment without bias correction."""
    if mutant == "average_weight":
        def wrong(y, z, direction, *, lr, beta, ckp1):
            y.lerp_(z, ckp1)
            y.add_(direction, alpha=-lr * (1 - beta))
            z.add_(direction, alpha=-lr)

        monkeypatch.setattr(rules, "schedule_free_", wrong)
    else:
        original = rules.schedule_free_adam_direction
        monkeypatch.setattr(rules, "schedule_free_adam_direction",
                            lambda *a, **k: original(*a, **{**k, "bias_correction2": 1.0}))
    ours = run(lambda g: oo.ScheduleFreeAdamW(g, lr=0.01), schedule_free=True)
    theirs = run(lambda g: schedulefree.AdamWScheduleFree(g, lr=0.01), schedule_free=True)
    with pytest.raises(AssertionError):
        assert_matches(ours[1], theirs[1])


def test_schedule_free_step_in_eval_mode_is_refused():
    w = torch.zeros(2, requires_grad=True)
    opt = oo.ScheduleFreeSGD([w])
    opt.eval()
    w.grad = torch.ones(2)
    with pytest.raises(RuntimeError, match="eval mode"):
        opt.step()


def test_schedule_free_refuses_fused_true():
    with pytest.raises(ValueError, match="fused=True"):
        oo.ScheduleFreeAdamW([torch.zeros(1, requires_grad=True)], fused=True)


# --- AdEMAMix --------------------------------------------------------------------------------

ADEMAMIX_CASES = [dict(lr=0.01), dict(lr=0.01, betas=(0.8, 0.99, 0.999), alpha=2.0, t_alpha_beta3=40),
                  dict(lr=0.01, weight_decay=0.05, weight_decouple=True, t_alpha_beta3=100.0),
                  dict(lr=0.01, weight_decay=0.05, weight_decouple=True, fixed_decay=True),
                  dict(lr=0.01, weight_decay=0.01, maximize=True, eps=1e-6)]


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("kwargs", ADEMAMIX_CASES)
def test_ademamix_matches_pytorch_optimizer(kwargs, fused):
    ours = run(lambda g: oo.AdEMAMix(g, fused=fused, **kwargs), resume_at=RESUME_AT)
    theirs = run(lambda g: pytorch_optimizer.AdEMAMix(g, **kwargs))
    assert_matches(ours, theirs)


def test_ademamix_mutant_fails(monkeypatch):
    """beta2 and beta3 swapped: a fast second moment and a slow EMA as slow as v's."""
    original = rules.ademamix_
    monkeypatch.setattr(rules, "ademamix_", lambda *a, **k: original(*a, **{**k, "beta2": k["beta3"], "beta3": k["beta2"]}))
    kwargs = dict(lr=0.01, t_alpha_beta3=40)
    with pytest.raises(AssertionError):
        assert_matches(run(lambda g: oo.AdEMAMix(g, **kwargs)), run(lambda g: pytorch_optimizer.AdEMAMix(g, **kwargs)))


def test_ademamix_rejects_bad_betas():
    with pytest.raises(ValueError, match="betas"):
        oo.AdEMAMix([torch.zeros(1, requires_grad=True)], betas=(0.9, 0.999))
    with pytest.raises(ValueError, match=r"betas\[2\]"):
        oo.AdEMAMix([torch.zeros(1, requires_grad=True)], betas=(0.9, 0.999, 1.5))


# --- SOAP --------------------------------------------------------------------------------------

# Where the reference is exact: between eigenbasis refreshes it is eigh (float64) and tensordot only.
# Its QR refresh (every precondition_frequency steps) casts to float32, and on a rectangular matrix
# L = G G^T is rank-deficient at first, so its eigenvectors there are arbitrary: a 1e-15 change in
# the gradient moves the reference by 1e-2. The float64 comparisons therefore keep the refresh out of
# the 60 steps (precondition_frequency=1000); the refresh is compared in float32, on square matrices.
SOAP_SHAPES = [(3,), (4, 5), (2, 3, 2), (5,), (3, 2, 2, 2)]
SOAP_CASES = [dict(), dict(precondition_1d=True, shampoo_beta=0.9), dict(max_precondition_dim=3),
              dict(correct_bias=False, normalize_gradient=True, weight_decay=0.0),
              dict(merge_dims=True, max_precondition_dim=6), dict(merge_dims=True, max_precondition_dim=6,
                                                                   data_format="channels_last"),
              dict(maximize=True, betas=(0.9, 0.99), eps=1e-6)]
# the reference's merge_dims fails on tensors that merge into one dimension (its reshape to [1])
MERGEABLE = [(4, 5), (2, 3, 2), (3, 2, 2, 2)]


@pytest.mark.parametrize("kwargs", SOAP_CASES)
def test_soap_matches_pytorch_optimizer(kwargs):
    kwargs = {"lr": 0.01, "precondition_frequency": 1000, **kwargs}
    shapes = MERGEABLE if kwargs.get("merge_dims") else SOAP_SHAPES
    ours = run(lambda g: oo.SOAP(g, **kwargs), shapes=shapes, resume_at=RESUME_AT)
    theirs = run(lambda g: pytorch_optimizer.SOAP(g, **kwargs), shapes=shapes)
    assert_matches(ours, theirs)


def test_soap_refresh_matches_pytorch_optimizer_in_float32():
    """The QR refresh every 5 steps, where the reference casts to float32: square matrices, float32."""
    kwargs = dict(lr=0.01, precondition_frequency=5)
    shapes = [(4, 4), (3, 3), (3,)]
    ours = run(lambda g: oo.SOAP(g, **kwargs), shapes=shapes, dtype=torch.float32, steps=40, resume_at=20)
    theirs = run(lambda g: pytorch_optimizer.SOAP(g, **kwargs), shapes=shapes, dtype=torch.float32, steps=40)
    assert_matches(ours, theirs, rtol=1e-4, atol=1e-5)


def test_soap_mutant_fails(monkeypatch):
    """Adam's second moment of the unrotated gradient (v of G, not of G' = Q^T G Q)."""
    def wrong(grad, exp_avg, exp_avg_sq, rotate, rotate_back, *, beta1, beta2, eps):
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.lerp_(grad.square(), 1 - beta2)
        return rotate_back(rotate(exp_avg) / exp_avg_sq.sqrt().add_(eps))

    monkeypatch.setattr(soap_module, "soap_direction", wrong)
    kwargs = dict(lr=0.01, precondition_frequency=1000)
    with pytest.raises(AssertionError):
        assert_matches(run(lambda g: oo.SOAP(g, **kwargs), shapes=SOAP_SHAPES),
                       run(lambda g: pytorch_optimizer.SOAP(g, **kwargs), shapes=SOAP_SHAPES))


def test_soap_leaves_1d_parameters_to_adam():
    """Without precondition_1d a bias gets no preconditioner (Q = [None]): SOAP is Adam there."""
    w = torch.randn(4, 3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    opt = oo.SOAP([w, b])
    (w.sum() + b.square().sum()).backward()
    opt.step()
    assert opt.state[b]["Q"] == [None]
    assert [q.shape for q in opt.state[w]["Q"]] == [(4, 4), (3, 3)]


def test_registry_builds_each_new_optimizer():
    for name in ("lion", "sf-adamw", "sf-sgd", "ademamix", "soap"):
        opt = oo.create(name, [torch.zeros(2, 2, requires_grad=True)])
        assert type(opt).__name__ == oo.get_entry(name).cls.__name__


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lion", "ademamix"])
def test_compiled_flat_path_matches_reference(name):
    """fused=True (the rule compiled by torch.compile on flat buffers), float32: rtol 1e-5."""
    kwargs = dict(lr=0.01, weight_decay=0.1) if name == "lion" else dict(lr=0.01, t_alpha_beta3=10)
    ours_cls, theirs_cls = (oo.Lion, lion_pytorch.Lion) if name == "lion" else (oo.AdEMAMix, pytorch_optimizer.AdEMAMix)
    ours = run(lambda g: ours_cls(g, fused=True, **kwargs), dtype=torch.float32, steps=20)
    theirs = run(lambda g: theirs_cls(g, **kwargs), dtype=torch.float32, steps=20)
    assert_matches(ours, theirs, rtol=1e-5, atol=1e-6)
