"""Bring your own model and data: LoaderTask against a built-in task, a hand-written torch loop,
scikit-learn's metrics, and the `--task module:function` loader's errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from sklearn.metrics import accuracy_score, r2_score
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from optimlab.cli import main
from optimlab.engine.training import train
from optimlab.tasks import LoaderTask, get_task, load_task_reference


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "my_task.py"


class Pairs(Dataset):
    """A plain map-style Dataset (not a TensorDataset): batches go through DataLoader's collate."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        return self.x[index], self.y[index]


def user_copy_of(task, dataset_type):
    """The built-in task's model factory and tensors as a LoaderTask of Datasets."""
    split = task.split
    return LoaderTask(name="mine", model=task.make_model, train=dataset_type(split.x_train, split.y_train),
                      val=dataset_type(split.x_val, split.y_val), test=dataset_type(split.x_test, split.y_test),
                      loss=F.cross_entropy, metric="accuracy", batch_size=task.default_batch_size, epochs=2,
                      eval_batch_size=100)


@pytest.mark.parametrize("dataset_type", [TensorDataset, Pairs])
def test_user_task_gives_the_numbers_of_the_same_task_built_in(dataset_type):
    built_in = get_task("digits-mlp", dtype=torch.float64)
    mine = user_copy_of(built_in, dataset_type)
    runs = [train("momentum:lr=0.05,momentum=0.9", task, epochs=2, seed=3) for task in (built_in, mine)]
    reference, user = runs
    assert len(user.steps) == len(reference.steps) == 2 * 20  # 1258 training rows, 64 per batch
    # float64: the same batches in the same order, so the per-step losses agree to rounding
    torch.testing.assert_close(torch.tensor(user.column("loss")), torch.tensor(reference.column("loss")),
                               rtol=1e-12, atol=1e-12)
    for column in ("train_loss", "val_loss", "train_metric", "val_metric"):
        # evaluation in chunks of 100 vs the whole split: float64 summation-order rounding only
        torch.testing.assert_close(torch.tensor(user.column(column, "epochs")),
                                   torch.tensor(reference.column(column, "epochs")), rtol=1e-10, atol=1e-12)
    assert user.meta["final_test"]["metric"] == pytest.approx(reference.meta["final_test"]["metric"], abs=1e-12)
    assert user.meta["final_test"]["loss"] == pytest.approx(reference.meta["final_test"]["loss"], rel=1e-10)


def _classification_data(n: int = 300, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=generator, dtype=torch.float64)
    y = (x @ torch.tensor([1.0, -2.0, 0.5, 0.0, 1.5], dtype=torch.float64) > 0).long()
    return x, y


def _make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 2)).double()


def test_dataloader_run_matches_a_hand_written_torch_loop():
    x, y = _classification_data()
    loader = DataLoader(Pairs(x, y), batch_size=32, shuffle=True, drop_last=True)  # 9 batches per epoch
    task = LoaderTask(model=_make_model, train=loader, val=TensorDataset(x[:100], y[:100]), loss=F.cross_entropy)
    epochs, seed = 3, 7
    trace = train("momentum:lr=0.05,momentum=0.9", task, epochs=epochs, seed=seed)

    # the reference: plain torch, the same seed, the same DataLoader (its shuffle draws from torch's generator)
    torch.manual_seed(seed)
    model = _make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(epochs):
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(inputs), targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert trace.meta["steps_per_epoch"] == len(loader) == 9
    torch.testing.assert_close(torch.tensor(trace.column("loss")), torch.tensor(losses), rtol=1e-10, atol=1e-12)
    model.eval()
    with torch.no_grad():
        full_loss = F.cross_entropy(model(x), y).item()
        val_accuracy = accuracy_score(y[:100].numpy(), model(x[:100]).argmax(1).numpy())
    last = trace.epochs[-1]
    assert last["train_loss"] == pytest.approx(full_loss, rel=1e-10)
    assert last["val_metric"] == pytest.approx(val_accuracy, abs=1e-12)
    assert "final_test" not in trace.meta  # no test split, no test numbers


