"""optimlab benchmark: targets, time to target, performance profiles (hand-computed cases), the
stop-at-target callback, and a tiny benchmark end to end (CLI, stored targets, leaderboard page)."""

import json
import math

import pytest

from optimlab.benchmark.leaderboard import Cell, TrialTimes, leaderboard, times_by_clock
from optimlab.benchmark.targets import Target, TargetStop, best_value, derive_target, fastest, time_to_target
from optimlab.benchmark.workloads import NOTES_OPTIMIZERS, WORKLOADS, load_targets, target_for
from optimlab.cli import main
from optimlab.engine.training import train
from optimlab.store import Store
from optimlab.tasks import get_task

INF = math.inf
ROWS = [{"step": 0, "time": 0.0, "val_metric": 0.10, "val_loss": 2.3},
        {"step": 40, "time": 1.5, "val_metric": 0.55, "val_loss": 1.2},
        {"step": 80, "time": 3.25, "val_metric": 0.70, "val_loss": 0.9},
        {"step": 120, "time": 5.0, "val_metric": 0.65, "val_loss": float("nan")}]


def test_derive_target_relaxes_the_best_reference_value():
    # accuracy: best of (0.8, 0.9, None) = 0.9, minus 5% -> 0.855
    target = derive_target([0.8, 0.9, None], "val_metric", True, 0.05)
    assert target == Target("val_metric", pytest.approx(0.855), True)
    # loss: best of (2.0, 1.5) = 1.5, plus 10% -> 1.65
    assert derive_target([2.0, 1.5], "val_loss", False, 0.1).value == pytest.approx(1.65)
    with pytest.raises(ValueError, match="finite"):
        derive_target([None, float("nan")], "val_loss", False, 0.1)
    assert best_value(ROWS, "val_metric", True) == 0.70 and best_value(ROWS, "val_loss", False) == 0.9


def test_time_to_target_is_the_first_row_reaching_it():
    assert time_to_target(ROWS, Target("val_metric", 0.5, True)) == (40.0, 1.5)
    assert time_to_target(ROWS, Target("val_metric", 0.7, True)) == (80.0, 3.25)  # >= counts
    assert time_to_target(ROWS, Target("val_metric", 0.71, True)) == (INF, INF)
    assert time_to_target(ROWS, Target("val_loss", 1.0, False)) == (80.0, 3.25)
    assert time_to_target(ROWS, Target("val_loss", 0.5, False)) == (INF, INF)  # NaN never reaches
    assert fastest([(80, 3.0), (40, 4.0), (INF, INF)]) == (40, 3.0)  # each clock on its own
    assert fastest([]) == (INF, INF)


def _cell(workload, optimizer, steps, seconds):
    return Cell(workload, optimizer, [TrialTimes({}, steps, seconds, "COMPLETE", "completed")])


def test_performance_profile_against_a_hand_computed_example():
    # steps to target: w1 a=10 b=20; w2 a=30 b=15; w3 a never, b=40
    cells = [_cell("w1", "a", 10, 1.0), _cell("w1", "b", 20, 1.0), _cell("w2", "a", 30, 2.0),
             _cell("w2", "b", 15, 6.0), _cell("w3", "a", INF, INF), _cell("w3", "b", 40, 1.0)]
    board = leaderboard(cells)
    steps = board["clocks"]["steps"]
    assert steps["ratios"] == {"w1": {"a": 1.0, "b": 2.0}, "w2": {"a": 2.0, "b": 1.0}, "w3": {"a": INF, "b": 1.0}}
    taus = steps["taus"]
    rho_a, rho_b = steps["rho"]["a"], steps["rho"]["b"]
    assert rho_a[taus.index(1.0)] == pytest.approx(1 / 3) and rho_b[taus.index(1.0)] == pytest.approx(2 / 3)
    at_2 = min(range(len(taus)), key=lambda i: abs(taus[i] - 2.0))
    assert rho_a[at_2] == pytest.approx(2 / 3) and rho_b[at_2] == pytest.approx(1.0)
    assert rho_a[-1] == pytest.approx(2 / 3)  # w3 is never reached by a
    # score = mean over workloads of (4 - r) / 3 for r <= 4: a: (1 + 2/3 + 0) / 3, b: (2/3 + 1 + 1) / 3
    assert steps["score"] == {"a": pytest.approx(5 / 9), "b": pytest.approx(8 / 9)}
    # seconds: w1 tie (1, 1), w2 a=2 b=6 (ratio 3), w3 b only
    seconds = board["clocks"]["seconds"]
    assert seconds["ratios"]["w2"] == {"a": 1.0, "b": 3.0}
    assert seconds["score"] == {"a": pytest.approx((1 + 1 + 0) / 3), "b": pytest.approx((1 + 1 / 3 + 1) / 3)}
    assert [r["optimizer"] for r in board["ranking"]] == ["b", "a"]  # ranked by the seconds score
    assert times_by_clock(cells)["steps"]["w3"] == {"a": INF, "b": 40}


