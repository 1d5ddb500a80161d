"""Averaging and ensembles wired into training: test metrics against independent recomputations."""

import copy

import pytest
import torch

from optimlab.engine.ensembles import parse_ensemble, plan_schedule, train_evaluated
from optimlab.engine.training import train
from optimlab.schedules import parse_schedule
from optimlab.tasks import get_task

TASK = "digits-softmax"
BUDGET = dict(epochs=2, batch_size=128)


@pytest.fixture(scope="module")
def task():
    return get_task(TASK)


def _final_and_snapshots(task, seed, schedule, snapshot_steps=()):
    """A plain train() run; returns the final model and the weights after the given 1-based steps."""
    kept, final = {}, {}

    def record(event, state):
        if event == "step_end" and state.step in snapshot_steps:
            kept[state.step] = copy.deepcopy(state.model.state_dict())
        if event == "train_end":
            final["model"] = copy.deepcopy(state.model)

    train("sgd:lr=0.5", task, seed=seed, schedule=schedule, callbacks=[record], **BUDGET)
    return final["model"], kept


def _accuracy_and_nll_of_mean_probabilities(task, models):
    x, y = task.data("test")
    with torch.no_grad():
        probabilities = torch.stack([m.eval()(x).softmax(-1) for m in models]).mean(0)
    accuracy = (probabilities.argmax(1) == y).double().mean().item()
    return accuracy, -probabilities[torch.arange(len(y)), y].log().mean().item()


def test_snapshot_ensemble_metric_matches_an_independent_recomputation(task):
    [trace] = train_evaluated("sgd:lr=0.5", task, ensemble="snapshot:cycles=3", seed=1, **BUDGET)
    total = trace.meta["steps"]
    period = total // 3
    assert trace.meta["schedule"] == f"cosine_restarts:period={period}"
    final, kept = _final_and_snapshots(task, 1, parse_schedule(f"cosine_restarts:period={period}"),
                                       {period, 2 * period, 3 * period})
    assert sorted(kept) == [period, 2 * period, 3 * period]
    members = []
    for weights in kept.values():
        member = copy.deepcopy(final)
        member.load_state_dict(weights)
        members.append(member)
    results = trace.meta["test"]
    assert results["snapshots"] == 3
    accuracy, nll = _accuracy_and_nll_of_mean_probabilities(task, members)
    assert results["snapshot_ensemble"] == accuracy
    assert results["snapshot_ensemble_loss"] == pytest.approx(nll, rel=1e-6)
    assert results["raw"] == task.evaluate(final, "test")[1]
    assert results["raw_loss"] == pytest.approx(task.evaluate(final, "test")[0], rel=1e-6)


def test_seed_ensemble_and_averaging_metrics(task):
    traces = train_evaluated("sgd:lr=0.5", task, ensemble="seeds:2", average="ema:decay=0", seed=3, **BUDGET)
    assert [t.meta["seed"] for t in traces] == [3, 4]
    finals = [_final_and_snapshots(task, seed, None)[0] for seed in (3, 4)]
    accuracy, nll = _accuracy_and_nll_of_mean_probabilities(task, finals)
    for trace, final in zip(traces, finals):
        assert trace.meta["test"]["seed_ensemble"] == accuracy
        assert trace.meta["test"]["seed_ensemble_loss"] == pytest.approx(nll, rel=1e-6)
        assert trace.meta["test"]["raw"] == task.evaluate(final, "test")[1]
        assert trace.meta["test"]["ema"] == trace.meta["test"]["raw"]  # decay 0: the average is the last weights
        assert all("val_metric_ema" in row for row in trace.epochs)


def test_plan_schedule_and_ensemble_specs():
    assert parse_ensemble("seeds:5").kwargs == {"n": 5}
    assert parse_ensemble("snapshot:4").kwargs == {"cycles": 4}
    schedule, steps = plan_schedule(None, parse_ensemble("snapshot:cycles=4"), 100, 10)
    assert schedule.period == 25 and steps == [24, 49, 74, 99]
    schedule, steps = plan_schedule("cosine_restarts:period=2,unit=epoch", parse_ensemble("snapshot:cycles=2"), 100, 10)
    assert steps == [79, 99]  # the last two cycle ends of a 10-step-epoch, 2-epoch period schedule
    assert plan_schedule(None, parse_ensemble("snapshot:cycles=4,keep=2"), 100, 10)[1] == [74, 99]
    with pytest.raises(ValueError, match="has no restarts"):
        plan_schedule("cosine:total=100", parse_ensemble("snapshot:cycles=2"), 100, 10)
    for bad, message in [("bagging:3", "unknown ensemble 'bagging'"), ("seeds:n=0", "seeds=0 must be a positive"),
                         ("snapshot:cycles=2,period=3", "bad arguments for ensemble 'snapshot'")]:
        with pytest.raises(ValueError, match=message):
            parse_ensemble(bad)


def test_compare_reports_raw_averaged_and_ensembled_test_metrics(tmp_path, capsys):
    import json

    from optimlab.cli import main

    common = ["compare", TASK, "--opt", "sgd:lr=0.5", "--epochs", "1", "--no-report", "--quiet",
              "--db", str(tmp_path / "runs.db")]
    assert main(common + ["--ensemble", "seeds:2", "--average", "ema:decay=0", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["seed"] for r in records] == [0, 1] and all(r["ensemble_size"] == 2 for r in records)
    assert records[0]["test_metric_seed_ensemble"] == records[1]["test_metric_seed_ensemble"]
    assert all(r["test_metric_ema"] == r["test_metric"] for r in records)  # decay 0: the last weights
    assert main(common + ["--ensemble", "snapshot:cycles=2"]) == 0
    table = capsys.readouterr().out
    assert "test acc raw" in table and "test acc snapshot ens." in table
    assert main(common + ["--ensemble", "bagging:2"]) == 2


def test_train_counts_epoch_unit_schedules_in_its_own_epochs(task):
    trace = train("sgd:lr=0.5", task, schedule="step:every=1,factor=0.5,unit=epoch", epochs=3, batch_size=256)
    per_epoch = trace.meta["steps_per_epoch"]
    assert [row["lr"] for row in trace.steps] == [0.5 * 0.5 ** (i // per_epoch) for i in range(3 * per_epoch)]