def test_a_different_batch_size_rebuilds_the_loader_on_the_same_data():
    x, y = _classification_data(n=130)
    task = LoaderTask(model=_make_model, train=DataLoader(Pairs(x, y), batch_size=32), loss=F.cross_entropy)
    assert task.default_batch_size == 32 and task.steps_per_epoch(32) == 5
    assert task.steps_per_epoch(50) == 3
    batches = list(task.train_batches(50, torch.Generator()))
    assert [len(b[0]) for b in batches] == [50, 50, 30]
    torch.testing.assert_close(torch.cat([b[0] for b in batches]), x)  # sequential sampler kept: in order


def test_streamed_metrics_match_scikit_learn_on_the_whole_split():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(103, 3, generator=generator, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [2.0], [-1.0]], dtype=torch.float64) + 0.3 * torch.randn(103, 1, generator=generator,
                                                                                          dtype=torch.float64)
    model = nn.Linear(3, 1).double()
    task = LoaderTask(model=lambda: model, train=TensorDataset(x, y), val=DataLoader(Pairs(x, y), batch_size=10),
                      loss=F.mse_loss, metric="r2", eval_batch_size=7)
    with torch.no_grad():
        prediction = model(x)
    for split in ("train", "val"):  # chunks of 7 (Dataset) and of 10 (DataLoader), last ones short
        loss, r2 = task.evaluate(model, split)
        assert r2 == pytest.approx(r2_score(y.numpy(), prediction.numpy()), rel=1e-10)
        assert loss == pytest.approx(F.mse_loss(prediction, y).item(), rel=1e-10)
    assert task.kind == "regression" and task.metric_name == "r2"
    assert task.evaluate(model, "test") == (None, None)


def test_a_callable_metric_is_averaged_over_examples():
    x, y = _classification_data(n=50)
    model = _make_model().eval()

    def error_rate(output, target):
        return (output.argmax(1) != target).double().mean().item()

    task = LoaderTask(model=lambda: model, train=TensorDataset(x, y), loss=F.cross_entropy, metric=error_rate,
                      higher_is_better=False, eval_batch_size=8)
    with torch.no_grad():
        expected = 1 - accuracy_score(y.numpy(), model(x).argmax(1).numpy())
    assert task.evaluate(model, "train")[1] == pytest.approx(expected, abs=1e-12)
    assert task.metric_name == "error_rate" and task.higher_is_better is False


@pytest.mark.parametrize("arguments, message", [
    ({"model": nn.Linear(2, 2)}, "factory"),
    ({"train": [1, 2, 3]}, "DataLoader or Dataset"),
    ({"metric": "f1"}, "metric 'f1'"),
    ({"batch_size": 0}, "batch_size=0"),
])
def test_bad_arguments_are_one_line_errors(arguments, message):
    x, y = _classification_data(n=10)
    kwargs = {"model": _make_model, "train": TensorDataset(x, y), **arguments}
    with pytest.raises(ValueError, match=message):
        LoaderTask(**kwargs)


TASK_FILE = '''
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset
from optimlab.tasks import LoaderTask

NOT_A_FUNCTION = 3

def make_task():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    y = (x.sum(1) > 0).long()
    data = TensorDataset(x, y)
    return LoaderTask(name="tiny", model=lambda: nn.Linear(4, 2), train=data, val=data, test=data,
                      loss=F.cross_entropy, batch_size=16, epochs=2)

def wrong():
    return "a string"
'''


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "tiny_task.py"
    path.write_text(textwrap.dedent(TASK_FILE))
    return path