def test_target_stop_ends_the_run_at_the_first_evaluation_reaching_it():
    task = get_task("mnist1d-logistic", val_fraction=0.1)
    full = train("adam:lr=0.01", task, epochs=4, seed=0)
    target = Target("val_metric", best_value(full.epochs[1:], "val_metric", True) - 1e-9, True)
    expected_steps, _ = time_to_target(full.epochs, target)
    stop = TargetStop(target)
    stopped = train("adam:lr=0.01", task, epochs=4, seed=0, callbacks=[stop])
    assert stopped.meta["target_reached"]["step"] == expected_steps == stopped.meta["steps"]
    assert stopped.meta["target_reached"]["seconds"] == time_to_target(stopped.epochs, target)[1]


def test_every_cpu_smoke_workload_has_a_stored_target():
    stored = load_targets()
    for workload in WORKLOADS["smoke"].values():
        target = target_for(workload, "smoke", stored)
        reference = stored["smoke"][workload.name]["reference_runs"]
        best = best_value([{"v": r["best"]} for r in reference], "v", workload.higher_is_better)
        assert target == derive_target([best], workload.target_column, workload.higher_is_better,
                                       stored["smoke"][workload.name]["slack"])
    assert "cifar10-resnet" not in WORKLOADS["smoke"] and WORKLOADS["full"]["cifar10-resnet"].gpu
    assert NOTES_OPTIMIZERS == ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def test_tiny_benchmark_end_to_end_writes_a_leaderboard(tmp_path, capsys):
    db, out = tmp_path / "runs.db", tmp_path / "board"
    argv = ["benchmark", "--scale", "smoke", "--workload", "mnist1d-logistic", "--opt", "adam", "--opt", "sgd",
            "--trials", "2", "--study", "tiny", "--db", str(db), "--out", str(out), "--json"]
    assert main(argv) == 0
    board = json.loads(capsys.readouterr().out)
    assert {r["optimizer"] for r in board["ranking"]} == {"adam", "sgd"}
    assert board["meta"]["trials"] == 2 and len(board["raw"]) == 2
    page = (out / "index.html").read_text()
    assert "Leaderboard" in page and "performance profiles" in page and "mnist1d-logistic" in page
    stored = json.loads((out / "leaderboard.json").read_text())
    assert stored["clocks"]["steps"]["taus"][0] == 1 and stored["clocks"]["steps"]["taus"][-1] == pytest.approx(4)
    with Store(db) as store:
        runs = store.list_runs(experiment="tiny")
    assert len(runs) == 4  # 2 optimizers x 2 trials, every run stored
    # the stored runs give the same times to target as the leaderboard
    target = Target.from_dict(board["raw"][0]["target"])
    with Store(db) as store:
        times = {}
        for run in runs:
            trace, config = store.load_run(run["id"])
            times.setdefault(config["optimizer"].split(":")[0], []).append(time_to_target(trace.epochs, target))
    for row in board["raw"]:
        steps, seconds = fastest(times[row["optimizer"]])
        assert row["steps"] == (steps if math.isfinite(steps) else None)
    # joining a finished benchmark runs nothing and prints the same leaderboard
    assert main(["benchmark", "--resume", "--study", "tiny", "--db", str(db), "--out", str(out), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["raw"] == board["raw"]


def test_benchmark_errors_are_one_line(tmp_path, capsys):
    assert main(["benchmark", "--workload", "nope", "--scale", "smoke", "--db", str(tmp_path / "x.db")]) == 2
    assert "--workload 'nope'" in capsys.readouterr().err
    assert main(["benchmark", "--scale", "huge", "--db", str(tmp_path / "x.db")]) == 2
    assert main(["benchmark", "--opt", "lion", "--scale", "smoke", "--db", str(tmp_path / "x.db")]) == 2
    assert "search space" in capsys.readouterr().err


def test_declared_search_spaces_replace_the_defaults():
    from optimlab.benchmark.plans import benchmark_plans
    from optimlab.benchmark.workloads import parse_declared_spaces, workloads_for

    spaces = parse_declared_spaces(["sgd.lr=log:0.05:0.2", "sgd.momentum=0.5"])
    assert spaces == {"sgd": ["lr=log:0.05:0.2", "momentum=0.5"]}
    workload = workloads_for("smoke", ["mnist1d-mlp"])[0]
    target = {"mnist1d-mlp": Target("val_metric", 0.5, True)}
    plans = benchmark_plans("b", [workload], target, ["sgd", "adam"], trials=4, spaces=spaces)
    by_optimizer = {p.optimizer: p for p in plans}
    assert "0.05" in by_optimizer["sgd"].space[0] and "momentum" in " ".join(by_optimizer["sgd"].space)
    assert by_optimizer["adam"].space[0].startswith("lr=log:0.0003")
    assert all(p.trials == 4 and p.epochs == workload.epochs and p.eval_every == workload.eval_every
               and p.target == target["mnist1d-mlp"].to_dict() and p.task_options == {"val_fraction": 0.1}
               for p in plans)
    with pytest.raises(ValueError, match="OPTIMIZER.NAME=RANGE"):
        parse_declared_spaces(["lr=log:1e-3:1"])
    with pytest.raises(ValueError, match="not benchmarked"):
        benchmark_plans("b", [workload], target, ["adam"], trials=2, spaces=spaces)
