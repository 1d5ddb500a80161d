"""Schedules: closed forms at chosen steps, torch's schedulers step by step, the adapter, resume."""

import math

import pytest
import torch
from torch.optim import lr_scheduler as tls

import optimlab.optim as oo
from optimlab.schedules import (
    LRSchedule,
    parse_schedule,
    snapshot_steps,
)

BASE_LR = 0.5


def _lrs_from_torch(make_scheduler, steps, lr=BASE_LR, optimizer_cls=torch.optim.SGD, **opt_kwargs):
    """The lr each of ``steps`` optimizer steps used under a torch scheduler (two param groups)."""
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    optimizer = optimizer_cls([{"params": [a]}, {"params": [b], "lr": lr / 4}], lr=lr, **opt_kwargs)
    scheduler = make_scheduler(optimizer)
    used = []
    for _ in range(steps):
        used.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return used


def _lrs_from_optimlab(spec, steps, lr=BASE_LR, optimizer_cls=oo.SGD, **opt_kwargs):
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    optimizer = optimizer_cls([{"params": [a]}, {"params": [b], "lr": lr / 4}], lr=lr, **opt_kwargs)
    schedule = LRSchedule(optimizer, parse_schedule(spec))
    used = []
    for _ in range(steps):
        used.append([group["lr"] for group in optimizer.param_groups])
        assert schedule.get_last_lr() == used[-1]
        optimizer.step()
        schedule.step()
    return used


def _flat(rows):
    return [lr for row in rows for lr in row]


TORCH_EQUIVALENTS = [
    ("step:every=7,factor=0.5", lambda o: tls.StepLR(o, step_size=7, gamma=0.5), 40),
    ("multistep:milestones=5/12/30,factor=0.3", lambda o: tls.MultiStepLR(o, [5, 12, 30], gamma=0.3), 40),
    ("exponential:gamma=0.93", lambda o: tls.ExponentialLR(o, gamma=0.93), 60),
    ("polynomial:total=30,power=2", lambda o: tls.PolynomialLR(o, total_iters=30, power=2.0), 45),
    ("cosine:total=50", lambda o: tls.CosineAnnealingLR(o, T_max=50), 51),
    ("cosine_restarts:period=10", lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=10), 55),
    ("cosine_restarts:period=5,mult=2", lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2), 80),
    ("linear:total=10,start=0.2,end=0.9", lambda o: tls.LinearLR(o, 0.2, 0.9, total_iters=10), 20),
    ("onecycle:total=100", lambda o: tls.OneCycleLR(o, max_lr=[BASE_LR, BASE_LR / 4], total_steps=100,
                                                      cycle_momentum=False), 100),
    ("onecycle:total=60,pct_start=0.25,div=10,final_div=100,anneal=linear,three_phase=true",
     lambda o: tls.OneCycleLR(o, max_lr=[BASE_LR, BASE_LR / 4], total_steps=60, pct_start=0.25, div_factor=10,
                              final_div_factor=100, anneal_strategy="linear", three_phase=True,
                              cycle_momentum=False), 60),
]


@pytest.mark.parametrize("spec, make_scheduler, steps", TORCH_EQUIVALENTS, ids=[c[0] for c in TORCH_EQUIVALENTS])
def test_matches_torch_scheduler_step_by_step(spec, make_scheduler, steps):
    expected = _lrs_from_torch(make_scheduler, steps)
    got = _lrs_from_optimlab(spec, steps)
    assert _flat(got) == pytest.approx(_flat(expected), rel=1e-9, abs=1e-12)


def test_cosine_final_is_torch_eta_min_as_a_fraction_of_the_groups_lr():
    # torch's eta_min is one absolute lr; optimlab's `final` is a fraction of each group's lr,
    # so they agree on a single group (eta_min = final * lr).
    x = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([x], lr=BASE_LR)
    scheduler = tls.CosineAnnealingLR(optimizer, T_max=40, eta_min=0.1 * BASE_LR)
    schedule = parse_schedule("cosine:total=40,final=0.1")
    for step in range(41):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(BASE_LR * schedule(step), rel=1e-9)
        optimizer.step()
        scheduler.step()