@pytest.mark.parametrize("reference, message", [
    ("no_such_file.py:make_task", "no file"),
    ("no_such_package.tasks:make_task", "no module named 'no_such_package'"),
    ("{file}:missing", "has no function 'missing'"),
    ("{file}:NOT_A_FUNCTION", "not a function"),
    ("{file}:wrong", "returned str, not a task"),
    ("{file}", "must look like"),
])
def test_task_reference_errors_name_the_problem(task_file, reference, message, tmp_path, capsys):
    text = reference.format(file=task_file)
    with pytest.raises(ValueError, match=message):
        load_task_reference(text)
    assert main(["compare", "--task", text, "--db", str(tmp_path / "r.db"), "--no-report", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message.split("'")[0] in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_task_name_and_task_reference_are_exclusive(task_file, tmp_path, capsys):
    assert main(["compare", "digits-mlp", "--task", f"{task_file}:make_task", "--db", str(tmp_path / "r.db")]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["compare", "--task", f"{task_file}:make_task", "--l2", "0.1", "--db", str(tmp_path / "r.db")]) == 2
    assert "--l2 applies to built-in tasks" in capsys.readouterr().err


def test_compare_with_a_task_function_reports_the_test_split(task_file, tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))  # the module form, package.module:function
    db = tmp_path / "r.db"
    assert main(["compare", "--task", "tiny_task:make_task", "--opt", "sgd:lr=0.5", "--seeds", "2", "--json",
                 "--db", str(db), "--out", str(tmp_path / "report"), "--quiet"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 2 and records[0]["task"] == "tiny"
    for record in records:  # the test split is the training set here: its final numbers are the train ones
        assert record["final_test_metric"] == pytest.approx(_last_train_metric(db, record["run_id"]), abs=1e-12)
        assert record["final_test_loss"] == pytest.approx(record["final_train_loss"], rel=1e-6)
    html = (tmp_path / "report" / "index.html").read_text()
    assert "final test acc" in html and "final test metric" in html


def _last_train_metric(db, run_id):
    from optimlab.store import Store

    with Store(str(db)) as store:
        trace, _ = store.load_run(run_id)
    return trace.epochs[-1]["train_metric"]


def test_example_task_file_builds_and_trains_briefly():
    task = load_task_reference(f"{EXAMPLE}:make_task")
    assert task.name == "spirals-mlp" and task.num_examples("test") == 512
    trace = train("adam:lr=0.01", task, max_steps=5, seed=0)
    assert trace.meta["steps"] == 5 and trace.meta["final_test"]["examples"] == 512


def test_sweep_and_analyze_take_a_task_function(task_file, tmp_path, capsys):
    reference = f"{task_file}:make_task"
    assert main(["sweep", "--task", reference, "--opt", "sgd", "--space", "lr=log:1e-2:1", "--trials", "2",
                 "--epochs", "1", "--no-defaults", "--study", "mine", "--db", str(tmp_path / "s.db"), "--json",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{"):])  # after the line naming the created sweep
    assert "mine" in json.dumps(summary) and "make_task" in json.dumps(summary)
    assert main(["analyze", "--task", reference, "--opt", "sgd:lr=0.1", "--epochs", "1", "--examples", "32",
                 "--top-k", "1", "--trace-samples", "2", "--density-runs", "0", "--iterations", "4",
                 "--out", str(tmp_path / "a"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "tiny" and result["sharpness"]["measurements"] > 0
    assert result["curvature"]["init"] is not None and result["curvature"]["end"] is not None
    assert main(["analyze", "himmelblau", "--task", reference]) == 2
    assert "not both" in capsys.readouterr().err


def test_averaging_and_ensembles_work_on_a_task_function(task_file, tmp_path, capsys):
    assert main(["compare", "--task", f"{task_file}:make_task", "--opt", "sgd:lr=0.5", "--seeds", "1", "--json",
                 "--average", "ema:decay=0.9", "--ensemble", "snapshot:cycles=2", "--quiet", "--no-report",
                 "--db", str(tmp_path / "r.db")]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    # the averaging hook's raw-model number (whole split at once) is the streamed final test metric
    assert record["test_metric"] == pytest.approx(record["final_test_metric"], abs=1e-12)
    assert 0 <= record["test_metric_ema"] <= 1 and record["snapshots"] == 2


def test_data_that_are_not_pairs_and_unresizable_loaders_fail_in_one_line():
    x, y = _classification_data(n=20)
    singles = LoaderTask(model=_make_model, train=DataLoader(TensorDataset(x), batch_size=5))
    with pytest.raises(ValueError, match=r"must yield \(input, target\) pairs, got list of length 1"):
        train("sgd:lr=0.1", singles, epochs=1)
    fixed = LoaderTask(model=_make_model, train=DataLoader(Pairs(x, y), batch_sampler=[[0, 1, 2], [3, 4]]))
    # a nominal batch size, len(dataset) / len(loader) = 20 / 2; the loader as built runs 2 steps an epoch
    assert fixed.default_batch_size == 10 and fixed.steps_per_epoch(10) == 2
    assert train("sgd:lr=0.1", fixed, epochs=2).meta["steps"] == 4
    with pytest.raises(ValueError, match="has its own batch sampler"):
        train("sgd:lr=0.1", fixed, epochs=1, batch_size=4)
