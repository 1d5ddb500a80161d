"""Sweeps end to end on the journal file storage: worker processes, budgets, divergence, pruning,
coarse-to-fine, re-queueing a dead worker's trial, the store and the report."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optimlab.cli import main
from optimlab.store import Store
from optimlab.sweep.objective import evaluate
from optimlab.sweep.plan import create_studies, load_plan, make_plans
from optimlab.sweep.results import load_sweep
from optimlab.sweep.runner import claim_trial, work
from optimlab.sweep.storage import default_journal_path, open_storage, release, resolve_storage_url

TASK = "wine-softmax"  # 178 rows: a trial takes well under a second


def finished_slots(study: optuna.Study) -> Counter:
    return Counter(t.user_attrs["slot"] for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))


def test_default_storage_is_a_journal_beside_the_db(tmp_path):
    assert default_journal_path(tmp_path / "optimlab.db") == tmp_path / "optimlab.sweeps.journal"
    assert resolve_storage_url(None, tmp_path / "x.db") == str(tmp_path / "x.sweeps.journal")
    assert resolve_storage_url("postgres://u@h/db") in ("postgresql+psycopg://u@h/db", "postgresql+psycopg2://u@h/db")
    assert resolve_storage_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    with pytest.raises(ValueError, match="--storage 'redis://h'"):
        resolve_storage_url("redis://h")


def test_divergence_is_a_result_and_pruning_stops_training(tmp_path):
    (plan, _) = make_plans("d", [TASK], ["sgd"], ["random"], ["lr=0.1:1"], trials=1, epochs=3, pruner="median")
    saved = []
    result = evaluate(plan, {"lr": 1e9}, save=lambda trace, seed, outcome: saved.append((trace, outcome)) or 7)
    assert result.outcome == "diverged" and result.diverged_at is not None
    initial = saved[0][0].epochs[0]["train_loss"]
    assert result.value == pytest.approx(1e6 * max(initial, 1.0)) and result.run_ids == [7]
    assert len(result.curve) == 3 and result.curve[-1] == result.value

    class AlwaysPrune:  # the pruner's answer, as Optuna's Trial would give it
        reported: list = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return True

    trial = AlwaysPrune()
    pruned = evaluate(plan, {"lr": 0.1}, trial=trial, save=lambda trace, seed, outcome: saved.append((trace, outcome)))
    assert pruned.pruned and pruned.outcome == "pruned"
    assert [step for step, _ in trial.reported] == [0]  # reported after epoch 1, then stopped
    assert saved[-1][1] == "pruned" and max(r["epoch"] for r in saved[-1][0].epochs) == 1


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_coarse_to_fine_narrows_around_the_best(tmp_path, sampler):
    url = str(tmp_path / "s.journal")
    storage = open_storage(url)
    plans = make_plans("c", [TASK], ["sgd"], [sampler], ["lr=log:1e-4:10"], trials=8, epochs=1, rounds=2,
                       with_defaults=False)
    create_studies(url, storage, plans)
    work(url, "c")
    study = optuna.load_study(study_name=f"c/wine-softmax/sgd/{sampler}", storage=storage)
    trials = study.get_trials()
    assert finished_slots(study) == Counter(range(8))
    first = [t for t in trials if t.user_attrs["round"] == 1]
    second = [t for t in trials if t.user_attrs["round"] == 2]
    assert len(first) == 4 and len(second) == 4
    (space,) = second[0].user_attrs["space"]
    low, high = (float(x) for x in space.split(":")[1:])
    best = sorted(first, key=lambda t: t.value)[:2]
    assert 1e-4 <= low <= min(t.params["lr"] for t in best) and max(t.params["lr"] for t in best) <= high <= 10
    assert high / low < 1e5  # narrower than round 1
    assert all(low <= t.params["lr"] <= high for t in second)
    release(storage)


def test_a_dead_workers_trial_is_requeued_on_resume(tmp_path):
    url = str(tmp_path / "s.journal")
    storage = open_storage(url)
    create_studies(url, storage, make_plans("r", [TASK], ["sgd"], ["random"], ["lr=log:1e-2:1"], trials=3,
                                            epochs=1, with_defaults=False))
    study = optuna.load_study(study_name="r/wine-softmax/sgd/random", storage=storage)
    claimed = claim_trial(url, study, load_plan(study))  # a worker claims slot 0 ... and dies
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    claimed.set_user_attr("worker", f"{socket.gethostname()}:{int(dead.stdout)}")
    assert work(url, "r") == 3  # resume: slot 0 re-queued and run, plus slots 1, 2
    trials = study.get_trials()
    assert finished_slots(study) == Counter({0: 1, 1: 1, 2: 1})
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [claimed.number]
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == claimed.number)
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["slot"] == 0
    release(storage)


def test_report_writes_figures_and_html(tmp_path):
    url = str(tmp_path / "s.journal")
    storage = open_storage(url)
    create_studies(url, storage, make_plans("p", [TASK], ["sgd", "adam"], ["random"], ["lr=log:1e-3:1"],
                                            trials=4, epochs=2))
    release(storage)
    work(url, "p")
    out = tmp_path / "report"
    assert main(["sweep", "report", "p", "--storage", url, "--out", str(out)]) == 0
    for name in ("lr_sensitivity.png", "search_convergence.png", "default_vs_tuned.png", "performance_profile.png",
                 "index.html", "summary.json"):
        assert (out / name).stat().st_size > 0
    results = load_sweep(url, "p")
    assert {r.plan.optimizer for r in results} == {"sgd", "adam"}
    assert "data:image/png;base64" in (out / "index.html").read_text()
    assert main(["sweep", "report", "nope", "--storage", url]) == 2  # one-line error, exit 2


def test_cli_errors_are_one_line(tmp_path, capsys):
    db = str(tmp_path / "o.db")
    assert main(["sweep", TASK, "--space", "lr=log:0:1", "--db", db]) == 2
    assert "needs low > 0" in capsys.readouterr().err
    assert main(["sweep", "no-such-task", "--space", "lr=0.1:1", "--db", db]) == 2
    assert main(["sweep", "--resume", "--db", db]) == 2
    assert not Path(tmp_path / "o.sweeps.journal").exists()  # nothing stored for bad input


def test_median_pruner_prunes_and_the_budget_holds(tmp_path):
    url = str(tmp_path / "s.journal")
    db = str(tmp_path / "o.db")
    storage = open_storage(url)
    plans = make_plans("m", [TASK], ["sgd"], ["grid"], ["lr=log:1e-5:1"], trials=8, epochs=3, pruner="median",
                       with_defaults=False)
    create_studies(url, storage, plans)
    create_studies(url, storage, plans)  # a second launcher of the same sweep queues nothing more
    with pytest.raises(ValueError, match="exists with another plan"):
        create_studies(url, storage, make_plans("m", [TASK], ["sgd"], ["grid"], ["lr=log:1e-5:1"], trials=9,
                                                epochs=3, pruner="median", with_defaults=False))
    work(url, "m", db_path=db)
    study = optuna.load_study(study_name="m/wine-softmax/sgd/grid", storage=storage)
    assert len(study.trials) == 8 and finished_slots(study) == Counter(range(8))
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "the tiny learning rates of the grid should fall behind the median"
    with Store(db) as store:
        for trial in pruned:
            (run_id,) = trial.user_attrs["run_ids"]
            trace, config = store.load_run(run_id)
            assert config["trial_outcome"] == "pruned" and max(r["epoch"] for r in trace.epochs) < 3
    release(storage)