@pytest.mark.parametrize("mode, gamma", [("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.97)])
def test_cyclic_matches_torch_cycliclr(mode, gamma):
    # Convention: the group's lr is max_lr; low = base_lr / max_lr.
    def make(o):
        return tls.CyclicLR(o, base_lr=[0.1 * BASE_LR, 0.1 * BASE_LR / 4], max_lr=[BASE_LR, BASE_LR / 4],
                            step_size_up=6, step_size_down=4, mode=mode, gamma=gamma, cycle_momentum=False)

    expected = _lrs_from_torch(make, 50)
    got = _lrs_from_optimlab(f"cyclic:up=6,down=4,low=0.1,mode={mode},gamma={gamma}", 50)
    assert _flat(got) == pytest.approx(_flat(expected), rel=1e-9, abs=1e-12)


def test_warmup_matches_linearlr_then_sequentiallr():
    def make(o):
        warm = tls.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=8)
        cosine = tls.CosineAnnealingLR(o, T_max=30)
        return tls.SequentialLR(o, [warm, cosine], milestones=[8])

    expected = _lrs_from_torch(make, 38)
    got = _lrs_from_optimlab("cosine:total=30,warmup=8,warmup_start=0.1", 38)
    assert _flat(got) == pytest.approx(_flat(expected), rel=1e-9, abs=1e-12)


def test_epoch_unit_matches_torch_stepped_once_per_epoch():
    steps_per_epoch, epochs = 7, 12
    expected = [lrs for lrs in _lrs_from_torch(lambda o: tls.StepLR(o, 3, 0.5), epochs) for _ in range(steps_per_epoch)]
    got = _lrs_from_optimlab(f"step:every=3,factor=0.5,steps_per_epoch={steps_per_epoch}", epochs * steps_per_epoch)
    assert _flat(got) == pytest.approx(_flat(expected), rel=1e-12)
    from_caller = parse_schedule("step:every=3,factor=0.5,unit=epoch", steps_per_epoch=steps_per_epoch)
    assert [from_caller(t) for t in range(84)] == [lr[0] / BASE_LR for lr in got]


def test_smooth_epochs_match_torch_fractional_epoch_stepping():
    # torch's documented use: scheduler.step(epoch + i / iters) after each batch.
    iters = 5
    x = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([x], lr=BASE_LR)
    scheduler = tls.CosineAnnealingWarmRestarts(optimizer, T_0=2, T_mult=2)
    schedule = parse_schedule(f"cosine_restarts:period=2,mult=2,steps_per_epoch={iters},smooth=true")
    for epoch in range(10):
        for i in range(iters):
            scheduler.step(epoch + i / iters)
            assert optimizer.param_groups[0]["lr"] == pytest.approx(BASE_LR * schedule(epoch * iters + i), abs=1e-12)


CLOSED_FORMS = [
    ("constant", 123, 1.0),
    ("step:every=10,factor=0.5", 25, 0.25),
    ("step:every=10,factor=0.5", 9, 1.0),
    ("multistep:milestones=3/8,factor=0.1", 8, 0.01),
    ("exponential:gamma=0.9", 3, 0.729),
    ("exponential:k=0.1", 10, math.exp(-1)),
    ("inverse_time:k=0.1", 10, 0.5),
    ("inverse_time:k=1,power=2", 3, 1 / 16),
    ("polynomial:total=10,power=2", 5, 0.25),
    ("polynomial:total=10", 15, 0.0),
    ("cosine:total=100", 50, 0.5),
    ("cosine:total=100,final=0.2", 100, 0.2),
    ("cosine:total=100", 150, 0.0),
    ("cosine_restarts:period=10,mult=2", 10, 1.0),
    ("cosine_restarts:period=10,mult=2", 20, 0.5),
    ("cosine_restarts:period=10,mult=2", 31, 1 - 0.5 * (1 - math.cos(math.pi * 1 / 40))),
    ("cyclic:up=4,low=0", 2, 0.5),
    ("cyclic:up=4,low=0", 4, 1.0),
    ("cyclic:up=4,low=0", 8, 0.0),
    ("cyclic:up=4,low=0,mode=triangular2", 12, 0.5),
    ("cyclic:up=4,low=0.2,mode=exp_range,gamma=0.5", 1, 0.2 + 0.8 * 0.25 * 0.5),
    ("onecycle:total=100", 0, 1 / 25),
    ("onecycle:total=100", 29, 1.0),
    ("onecycle:total=100", 99, 1 / 25 / 1e4),
    ("onecycle:total=100,anneal=linear", 64, 1 - (1 - 1 / 25 / 1e4) * 35 / 70),
    ("cosine:total=100,warmup=10", 5, 0.5),
    ("cosine:total=100,warmup=10,warmup_start=0.2", 5, 0.6),
    ("cosine:total=100,warmup=10", 60, 0.5),
    ("step:every=2,factor=0.5,steps_per_epoch=10", 39, 0.5),
    ("step:every=2,factor=0.5,steps_per_epoch=10", 40, 0.25),
]


@pytest.mark.parametrize("spec, step, expected", CLOSED_FORMS)
def test_closed_form_at_chosen_steps(spec, step, expected):
    assert parse_schedule(spec)(step) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_snapshot_steps_are_the_last_steps_of_each_cycle():
    assert snapshot_steps(parse_schedule("cosine_restarts:period=10"), 35) == [9, 19, 29]
    assert snapshot_steps(parse_schedule("cosine_restarts:period=5,mult=2"), 40) == [4, 14, 34]
    assert snapshot_steps(parse_schedule("cosine_restarts:period=10,warmup=5"), 40) == [14, 24, 34]
    assert snapshot_steps(parse_schedule("cosine_restarts:period=2,steps_per_epoch=10"), 60) == [19, 39, 59]
    cyclic = parse_schedule("cyclic:up=3,down=2,low=0.2")
    assert snapshot_steps(cyclic, 12) == [5, 10]
    assert all(cyclic(step) == pytest.approx(0.2) for step in (5, 10))  # at the lowest lr
    assert snapshot_steps(parse_schedule("cosine:total=10"), 30) == []
    schedule = parse_schedule("cosine_restarts:period=7")
    for step in snapshot_steps(schedule, 50):  # the lr is lowest there and restarts right after
        assert schedule(step) < schedule(step - 1) and schedule(step + 1) == 1.0


def _quadratic_run(optimizer_cls, schedule_factory, steps, **kwargs):
    torch.manual_seed(0)
    w = torch.randn(5, dtype=torch.float64, requires_grad=True)
    target = torch.linspace(-1, 1, 5, dtype=torch.float64)
    optimizer = optimizer_cls([w], **kwargs)
    scheduler = schedule_factory(optimizer)
    for _ in range(steps):
        optimizer.zero_grad()
        (0.1 * ((w - target) ** 4).sum() + ((w - target) ** 2).sum()).backward()
        optimizer.step()
        scheduler.step()
    return w.detach()


@pytest.mark.parametrize("optimizer_cls", [oo.SGD, torch.optim.SGD, oo.Adam, torch.optim.Adam])
def test_adapter_drives_optimlab_and_torch_optimizers_like_torch_scheduler(optimizer_cls):
    kwargs = dict(lr=0.02, momentum=0.9) if "SGD" in optimizer_cls.__name__ else dict(lr=0.05)
    ours = _quadratic_run(optimizer_cls, lambda o: LRSchedule(o, "cosine_restarts:period=10,mult=2"), 60, **kwargs)
    theirs = _quadratic_run(optimizer_cls, lambda o: tls.CosineAnnealingWarmRestarts(o, 10, 2), 60, **kwargs)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec", ["cosine:total=40,warmup=5", "onecycle:total=40", "multistep:milestones=10/20"])
def test_resume_recomputes_lr_and_equals_an_uninterrupted_run(spec):
    def fresh():
        torch.manual_seed(1)
        model = torch.nn.Linear(3, 1).double()
        optimizer = oo.SGD(model.parameters(), lr=0.1, momentum=0.9)
        return model, optimizer, LRSchedule(optimizer, spec)

    data = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def train(model, optimizer, schedule, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            (model(data) ** 2).mean().backward()
            optimizer.step()
            schedule.step()

    model, optimizer, schedule = fresh()
    train(model, optimizer, schedule, 40)
    uninterrupted = [p.detach().clone() for p in model.parameters()]

    model, optimizer, schedule = fresh()
    train(model, optimizer, schedule, 17)
    saved = (model.state_dict(), optimizer.state_dict(), schedule.state_dict())
    model, optimizer, schedule = fresh()  # a new process: lr back at its base value
    model.load_state_dict(saved[0])
    optimizer.load_state_dict(saved[1])
    schedule.load_state_dict(saved[2])
    assert schedule.last_epoch == 17
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * parse_schedule(spec)(17), rel=1e-15)
    train(model, optimizer, schedule, 23)
    for got, expected in zip(model.parameters(), uninterrupted):
        assert torch.equal(got.detach(), expected)


@pytest.mark.parametrize("spec, message", [
    ("nope", "unknown schedule 'nope'"),
    ("step:every=0", "every=0 must be a positive integer"),
    ("step:every=10,factor=-1", "factor=-1 must be >= 0"),
    ("exponential:gamma=1.5", "gamma=1.5 must be in [0, 1]"),
    ("exponential", "exactly one of gamma, k"),
    ("cosine:total=10,warmup=-2", "warmup=-2 must be a positive integer"),
    ("cyclic:up=4,mode=zigzag", "mode='zigzag' must be one of"),
    ("multistep:milestones=10/5", "must be strictly increasing"),
    ("onecycle:total=10,pct_start=1.2", "pct_start=1.2 must be in [0, 1)"),
    ("step:every=3,unit=epoch", "give steps_per_epoch"),
    ("cosine:total=10,unit=week", "unit='week' must be one of"),
    ("cosine:T_max=10", "unknown argument 'T_max' for schedule 'cosine'; allowed: total, final"),
    ("cosine:total", "expected key=value"),
])
def test_bad_specs_raise_one_line_value_errors(spec, message):
    with pytest.raises(ValueError, match=None) as error:
        parse_schedule(spec)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_schedule_command_prints_json_and_writes_a_png(tmp_path, capsys):
    import json

    from optimlab.cli import main

    out = tmp_path / "lr.png"
    assert main(["schedule", "cosine_restarts:period=10", "--steps", "30", "--lr", "0.2", "--json", "--out", str(out)]) == 0
    [row] = json.loads(capsys.readouterr().out)
    expected = [0.2 * (1 + math.cos(math.pi * (t % 10) / 10)) / 2 for t in range(30)]
    assert row["lr"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert row["snapshot_steps"] == [9, 19, 29]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["schedule", "cosine:total=0"]) == 2
    assert main(["schedule", "--list"]) == 0
    assert "cosine_restarts" in capsys.readouterr().out
