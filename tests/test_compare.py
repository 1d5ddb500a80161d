"""`optimlab compare`, `runs`, `report`: JSON fields, aggregates, store, report files."""

import base64
import json
import math
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch

from optimlab.cli import main
from optimlab.engine.compare import default_specs, split_run_options
from optimlab.optim.registry import OPTIMIZERS
from optimlab.report.tables import aggregate
from optimlab.store import Store
from optimlab.summary import parse_target, time_to_target
from optimlab.tasks import get_task
from optimlab.trace import Trace

JSON_FIELDS = {"optimizer", "seed", "batch_size", "epochs", "steps", "outcome", "final_train_loss",
               "best_val_metric", "seconds_per_epoch", "run_id"}


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """One small comparison, shared by the tests below."""
    folder = tmp_path_factory.mktemp("compare")
    db, out = folder / "runs.db", folder / "report"
    argv = ["compare", "wine-softmax", "--opt", "sgd:lr=0.1", "--opt", "adam:lr=0.01,batch_size=full",
            "--epochs", "3", "--seeds", "2", "--batch-size", "32", "--target", "val_acc=0.9",
            "--db", str(db), "--out", str(out), "--json", "--quiet"]
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(argv) == 0
    return json.loads(stdout.getvalue()), db, out


def test_json_has_one_object_per_run_with_the_fields(compared):
    records, db, _ = compared
    assert len(records) == 4 and all(JSON_FIELDS <= set(r) for r in records)
    assert [(r["optimizer"], r["seed"]) for r in records] == [
        ("sgd:lr=0.1", 0), ("sgd:lr=0.1", 1), ("adam:lr=0.01,batch_size=full", 0), ("adam:lr=0.01,batch_size=full", 1)]
    n_train = get_task("wine-softmax").num_train
    assert [r["steps"] for r in records] == [3 * math.ceil(n_train / 32)] * 2 + [3, 3]
    assert [r["batch_size"] for r in records] == [32, 32, "full", "full"]
    with Store(db) as store:
        for record in records:
            trace, config = store.load_run(record["run_id"])
            assert record["final_train_loss"] == trace.epochs[-1]["train_loss"]
            assert record["best_val_metric"] == max(trace.column("val_metric", "epochs"))
            assert trace.meta["seed"] == record["seed"] and config["spec"] == record["optimizer"]
            assert record["seconds_per_epoch"] == pytest.approx(trace.meta["train_seconds"] / 3)


def test_final_train_loss_is_the_loss_on_the_whole_training_set(compared):
    """Retrain run 1 by hand with torch.optim.SGD and the same seed and batches: same final loss."""
    records, _, _ = compared
    task = get_task("wine-softmax")
    torch.manual_seed(0)
    model = task.make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(0)
    x, y = task.split.x_train, task.split.y_train
    for _ in range(3):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 32):
            index = order[start:start + 32]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(x), y).item()
    assert records[0]["final_train_loss"] == pytest.approx(expected, rel=1e-5)


def test_table_aggregates_are_mean_and_sample_std(compared):
    records, _, _ = compared
    headers, rows = aggregate(records, "acc", "val_acc=0.9")
    assert headers[3] == "final train loss" and headers[6] == "s to val_acc=0.9"
    losses = [r["final_train_loss"] for r in records[:2]]
    mean, std = statistics.fmean(losses), statistics.stdev(losses)
    assert rows[0][3] == f"{mean:.4g} ± {std:.2g}"


def test_time_to_target():
    trace = Trace("sgd", "t", epochs=[{"val_metric": 0.5, "train_loss": 2.0, "time": 0.0},
                                      {"val_metric": 0.93, "train_loss": 1.0, "time": 1.5},
                                      {"val_metric": 0.97, "train_loss": 0.4, "time": 3.0}])
    assert time_to_target(trace, *parse_target("val_acc=0.95")) == 3.0
    assert time_to_target(trace, *parse_target("train_loss=1.0")) == 1.5
    assert time_to_target(trace, *parse_target("val_acc=0.99")) is None
    with pytest.raises(ValueError, match="val_acc=0.95"):
        parse_target("accuracy>0.9")


