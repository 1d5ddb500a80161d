"""The torch comparisons can fail: a subtly wrong rule (a swapped beta, a missing bias correction,
an off-by-one schedule, Muon without Nesterov or with a reordered Newton–Schulz) ends at least
1e-6 (10^4 times the tolerance) away from torch.optim after the same 100 steps of the same harness.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch

from optim_torch_cases import LR, RTOL, max_rel_error, outcome, run
from optimlab.optim import rules, rules_muon
import optimlab.optim as oo

FAR = 1e-6


def _no_bias_correction(monkeypatch):
    monkeypatch.setattr(rules, "bias_correction", lambda beta, step: 1.0)


def _nadam_schedule_off_by_one(monkeypatch):
    original = rules.nadam_momentum
    monkeypatch.setattr(rules, "nadam_momentum", lambda beta1, decay, step: original(beta1, decay, step - 1))


def _radam_never_rectified(monkeypatch):
    monkeypatch.setattr(rules, "radam_rectification", lambda beta2, step: None)


def _newton_schulz_reordered(monkeypatch):
    """The same quintic, associated otherwise: X (a I + b A + c A^2) instead of a X + (b A + c A^2) X."""

    def reordered(matrix, coefficients, steps, eps):
        a, b, c = coefficients
        tall = matrix.size(0) > matrix.size(1)
        ortho = matrix.bfloat16()
        ortho = ortho.T if tall else ortho
        ortho = ortho / ortho.norm().clamp(min=eps)
        for _ in range(steps):
            gram = ortho @ ortho.T
            ortho = a * ortho + (b * gram + c * gram @ gram) @ ortho
        return ortho.T if tall else ortho

    monkeypatch.setattr(rules_muon, "newton_schulz", reordered)


# (class, torch's options, our wrong options or a patch of the rule)
PERTURBATIONS: list[tuple[str, dict, dict | Callable]] = [
    ("Adamax", {"betas": (0.9, 0.99)}, {"betas": (0.99, 0.9)}),
    ("Adamax", {}, _no_bias_correction),
    ("NAdam", {"betas": (0.9, 0.99)}, {"betas": (0.99, 0.9)}),
    ("NAdam", {}, _no_bias_correction),
    ("NAdam", {}, _nadam_schedule_off_by_one),
    ("RAdam", {"betas": (0.9, 0.99)}, {"betas": (0.99, 0.9)}),
    ("RAdam", {}, _no_bias_correction),
    ("RAdam", {}, _radam_never_rectified),
    ("Adadelta", {"rho": 0.9}, {"rho": 0.91}),
    ("Adadelta", {"eps": 1e-6}, {"eps": 1e-5}),
    ("ASGD", {"t0": 10.0}, {"t0": 11.0}),
    ("ASGD", {"alpha": 0.75}, {"alpha": 0.76}),
    ("Rprop", {"etas": (0.5, 1.2)}, {"etas": (0.5, 1.25)}),
    ("Adafactor", {"beta2_decay": -0.8}, {"beta2_decay": -0.7}),
    ("Adafactor", {"lr": 0.05}, {"lr": 0.051}),  # rho_t = min(lr, 1/sqrt(t)): the relative step
    ("Muon", {"nesterov": True}, {"nesterov": False}),
    ("Muon", {}, _newton_schulz_reordered),
    ("Muon", {"adjust_lr_fn": "original"}, {"adjust_lr_fn": "match_rms_adamw"}),
]


def _id(perturbation) -> str:
    name, _, wrong = perturbation
    return f"{name}-{wrong.__name__ if callable(wrong) else wrong}"


@pytest.mark.parametrize("perturbation", PERTURBATIONS, ids=[_id(p) for p in PERTURBATIONS])
def test_a_subtly_wrong_rule_is_caught(perturbation, monkeypatch):
    name, options, wrong = perturbation
    kwargs = {"lr": LR[name], **options}  # the harness of test_optim_torch_match: parameters and state
    theirs = outcome(*reversed(run(torch.optim, name, kwargs)))
    assert max_rel_error(outcome(*reversed(run(oo, name, kwargs))), theirs) <= RTOL  # the right rule agrees...
    if callable(wrong):
        wrong(monkeypatch)
    else:
        kwargs = {**kwargs, **wrong}
    wrong_outcome = outcome(*reversed(run(oo, name, kwargs)))
    assert max_rel_error(wrong_outcome, theirs) > FAR  # ...and the wrong one is far outside the tolerance


def test_sparse_adam_without_bias_correction_is_caught(monkeypatch):
    from test_optim_torch_sparse import _run

    kwargs = dict(lr=0.05)
    theirs = _run(torch.optim, "SparseAdam", kwargs)
    assert max_rel_error(_run(oo, "SparseAdam", kwargs), theirs) <= RTOL
    _no_bias_correction(monkeypatch)
    assert max_rel_error(_run(oo, "SparseAdam", kwargs), theirs) > FAR


def test_sparse_adagrad_without_lr_decay_is_caught():
    from test_optim_torch_sparse import _run

    theirs = _run(torch.optim, "Adagrad", dict(lr=0.1, lr_decay=0.01))
    assert max_rel_error(_run(oo, "Adagrad", dict(lr=0.1, lr_decay=0.0)), theirs) > FAR
