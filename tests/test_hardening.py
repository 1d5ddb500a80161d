"""Issue 16, one test per kind of bad input: flags in specs, outcomes that lie, sizes a user types,
tracebacks instead of one-line errors, read-only verbs, lost CSV columns, Ctrl-C in compare, help
without torch, and docs that point outside the repository.

Each test checks the answer against what the input means (an independent expectation), never
against the code's own output.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import torch

from optimlab.cli import main
from optimlab.optim.registry import resolve
from optimlab.schedules import parse_schedule
from optimlab.store import Store
from optimlab.trace import Trace

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def one_line_error(capsys, code: int, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


# -- silent wrong results: flags -------------------------------------------------------------

@pytest.mark.parametrize("spec, key", [("gd:lr=0.1,maximize=no", "maximize"), ("nesterov:nesterov=no", "nesterov"),
                                       ("adam:amsgrad=maybe", "amsgrad"), ("rmsprop:centered=yes", "centered"),
                                       ("adam:amsgrad=2", "amsgrad"), ("sgd:maximize=0.5", "maximize"),
                                       ("adam:amsgrad=none", "amsgrad")])
def test_a_flag_that_is_not_true_false_1_or_0_is_an_error_naming_the_key(spec, key):
    with pytest.raises(ValueError, match=rf"^{key}=.* must be true or false \(or 1/0\)$"):
        resolve(spec)


@pytest.mark.parametrize("text, expected", [("true", True), ("false", False), ("1", True), ("0", False),
                                            ("TRUE", True), ("False", False)])
def test_true_false_1_0_are_the_flag_values(text, expected):
    assert resolve(f"adam:amsgrad={text}")[1]["amsgrad"] is expected
    assert resolve(f"gd:maximize={text}")[1]["maximize"] is expected


def test_maximize_no_through_the_cli_trains_nothing(capsys):
    code = main(["trace", "bowl", "--opt", "gd:lr=0.1,maximize=no", "--steps", "5"])
    one_line_error(capsys, code, "maximize='no' must be true or false")


def test_schedule_flags_accept_only_true_false_1_0():
    with pytest.raises(ValueError, match="smooth='maybe' must be true or false"):
        parse_schedule("step:every=2,steps_per_epoch=3,smooth=maybe")
    with pytest.raises(ValueError, match="three_phase='no' must be true or false"):
        parse_schedule("onecycle:total=100,three_phase=no")
    assert parse_schedule("onecycle:total=100,three_phase=0").three_phase is False


# -- outcomes that lie -----------------------------------------------------------------------

def test_a_run_whose_training_loss_grows_is_unstable_not_completed():
    from optimlab.engine.training import train

    trace = train("momentum:lr=0.5,momentum=1.5", "digits-softmax", epochs=2, seed=0)
    first, last = trace.epochs[0]["train_loss"], trace.epochs[-1]["train_loss"]
    assert last > 2 * first  # the premise: it ended worse than it began
    assert trace.outcome == "unstable"
    assert trace.outcome_text.startswith("unstable: train loss grew from")


def test_a_run_that_trains_is_still_completed():
    from optimlab.engine.training import train

    trace = train("sgd:lr=0.1", "digits-softmax", epochs=1, seed=0)
    assert trace.epochs[-1]["train_loss"] < trace.epochs[0]["train_loss"]
    assert trace.outcome == "completed"


@pytest.mark.parametrize("argv, fragment", [
    (["trace", "quadratic:kappa=1e308", "--opt", "gd"], "kappa=1e+308 must be a number from"),
    (["trace", "cosh:c=1000", "--opt", "gd"], "not finite"),  # cosh(1000 * 10) overflows at the start
    (["trace", "bowl", "--opt", "gd", "--steps", "0"], "--steps 0 must be from 1"),
    (["compare", "digits-softmax", "--opt", "sgd", "--evals-per-epoch", "0"], "--evals-per-epoch 0"),
    (["compare", "digits-mlp:hidden=0", "--opt", "sgd"], "hidden=0 must be an integer from 1"),
    (["compare", "digits-mlp:depth=0", "--opt", "sgd"], "depth=0 must be an integer from 1"),
])
def test_inputs_that_made_a_meaningless_run_are_errors(argv, fragment, capsys, tmp_path):
    code = main([*argv, "--db", str(tmp_path / "x.db")] if argv[0] == "compare" else argv)
    one_line_error(capsys, code, fragment)


# -- sizes a user types ----------------------------------------------------------------------

def _store_with_runs(path: Path, traces: list[Trace]) -> list[int]:
    with Store(path) as store:
        return [store.save_run(trace) for trace in traces]


def _trace(seed: int, extra: dict | None = None) -> Trace:
    epochs = [{"epoch": e, "step": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.0, "train_metric": 0.5,
               "val_metric": 0.5, "time": 0.1 * e, "lr": 0.1, **(extra or {})} for e in range(3)]
    return Trace("sgd", "wine-softmax", [], epochs, meta={"seed": seed})


def test_a_huge_run_id_range_is_never_materialized(tmp_path, capsys):
    db = tmp_path / "runs.db"
    ids = _store_with_runs(db, [_trace(0), _trace(1)])
    tracemalloc.start()
    code = main(["runs", "--db", str(db), "export", "1-999999999", "--csv"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert code == 0
    assert peak < 50e6  # a list of 999,999,999 ints alone would be about 36 GB
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted({int(r["run_id"]) for r in rows}) == ids


def test_a_range_with_no_stored_run_is_an_error(tmp_path, capsys):
    db = tmp_path / "runs.db"
    _store_with_runs(db, [_trace(0)])
    one_line_error(capsys, main(["report", "5-9", "--db", str(db), "--out", str(tmp_path / "r")]), "no run with ids 5-9")


@pytest.mark.parametrize("argv, fragment", [
    (["analyze", "bowl", "--grid", "1000000"], "--grid 1000000 must be from 2 to"),
    (["trace", "bowl", "--opt", "gd", "--steps", "100000000000"], "must be from 1 to"),
    (["schedule", "constant", "--steps", "10000000000"], "--steps 10000000000 must be from 1 to"),
    (["trace", "bowl", "--opt", "gd:lr=" + "1" * 2000], "at most 1000 allowed"),
    (["compare", "synthetic-linear:n=1000000000", "--opt", "sgd"], "n*d = 10000000000"),
    (["compare", "digits-softmax", "--opt", "sgd", "--seeds", "100000000"], "--seeds 100000000 must be between"),
    (["sweep", "digits-mlp", "--trials", "1000000000"], "--trials 1000000000 must be from 1"),
    (["bench", "step", "--device", "cpu", "--big", "100000x100000000"], "at most"),
    (["report", "1-2" + ",3" * 2000], "more than 1000 run ids"),
])
def test_every_size_a_user_types_is_bounded(argv, fragment, capsys, tmp_path):
    if argv[0] in ("compare", "report", "sweep"):
        argv = [*argv, "--db", str(tmp_path / "x.db")]
    one_line_error(capsys, main(argv), fragment)


# -- tracebacks instead of one-line errors ----------------------------------------------------

@pytest.mark.parametrize("spec,fragment", [("muon:adamw_lr=-1", "Invalid learning rate: -1"),
                                           ("ademamix:betas=0.9/0.999", "tuple of 3 numbers")])
def test_a_spec_the_class_refuses_fails_before_the_store_opens(spec, fragment, tmp_path, capsys):
    """Checks that only the optimizer class makes (torch's, at construction) run before anything is stored."""
    db = tmp_path / "runs.db"
    code = main(["compare", "digits-softmax", "--opt", spec, "--seeds", "1", "--epochs", "1", "--db", str(db),
                 "--no-report", "--quiet"])
    one_line_error(capsys, code, fragment)
    assert not db.exists()  # no experiment row marked incomplete, no run


def test_out_under_a_regular_file_fails_before_any_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    db = tmp_path / "runs.db"
    code = main(["compare", "digits-softmax", "--opt", "sgd", "--seeds", "1", "--epochs", "1",
                 "--db", str(db), "--out", str(blocker / "report")])
    one_line_error(capsys, code, "is a file, not a folder")
    assert not db.exists()  # nothing was trained or stored


@pytest.mark.parametrize("kind", ["corrupt", "folder", "unreachable", "driver", "missing-folder"])
def test_a_database_that_cannot_be_opened_is_one_line(kind, tmp_path, capsys):
    location = {"corrupt": tmp_path / "bad.db", "folder": tmp_path, "missing-folder": tmp_path / "no" / "x.db",
                "unreachable": "postgresql://user:secret@127.0.0.1:1/db",
                "driver": "postgresql+pg8000://user@127.0.0.1/db"}[kind]
    if kind == "corrupt":
        location.write_bytes(b"this is not a SQLite file" * 100)
    code = main(["compare", "digits-softmax", "--opt", "sgd", "--seeds", "1", "--epochs", "1", "--no-report",
                 "--db", str(location)])
    err = one_line_error(capsys, code, "database")
    assert "secret" not in err
    expected = {"corrupt": "not a SQLite database", "folder": "is a folder", "unreachable": "cannot open database",
                "driver": "'pg8000' is not installed", "missing-folder": "does not exist"}[kind]
    assert expected in err


@pytest.mark.parametrize("argv, fragment", [
    (["compare", "digits-softmax", "--opt", "sgd", "--threads", "-1"], "--threads -1 must be between 0"),
    (["compare", "digits-mlp:depth=abc", "--opt", "sgd"], "depth='abc' must be an integer"),
    (["bench", "step", "--device", "tpu"], "--device 'tpu' unknown (allowed: cpu, cuda)"),
    (["trace", "bowl", "--opt", "gd", "--schedule", "cosine:T_max=10"], "allowed: total, final, warmup"),
    (["schedule", "step:every=10,gamma=0.5"], "unknown argument 'gamma' for schedule 'step'; allowed: every, factor"),
])
def test_inputs_that_raised_tracebacks_are_one_line(argv, fragment, capsys, tmp_path):
    if argv[0] == "compare":
        argv = [*argv, "--db", str(tmp_path / "x.db")]
    one_line_error(capsys, main(argv), fragment)


# -- read-only verbs ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["runs", "list"], ["runs", "show", "1"], ["runs", "export", "1", "--csv"],
                                  ["report", "1"]])
