"""A small sweep with 2 worker processes on the journal file storage: every trial is recorded
exactly once, in Optuna and in the optimlab store."""

from __future__ import annotations

from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from optimlab.cli import main
from optimlab.store import Store
from optimlab.sweep.storage import default_journal_path, open_storage, release

TASK = "wine-softmax"


def finished_slots(study: optuna.Study) -> Counter:
    return Counter(t.user_attrs["slot"] for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))


def test_two_workers_record_every_trial_once(tmp_path, capsys):
    db = str(tmp_path / "optimlab.db")
    code = main(["sweep", TASK, "--opt", "sgd", "--space", "lr=log:1e-2:1e2", "--trials", "4", "--epochs", "1",
                 "--sampler", "random", "--sampler", "grid", "--workers", "2", "--study", "w", "--db", db])
    assert code == 0
    assert "sgd" in capsys.readouterr().out
    storage = open_storage(str(default_journal_path(db)))
    names = sorted(optuna.get_all_study_names(storage))
    assert names == ["w/wine-softmax/sgd/default", "w/wine-softmax/sgd/grid", "w/wine-softmax/sgd/random"]
    expected_runs = set()
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials()
        budget = 1 if name.endswith("default") else 4
        assert len(trials) == budget  # nothing extra was created
        assert finished_slots(study) == Counter(range(budget))  # each slot exactly once
        for trial in trials:
            assert len(trial.user_attrs["run_ids"]) == 1
            expected_runs.add((name, trial.user_attrs["slot"], trial.user_attrs["run_ids"][0]))
    grid = optuna.load_study(study_name="w/wine-softmax/sgd/grid", storage=storage)
    assert sorted(t.params["lr"] for t in grid.trials) == pytest.approx([0.01, 0.215443, 4.64159, 100.0], rel=1e-5)
    release(storage)
    # the store holds exactly the runs Optuna points at, with the study and trial in their config
    with Store(db) as store:
        runs = store.list_runs(experiment="w")
        stored = set()
        for run in runs:
            _, config = store.load_run(run["id"])
            stored.add((config["study"], config["slot"], run["id"]))
            assert config["budget"]["epochs"] == 1 and config["task"] == TASK
    assert stored == expected_runs and len(runs) == 9
