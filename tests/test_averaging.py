"""Averaging and ensembles: EMA/SWA against their recursions and torch's AveragedModel, exact restore."""

import copy

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import optimlab.optim as oo
from optimlab.averaging import (
    EMA,
    SWA,
    SnapshotEnsemble,
    average_predictions,
    parse_averager,
    predict_ensemble,
    snapshot_of,
)
from optimlab.schedules import LRSchedule, parse_schedule, snapshot_steps


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3)).double()


def _batches(count):
    gen = torch.Generator().manual_seed(3)
    return [(torch.randn(16, 4, generator=gen, dtype=torch.float64), torch.randint(0, 3, (16,), generator=gen))
            for _ in range(count)]


def _train(model, steps, after_step, lr=0.1, schedule=None):
    """SGD with momentum; ``after_step(model, step)`` after each optimizer step."""
    optimizer = oo.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = LRSchedule(optimizer, schedule) if schedule else None
    for step, (x, y) in enumerate(_batches(steps)):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if scheduler:
            scheduler.step()
        after_step(model, step)


@pytest.mark.parametrize("decay, start, every", [(0.9, 0, 1), (0.75, 5, 1), (0.8, 3, 4)])
def test_ema_matches_its_recursion(decay, start, every):
    model = _model()
    ema = EMA(model, decay, start=start, every=every)
    history = []  # the weights after each step, as plain float64 tensors

    def after(m, step):
        ema.update(m)
        history.append({k: v.detach().clone() for k, v in m.state_dict().items()})

    _train(model, 25, after)
    for name, got in ema.average.items():
        expected = None
        for step, weights in enumerate(history):  # the recursion, written out independently
            if step < start:
                expected = weights[name]
            elif (step - start) % every == 0:
                copied = step == start or not got.is_floating_point()  # integer buffers are copied
                expected = weights[name] if copied else decay * expected + (1 - decay) * weights[name]
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    assert ema.count == len(range(start, 25, every))


def test_ema_and_swa_match_torch_averaged_model():
    model = _model()
    ema, swa = EMA(model, 0.95), SWA(model)
    torch_ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.95), use_buffers=True)
    torch_swa = AveragedModel(model, use_buffers=True)

    def after(m, step):
        for ours, theirs in ((ema, torch_ema), (swa, torch_swa)):
            ours.update(m)
            theirs.update_parameters(m)

    _train(model, 30, after)
    for ours, theirs in ((ema, torch_ema), (swa, torch_swa)):
        for name, expected in theirs.module.state_dict().items():
            if expected.is_floating_point():  # torch also averages num_batches_tracked; optimlab copies it
                torch.testing.assert_close(ours.average[name], expected, rtol=1e-12, atol=1e-14)


def test_swa_is_the_plain_mean_of_the_weights_after_start():
    model = _model()
    swa = SWA(model, start=10)
    seen = []

    def after(m, step):
        swa.update(m)
        if step >= 10:
            seen.append(m[0].weight.detach().clone())

    _train(model, 20, after)
    torch.testing.assert_close(swa.average["0.weight"], torch.stack(seen).mean(0), rtol=1e-12, atol=1e-14)


def test_averaged_context_swaps_weights_in_and_restores_them_bitwise():
    model = _model()
    ema = EMA(model, 0.9)
    _train(model, 12, lambda m, s: ema.update(m))
    raw = copy.deepcopy(model.state_dict())
    with ema.averaged(model) as swapped:
        assert swapped is model
        for name, value in model.state_dict().items():
            assert torch.equal(value, ema.average[name])
        assert not torch.equal(model[0].weight, raw["0.weight"])
    for name, value in model.state_dict().items():
        assert torch.equal(value, raw[name])
    with pytest.raises(RuntimeError):
        with ema.averaged(model):
            raise RuntimeError("evaluation failed")
    for name, value in model.state_dict().items():
        assert torch.equal(value, raw[name])


def test_averager_without_buffers_leaves_batchnorm_stats_alone():
    model = _model()
    ema = EMA(model, 0.5, buffers=False)
    _train(model, 5, lambda m, s: ema.update(m))
    assert "1.running_mean" not in ema.average
    running_mean = model[1].running_mean.clone()
    with ema.averaged(model):
        assert torch.equal(model[1].running_mean, running_mean)


def test_snapshots_are_taken_at_cycle_ends_and_ensemble_averages_probabilities():
    model = _model()
    schedule = parse_schedule("cosine_restarts:period=8")
    ensemble = SnapshotEnsemble(snapshot_steps(schedule, 24))
    weights_at = {}

    def after(m, step):
        ensemble.maybe_collect(m, step)
        weights_at[step] = snapshot_of(m)

    _train(model, 24, after, schedule=schedule)
    assert ensemble.taken_at == [7, 15, 23]
    for step, snapshot in zip(ensemble.taken_at, ensemble.snapshots):
        assert all(torch.equal(snapshot[k], weights_at[step][k]) for k in snapshot)

    x = torch.randn(10, 4, dtype=torch.float64)
    raw = copy.deepcopy(model.state_dict())
    got = predict_ensemble(ensemble.snapshots, x, "classification", model=model)
    members = []
    for snapshot in ensemble.snapshots:  # independent reference: separate models in eval mode
        member = _model()
        member.load_state_dict(snapshot)
        members.append(member.eval()(x).softmax(-1))
    torch.testing.assert_close(got.exp(), torch.stack(members).mean(0), rtol=1e-12, atol=1e-14)
    assert all(torch.equal(v, raw[k]) for k, v in model.state_dict().items())
    assert model.training


def test_prediction_averaging_for_regression_and_seed_ensembles():
    outputs = [torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [6.0]])]
    assert torch.equal(average_predictions(outputs, "regression"), torch.tensor([[2.0], [4.0]]))
    logits = [torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0]])]
    expected = (torch.tensor([[2.0, 0.0]]).softmax(-1) + torch.tensor([[0.0, 1.0]]).softmax(-1)) / 2
    torch.testing.assert_close(average_predictions(logits, "classification").exp(), expected)
    models = [nn.Linear(3, 1) for _ in range(3)]
    x = torch.randn(5, 3)
    torch.testing.assert_close(predict_ensemble(models, x, "regression"),
                               sum(m(x) for m in models).detach() / 3)


@pytest.mark.parametrize("spec, message", [
    ("ema:decay=1.5", "decay=1.5 must be in [0, 1]"),
    ("ema:start=-1", "start=-1 must be a non-negative integer"),
    ("swa:every=0", "every=0 must be a positive integer"),
    ("polyak", "unknown averaging 'polyak'"),
    ("ema:beta=0.9", "bad arguments for averaging 'ema'"),
])
def test_bad_averaging_specs(spec, message):
    with pytest.raises(ValueError) as error:
        parse_averager(spec, nn.Linear(2, 1))
    assert message in str(error.value)


def test_bad_prediction_kind():
    with pytest.raises(ValueError, match="kind='ranking' must be one of"):
        average_predictions([torch.zeros(2, 2)], "ranking")
