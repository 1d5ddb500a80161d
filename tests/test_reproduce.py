"""`optimlab reproduce`: the numbers D2L prints for its deterministic runs, and the pages it writes.

The expected lines are copied from the book's printed output (D2L chapter 11), an independent
reference: optimlab must print the same to the digits shown.
"""

import json
import math

import pytest

from optimlab.cli import main
from optimlab.reproduce import EXPERIMENTS, Budget, d2l_landscapes

QUICK = Budget(quick=True)


def test_gradient_descent_prints_the_books_numbers():
    printed = d2l_landscapes.gradient_descent(QUICK).printed
    assert "gd lr=0.2: epoch 10, x: 0.060466" in printed
    assert "gd lr=0.05: epoch 10, x: 3.486784" in printed
    assert "gd lr=1.1: epoch 10, x: 61.917364" in printed
    assert "gd lr=2 on x*cos(0.15*pi*x): epoch 10, x: -1.528166" in printed
    assert "gd lr=0.1 on x1^2 + 2*x2^2: epoch 20, x1: -0.057646, x2: -0.000073" in printed


def test_newton_prints_the_books_numbers():
    printed = d2l_landscapes.newton(QUICK).printed
    assert "newton on cosh(0.5x): epoch 10, x: 0.000000" in printed
    assert "newton on x*cos(0.15*pi*x): epoch 10, x: 26.834133" in printed
    assert "newton on x*cos(0.15*pi*x), lr 0.5: epoch 10, x: 7.269860" in printed


def test_momentum_prints_the_books_numbers():
    printed = d2l_landscapes.momentum(QUICK).printed
    assert "gd:lr=0.4: epoch 20, x1: -0.943467, x2: -0.000073" in printed
    assert "gd:lr=0.6: epoch 20, x1: -0.387814, x2: -1673.365109" in printed
    assert "momentum:lr=0.6,momentum=0.5: epoch 20, x1: 0.007188, x2: 0.002553" in printed
    assert "momentum:lr=0.6,momentum=0.25: epoch 20, x1: -0.126340, x2: -0.186632" in printed


def test_adaptive_prints_the_books_numbers():
    """D2L 11.7 / 11.8 put eps = 1e-6 inside the square root; eps_inside_sqrt=True does the same."""
    printed = d2l_landscapes.adaptive(QUICK).printed
    assert "adagrad:lr=0.4,eps=1e-06,eps_inside_sqrt=true: epoch 20, x1: -2.382563, x2: -0.158591" in printed
    assert "adagrad:lr=2,eps=1e-06,eps_inside_sqrt=true: epoch 20, x1: -0.002295, x2: -0.000000" in printed
    assert "rmsprop:lr=0.4,alpha=0.9,eps=1e-06,eps_inside_sqrt=true: epoch 20, x1: -0.010599, x2: 0.000000" in printed


def test_adam_bias_correction_matches_the_closed_form():
    result = EXPERIMENTS["adam-bias-correction"].run(QUICK)
    # first step without correction: lr * (1 - beta1) / sqrt(1 - beta2); with it: lr * sign(g)
    assert result.numbers["first_step_raw"] == pytest.approx(0.1 * 0.1 / math.sqrt(0.001), rel=1e-6)
    assert result.numbers["first_step_corrected"] == pytest.approx(0.1, rel=1e-6)


def test_cli_lists_and_rejects_unknown_names(capsys):
    assert main(["reproduce", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in EXPERIMENTS)
    assert main(["reproduce", "no-such-experiment"]) == 2
    assert "unknown experiment 'no-such-experiment'" in capsys.readouterr().err


def _check_page(folder):
    assert (folder / "index.md").read_text().startswith("# ")
    assert "<h1>" in (folder / "index.html").read_text()
    record = json.loads((folder / "numbers.json").read_text())
    assert record["findings"]
    pngs = list(folder.glob("*.png"))
    assert pngs
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_one_experiment_writes_its_page(tmp_path):
    assert main(["reproduce", "adam-bias-correction", "--out", str(tmp_path)]) == 0
    _check_page(tmp_path / "adam-bias-correction")
    assert (tmp_path / "index.html").exists()


@pytest.mark.slow
def test_reproduce_all_with_reduced_budgets(tmp_path):
    assert main(["reproduce", "all", "--quick", "--out", str(tmp_path)]) == 0
    for name in EXPERIMENTS:
        _check_page(tmp_path / name)


def test_also_puts_a_new_optimizer_next_to_the_lectures_six(tmp_path):
    """`--also lion:lr=0.001`: Lion's row is what lion-pytorch (an independent implementation)
    reaches on the same Rosenbrock from the same start in the same steps."""
    import torch

    lion_pytorch = pytest.importorskip("lion_pytorch")
    from optimlab.landscapes import get_landscape

    assert main(["reproduce", "cs231n-optimizers", "--quick", "--also", "lion:lr=0.001",
                 "--out", str(tmp_path)]) == 0
    numbers = json.loads((tmp_path / "cs231n-optimizers" / "numbers.json").read_text())["numbers"]
    assert list(numbers)[-1] == "lion:lr=0.001" and len(numbers) == 7
    landscape = get_landscape("rosenbrock")
    x = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
    reference = lion_pytorch.Lion([x], lr=0.001)
    for _ in range(QUICK.count(2000, 500)):
        reference.zero_grad()
        landscape.f(x).backward()
        reference.step()
    assert numbers["lion:lr=0.001"]["f"] == pytest.approx(landscape.f(x).item(), rel=1e-9, abs=1e-12)


def test_also_with_a_bad_spec_or_without_the_zoo_is_one_line(capsys):
    assert main(["reproduce", "cs231n-optimizers", "--also", "lion:lr=-1"]) == 2
    assert "lr=-1" in capsys.readouterr().err
    assert main(["reproduce", "gd", "--also", "lion"]) == 2
    assert "cs231n-optimizers" in capsys.readouterr().err
