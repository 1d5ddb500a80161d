"""Tasks with a test split report the final model on it: --json, the table and the HTML report."""

from __future__ import annotations

import json

import pytest
import torch

from optimlab.cli import main
from optimlab.engine.training import train
from optimlab.summary import summarize
from optimlab.tasks import get_task


def test_final_test_metric_is_the_final_models_accuracy_on_the_test_rows():
    task = get_task("digits-softmax")
    final = {}

    def keep_model(event, state):
        if event == "train_end":
            final["model"] = state.model

    trace = train("sgd:lr=0.1", task, epochs=1, seed=0, callbacks=[keep_model])
    x, y = task.split.x_test, task.split.y_test
    with torch.no_grad():
        logits = final["model"](x)
    summary = summarize(trace)
    assert summary["final_test_metric"] == pytest.approx((logits.argmax(1) == y).double().mean().item(), abs=1e-12)
    assert summary["final_test_loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-6)
    assert trace.meta["final_test"]["examples"] == len(y) == 180  # digits: 10% of 1797 rows
    assert summarize(train("sgd:lr=0.01", "airfoil-linear", max_steps=3))["final_test_metric"] is None  # no test split


def test_compare_json_table_and_html_show_the_test_split(tmp_path, capsys):
    out = tmp_path / "report"
    base = ["compare", "digits-softmax", "--opt", "sgd:lr=0.1", "--seeds", "2", "--epochs", "1", "--quiet",
            "--db", str(tmp_path / "t.db")]
    assert main([*base, "--json", "--average", "ema:decay=0.9", "--out", str(out)]) == 0
    records = json.loads(capsys.readouterr().out)
    for record in records:
        assert 0.5 < record["final_test_metric"] <= 1
        # the averaging hook evaluates the raw model on the whole test split at once: the same number
        assert record["test_metric"] == pytest.approx(record["final_test_metric"], abs=1e-12)
    html = (out / "index.html").read_text()
    assert "final test acc" in html and "test acc ema" in html and "final test metric" in html
    assert main([*base, "--no-report"]) == 0
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if line.startswith("optimizer"))
    assert "final test acc" in header
    ids = [str(record["run_id"]) for record in records]
    assert main(["report", *ids, "--db", str(tmp_path / "t.db"), "--out", str(tmp_path / "again")]) == 0
    redrawn = (tmp_path / "again" / "index.html").read_text()  # from the store: the same test columns
    assert "final test acc" in redrawn and "test acc ema" in redrawn
    assert json.loads((tmp_path / "again" / "results.json").read_text())[0]["final_test_metric"] == \
        pytest.approx(records[0]["final_test_metric"], abs=1e-12)
