"""Progress output: periodic lines off a terminal, a rich bar on one, nothing when quiet."""

from __future__ import annotations

import io
import re

import pytest

from optimlab import progress as progress_module
from optimlab.cli import main
from optimlab.progress import BarProgress, LineProgress, Progress, format_seconds, progress_reporter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(progress_module.time, "perf_counter", fake)
    return fake


def test_lines_every_interval_with_eta_from_the_rate_so_far(clock):
    stream = io.StringIO()
    with progress_reporter("compare t", total=100, stream=stream, interval=10) as progress:
        assert isinstance(progress, LineProgress)
        clock.now += 4
        progress.advance(10)  # 4 s < 10 s: no line yet
        clock.now += 6
        progress.advance(15, status="adam seed 0")  # 25/100 after 10 s: 3 s per 10 -> 30 s left
        clock.now += 1
        progress.advance(5)  # 1 s after the last line: none
        clock.now += 30
        progress.advance(70)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "compare t: 25/100 steps (25%), 10 s elapsed, ETA 30 s, adam seed 0"
    assert lines[1] == "compare t: 100/100 steps (100%), 41 s elapsed, adam seed 0"  # the line at the end
    assert len(lines) == 2


def test_eta_is_elapsed_times_remaining_over_done(clock):
    progress = Progress("x", total=7)
    clock.now += 12
    progress.advance(3)
    assert progress.eta() == pytest.approx(12 * 4 / 3)
    assert Progress("x", total=None).eta() is None
    assert [format_seconds(s) for s in (5, 185, 3725)] == ["5 s", "3 min 05 s", "1 h 02 min"]


def test_a_terminal_gets_a_rich_bar_with_eta():
    stream = Terminal()
    with progress_reporter("sweep s", total=4, unit="trials", stream=stream) as progress:
        assert isinstance(progress, BarProgress)
        progress.note("trial 0 done")
        progress.advance(4)
    text = stream.getvalue()
    assert "trial 0 done" in text and "sweep s" in text and "ETA" in text and "4/4" in text


def test_quiet_prints_nothing():
    stream = Terminal()
    with progress_reporter("q", total=3, quiet=True, stream=stream) as progress:
        progress.advance(3)
        progress.note("hidden")
    assert stream.getvalue() == ""


def test_compare_prints_progress_lines_when_stderr_is_not_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPTIMLAB_PROGRESS_SECONDS", "0")  # a line at every step
    args = ["compare", "wine-softmax", "--opt", "sgd:lr=0.1", "--opt", "adam:lr=0.01", "--seeds", "1", "--epochs", "1",
            "--db", str(tmp_path / "p.db"), "--no-report"]
    assert main(args) == 0
    err = capsys.readouterr().err.splitlines()
    steps = [line for line in err if line.startswith("compare wine-softmax: ")]
    # wine: 142 training rows at batch 16 -> 9 steps per run, 18 in all
    assert re.fullmatch(r"compare wine-softmax: 1/18 steps \(6%\), \d+ s elapsed, ETA .+, sgd:lr=0.1 seed 0, loss .+",
                        steps[0])
    assert steps[-1].startswith("compare wine-softmax: 18/18 steps (100%)")
    assert any(line.startswith("[1/2] sgd:lr=0.1 seed 0: final train loss") for line in err)
    assert any(line.startswith("[2/2] adam:lr=0.01 seed 0: final train loss") for line in err)
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_progress_counts_a_diverged_run_as_its_planned_steps(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPTIMLAB_PROGRESS_SECONDS", "1000")  # only the last line
    assert main(["compare", "airfoil-linear", "--opt", "sgd:lr=1000", "--seeds", "1", "--epochs", "1",
                 "--db", str(tmp_path / "p.db"), "--no-report"]) == 0
    captured = capsys.readouterr()
    assert "diverged at step" in captured.out
    last = [line for line in captured.err.splitlines() if line.startswith("compare airfoil-linear: ")][-1]
    assert last.startswith("compare airfoil-linear: 150/150 steps (100%)")  # 1500 rows at batch 10


def test_sweep_reports_finished_trials(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPTIMLAB_PROGRESS_SECONDS", "0")
    assert main(["sweep", "wine-softmax", "--opt", "sgd", "--space", "lr=log:1e-3:1", "--trials", "3", "--epochs", "1",
                 "--no-defaults", "--study", "p", "--db", str(tmp_path / "s.db")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sweep p: ")]
    assert lines[0].startswith("sweep p: 0/3 trials (0%)")  # none finished yet
    assert any(line.startswith("sweep p: 1/3 trials (33%)") and "ETA" in line for line in lines)
    assert lines[-1].startswith("sweep p: 3/3 trials (100%)")