def test_report_files_and_redraw_from_store(compared, tmp_path, capsys):
    records, db, out = compared
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["learning_rate.png", "loss_vs_epoch.png", "loss_vs_time.png", "train_vs_val.png"]
    page = (out / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "sgd:lr=0.1" in page and "<script" not in page
    first = page.index("base64,") + len("base64,")
    assert base64.b64decode(page[first:page.index('"', first)])[:8] == b"\x89PNG\r\n\x1a\n"
    ids = f"{records[0]['run_id']}-{records[-1]['run_id']}"
    assert main(["report", ids, "--db", str(db), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "index.html").exists() and len(list((tmp_path / "again").glob("*.png"))) == 4
    assert json.loads((tmp_path / "again" / "results.json").read_text())[0]["final_train_loss"] == \
        pytest.approx(records[0]["final_train_loss"])


def test_runs_list_show_export(compared, tmp_path, capsys):
    records, db, _ = compared
    capsys.readouterr()
    assert main(["runs", "--db", str(db), "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("wine-softmax") == 4 and "adam:lr=0.01" in listing
    assert main(["runs", "--db", str(db), "show", str(records[0]["run_id"])]) == 0
    assert "train_loss" in capsys.readouterr().out
    csv_path = tmp_path / "rows.csv"
    assert main(["runs", "--db", str(db), "export", "1-2", "--csv", "--table", "steps", "-o", str(csv_path)]) == 0
    lines = csv_path.read_text().strip().splitlines()
    assert lines[0].startswith("run_id,task,optimizer,seed,step") and len(lines) == 1 + 2 * records[0]["steps"]


def test_divergence_is_a_table_outcome_and_bad_specs_fail_cleanly(tmp_path, capsys):
    argv = ["compare", "airfoil-linear", "--opt", "sgd:lr=1000", "--epochs", "1", "--seeds", "1",
            "--db", str(tmp_path / "d.db"), "--no-report", "--quiet"]
    assert main(argv) == 0
    assert "diverged at step" in capsys.readouterr().out
    assert main(["compare", "wine-softmax", "--opt", "adam:lr=oops", "--db", str(tmp_path / "d.db")]) == 2
    assert main(["compare", "no-such-task", "--db", str(tmp_path / "d.db")]) == 2
    assert "unknown task" in capsys.readouterr().err


def test_default_set_is_the_notes_plus_lbfgs_on_convex_tasks():
    specs, notes = default_specs(get_task("digits-softmax"))
    names = [split_run_options(s)[0].split(":")[0] for s in specs]
    assert names[:6] == ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]
    if "lbfgs" in OPTIMIZERS:
        assert names[6] == "lbfgs" and "batch_size=full" in specs[6] and not notes
    else:
        assert "lbfgs" in notes[0]
    specs, notes = default_specs(get_task("digits-mlp"))
    assert len(specs) == 6 and not notes


@pytest.mark.browser
def test_report_renders_in_chromium(compared, tmp_path):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium missing in CI (.ci/run installs Debian's chromium)")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    _, _, out = compared
    shot = tmp_path / "shot.png"
    profile = tempfile.mkdtemp()
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1280,2000",
                    (out / "index.html").as_uri()], check=True, timeout=120, capture_output=True)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2000, 1280) and pixels.std() > 0.05  # a page with content, not blank


def test_compare_track_records_sharpness_of_linear_regression(tmp_path, capsys):
    """--track sharpness: lambda_max of a linear regression's Hessian is that of [X 1]^T [X 1] / n."""
    task_name = "synthetic-linear:n=200,d=3,kappa=10"
    db = tmp_path / "runs.db"
    code = main(["compare", task_name, "--opt", "gd:lr=0.1", "--batch-size", "full", "--epochs", "3", "--seeds", "1",
                 "--track", "sharpness:every=1", "--json", "--no-report", "--db", str(db), "--quiet"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)[0]
    with Store(str(db)) as store:
        trace, config = store.load_run(record["run_id"])
    assert config["track"] == "sharpness:every=1"
    x, _ = get_task(task_name).data("train")
    design = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    expected = torch.linalg.eigvalsh(design.T @ design / len(x))[-1].item()
    measured = [row["sharpness"] for row in trace.steps if row.get("sharpness") is not None]
    assert len(measured) >= 3
    assert measured == pytest.approx([expected] * len(measured), rel=1e-4)
    assert all(row["stability_threshold"] == pytest.approx(2 / 0.1) for row in trace.steps if "stability_threshold" in row)
