"""The tracker and `optimlab analyze TASK` through the real engine, against closed forms on linear regression."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from optimlab.analysis.sharpness import SharpnessTracker
from optimlab.cli import main
from optimlab.engine.training import train
from optimlab.tasks import get_task

TASK = "synthetic-linear:n=120,d=4,kappa=10"


def closed_form_hessian(task) -> np.ndarray:
    """H of 0.5 * mean((x w + b - y)^2) = [x 1]^T [x 1] / n, the same at every w."""
    x, _ = task.data("train")
    design = np.hstack([x.double().numpy(), np.ones((len(x), 1))])
    return design.T @ design / len(x)


@pytest.fixture(scope="module")
def task_and_lambda_max():
    task = get_task(TASK, dtype=torch.float64)
    return task, float(np.linalg.eigvalsh(closed_form_hessian(task))[-1])


def test_gd_with_lr_just_under_two_over_lambda_max_converges_and_just_over_diverges(task_and_lambda_max):
    task, lambda_max = task_and_lambda_max
    under = train(f"gd:lr={0.97 * 2 / lambda_max}", task, epochs=400, batch_size="full")
    over = train(f"gd:lr={1.03 * 2 / lambda_max}", task, epochs=400, batch_size="full")
    assert under.outcome == "completed" and over.outcome == "diverged"
    # at the minimum the gradient vanishes: the loss stops changing
    assert abs(under.steps[-1]["loss"] - under.steps[-2]["loss"]) < 1e-10


def test_tracker_in_the_engine_reports_the_closed_form_lambda_max(task_and_lambda_max):
    task, lambda_max = task_and_lambda_max
    tracker = SharpnessTracker(every=10, iterations=5)  # 5 = number of parameters: exact
    trace = train(f"momentum:lr={0.5 / lambda_max},momentum=0.5", task, epochs=30, batch_size="full",
                  callbacks=[tracker])
    rows = [trace.epochs[0]] + [row for row in trace.steps if "sharpness" in row]
    assert [row["step"] for row in rows] == [0, 1, 10, 20, 30]
    for row in rows:
        assert row["sharpness"] == pytest.approx(lambda_max, rel=1e-9)
        assert row["stability_threshold"] == pytest.approx(2 * 1.5 / (0.5 / lambda_max))
    assert trace.meta["sharpness"]["formula"] == "2(1+mu)/((1-tau)lr)"
    assert trace.meta["sharpness"]["cost_vs_training"] > 0


def test_analyze_command_prints_the_closed_form_curvature(tmp_path, capsys):
    task = get_task(TASK)
    hessian = closed_form_hessian(task)
    eigenvalues = np.linalg.eigvalsh(hessian)
    lr = 1.9 / eigenvalues[-1]
    code = main(["analyze", TASK, "--opt", f"gd:lr={lr}", "--epochs", "8", "--top-k", "3",
                 "--trace-samples", "20", "--density-runs", "2", "--density-iterations", "5",
                 "--track", "sharpness:every=4,iterations=5", "--json", "--out", str(tmp_path)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    for label in ("init", "end"):
        curvature = result["curvature"][label]
        np.testing.assert_allclose(curvature["top"]["eigenvalues"], eigenvalues[::-1][:3], rtol=1e-4)
        assert curvature["lambda_min"] == pytest.approx(eigenvalues[0], rel=1e-4)
        low, high = curvature["trace"]["interval"]
        assert low <= np.trace(hessian) <= high
        assert curvature["operator"]["mode"] == "train"
        assert curvature["operator"]["data"] == "full set (96 examples)"
    sharpness = result["sharpness"]
    assert sharpness["threshold"] == pytest.approx(2 / lr)
    assert sharpness["initial"] == pytest.approx(eigenvalues[-1], rel=1e-4)
    assert sharpness["first_crossing"] is None  # lr * lambda_max = 1.9 < 2
    assert result["outcome"] == "completed" and result["steps"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis.json", "sharpness.png", "spectral_density.png"]


def test_analyze_text_report_and_a_diverging_run(tmp_path, capsys):
    task = get_task(TASK)
    lr = 2.5 / float(np.linalg.eigvalsh(closed_form_hessian(task))[-1])
    code = main(["analyze", TASK, "--opt", f"gd:lr={lr}", "--epochs", "200", "--trace-samples", "4",
                 "--density-runs", "0", "--out", str(tmp_path)])
    assert code == 0
    text = capsys.readouterr().out
    assert "diverged at step" in text and "reaches it: step 0" in text
    assert "lambda_max" in text and "trace (95% interval)" in text


def test_analyze_rejects_bad_values(capsys):
    assert main(["analyze", TASK, "--top-k", "0"]) == 2
    assert "--top-k 0" in capsys.readouterr().err
    assert main(["analyze", "nonsense-task"]) == 2
    assert "unknown landscape or task 'nonsense-task'" in capsys.readouterr().err


def test_threshold_follows_the_learning_rate_schedule(tmp_path, capsys):
    task = get_task(TASK)
    lr = 1.0 / float(np.linalg.eigvalsh(closed_form_hessian(task))[-1])
    assert main(["analyze", TASK, "--opt", f"gd:lr={lr}", "--epochs", "8", "--schedule", "step:every=4,factor=0.5",
                 "--track", "sharpness:every=2,iterations=5", "--trace-samples", "4", "--density-runs", "0",
                 "--json", "--out", str(tmp_path)]) == 0
    rows = [row for row in json.loads(capsys.readouterr().out)["trace"]["steps"] if "sharpness" in row]
    # after step s the next update uses lr * 0.5 ** (s // 4): its threshold is 2 / that
    for row in rows:
        assert row["stability_threshold"] == pytest.approx(2 / (lr * 0.5 ** (row["step"] // 4)))
    assert [row["step"] for row in rows] == [1, 2, 4, 6, 8]