def test_read_only_verbs_never_create_a_database(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "typo.db"
    one_line_error(capsys, main([*argv, "--db", str(missing)]), f"no such database: {missing}")
    assert list(tmp_path.iterdir()) == []


# -- lost data ---------------------------------------------------------------------------------

def test_export_csv_header_is_the_union_of_every_runs_columns(tmp_path):
    first, second = _trace(0), _trace(1, {"sharpness": 3.5})
    ids = _store_with_runs(tmp_path / "runs.db", [first, second])
    out = io.StringIO()
    with Store(tmp_path / "runs.db") as store:
        store.export_csv(ids, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    expected_columns = {"run_id", "task", "optimizer", "seed"} | {k for t in (first, second) for r in t.epochs for k in r}
    assert set(rows[0]) == expected_columns
    assert [r["sharpness"] for r in rows] == [""] * 3 + ["3.5"] * 3


def test_ctrl_c_in_compare_says_what_was_stored_and_marks_the_experiment(tmp_path, capsys, monkeypatch):
    import optimlab.engine.compare as engine_compare

    real_train, calls = engine_compare.train, []

    def train_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(engine_compare, "train", train_then_interrupt)
    db = tmp_path / "runs.db"
    code = main(["compare", "digits-softmax", "--opt", "sgd", "--seeds", "3", "--epochs", "1", "--no-report",
                 "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 130
    with Store(db) as store:
        runs = store.list_runs()
        assert len(runs) == 1
        assert store.experiment_status(runs[0]["experiment"]) == "incomplete"
    assert f"stored runs {runs[0]['id']} (1 of 3)" in err and "incomplete" in err, err


# -- help without torch -------------------------------------------------------------------------

HELP_ARGVS = [["--help"], ["compare", "--help"], ["trace", "--help"], ["bench", "--help"], ["bench", "step", "--help"],
              ["sweep", "--help"], ["sweep", "report", "--help"], ["analyze", "--help"], ["list", "--help"],
              ["schedule", "--help"], ["runs", "list", "--help"], ["runs", "export", "--help"], ["demo", "--help"],
              ["report", "--help"], ["landscapes", "--help"], ["tasks", "--help"], ["serve", "--help"],
              ["reproduce", "--help"]]

HELP_SCRIPT = """
import contextlib, io, json, sys
from optimlab.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main(argv)
        except SystemExit:
            pass
    results.append(out.getvalue())
print(json.dumps({"texts": results, "heavy": [m for m in ("torch", "optuna", "matplotlib") if m in sys.modules]}))
"""


def test_help_imports_no_torch_and_every_option_has_help():
    done = subprocess.run([sys.executable, "-c", HELP_SCRIPT, json.dumps(HELP_ARGVS)], capture_output=True,
                          text=True, check=True, cwd=REPO)
    result = json.loads(done.stdout)
    assert result["heavy"] == []
    for argv, text in zip(HELP_ARGVS, result["texts"]):
        assert text.startswith("usage:"), argv
        lines = text.splitlines()
        for index, line in enumerate(lines):
            match = re.match(r"^  (-\S.*?)(?: {2,}(.*))?$", line)
            if not match or match.group(2) or match.group(1).endswith("--help"):
                continue
            # the help went to the next line (a long option), or there is none
            assert index + 1 < len(lines) and lines[index + 1].startswith(" " * 10), (argv, match.group(1))
    sweep_report = result["texts"][HELP_ARGVS.index(["sweep", "report", "--help"])]
    assert sweep_report.startswith("usage: optimlab sweep report") and "--trials" not in sweep_report


# -- docs ---------------------------------------------------------------------------------------

def test_docs_links_stay_inside_the_repository():
    for page in [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()) + re.findall(r"`(\.\./[^`]+)`", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(REPO), f"{page.name} points outside the repository: {target}"
            assert resolved.exists(), f"{page.name}: missing {target}"
