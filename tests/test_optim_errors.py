"""Bad input gets one ValueError line naming the value and what is allowed; `optimlab list` shows
every registered optimizer with its defaults."""

from __future__ import annotations

import json

import pytest
import torch

import optimlab.optim as oo
from optimlab.cli import main
from optimlab.spec import parse_spec


def _params():
    return [torch.zeros(2, requires_grad=True)]


BAD_HYPERPARAMETERS = [
    (oo.SGD, dict(lr=-0.1), r"^lr=-0\.1 must be >= 0$"),
    (oo.Adam, dict(lr=float("nan")), r"^lr=nan must be a finite number$"),
    (oo.Adagrad, dict(lr=float("inf")), r"^lr=inf must be a finite number$"),
    (oo.RMSprop, dict(lr="fast"), r"^lr='fast' must be a finite number$"),
    (oo.Adam, dict(betas=(1.0, 0.999)), r"^betas\[0\]=1\.0 must be in \[0, 1\)$"),
    (oo.AdamW, dict(betas=(0.9, -0.1)), r"^betas\[1\]=-0\.1 must be in \[0, 1\)$"),
    (oo.Adam, dict(betas=(0.9,)), r"^betas=\(0\.9,\) must be a pair \(beta1, beta2\)$"),
    (oo.Adam, dict(eps=-1e-8), r"^eps=-1e-08 must be >= 0$"),
    (oo.Adagrad, dict(eps=-1.0), r"^eps=-1\.0 must be >= 0$"),
    (oo.RMSprop, dict(eps=-1.0), r"^eps=-1\.0 must be >= 0$"),
    (oo.SGD, dict(lr=0.1, weight_decay=-0.01), r"^weight_decay=-0\.01 must be >= 0$"),
    (oo.Adam, dict(weight_decay=-0.01), r"^weight_decay=-0\.01 must be >= 0$"),
    (oo.AdamW, dict(weight_decay=-0.01), r"^weight_decay=-0\.01 must be >= 0$"),
    (oo.Adagrad, dict(weight_decay=-0.01), r"^weight_decay=-0\.01 must be >= 0$"),
    (oo.RMSprop, dict(weight_decay=-0.01), r"^weight_decay=-0\.01 must be >= 0$"),
    (oo.SGD, dict(lr=0.1, momentum=-0.9), r"^momentum=-0\.9 must be >= 0$"),
    (oo.RMSprop, dict(momentum=-0.9), r"^momentum=-0\.9 must be >= 0$"),
    (oo.RMSprop, dict(alpha=1.5), r"^alpha=1\.5 must be in \[0, 1\]$"),
    (oo.Adagrad, dict(lr_decay=-0.1), r"^lr_decay=-0\.1 must be >= 0$"),
    (oo.Adagrad, dict(initial_accumulator_value=-0.1), r"^initial_accumulator_value=-0\.1 must be >= 0$"),
    (oo.SGD, dict(lr=0.1, nesterov=True), r"^nesterov=True requires momentum > 0 and dampening = 0 \(got momentum=0"),
    (oo.SGD, dict(lr=0.1, nesterov=True, momentum=0.9, dampening=0.1),
     r"^nesterov=True requires momentum > 0 and dampening = 0 \(got momentum=0\.9, dampening=0\.1\)$"),
    (oo.Adam, dict(differentiable=True), r"^differentiable=True is not supported by optimlab \(allowed: False\)$"),
]


@pytest.mark.parametrize("cls,kwargs,message", BAD_HYPERPARAMETERS,
                         ids=[f"{c.__name__}-{next(iter(k))}" for c, k, _ in BAD_HYPERPARAMETERS])
def test_bad_hyperparameters_name_the_value_and_the_range(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(_params(), **kwargs)


@pytest.mark.parametrize("spec,message", [
    ("adamm", r"^unknown optimizer 'adamm'; choose one of: gd, sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw, "
              r"newton, lbfgs, nadam, radam, .*lion, sf-adamw, sf-sgd, ademamix, soap$"),
    ("adam:beta=0.9", r"^unknown hyperparameter 'beta' for adam; allowed: lr, betas, eps"),
    ("newton:history_size=3", r"^unknown hyperparameter 'history_size' for newton; allowed: lr, damping, mode, max_params"),
    ("adam:lr=-1", r"^lr=-1 must be >= 0$"),
    ("momentum:momentum=-0.5", r"^momentum=-0\.5 must be >= 0$"),
    ("adam:betas=0.9/1.5", r"^betas\[1\]=1\.5 must be in \[0, 1\)$"),
    ("sgd:nesterov=true", r"^nesterov=True requires momentum > 0"),
    ("lbfgs:line_search_fn=wolfe", r"^line_search_fn='wolfe' must be None or 'strong_wolfe'$"),
])
def test_registry_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        oo.create(spec, _params())


@pytest.mark.parametrize("text,message", [
    ("", r"^empty optimizer spec: expected 'name' or 'name:key=value,\.\.\.'$"),
    ("   ", r"^empty optimizer spec"),
    ("1adam", r"^malformed optimizer spec '1adam': bad name '1adam'$"),
    ("adam:lr", r"^malformed optimizer spec 'adam:lr': expected key=value, got 'lr'$"),
    ("adam:=3", r"^malformed optimizer spec 'adam:=3': expected key=value, got '=3'$"),
    ("adam:lr=", r"^malformed optimizer spec 'adam:lr=': expected key=value, got 'lr='$"),
    ("adam:lr=1,,eps=2", r"^malformed optimizer spec 'adam:lr=1,,eps=2': expected key=value, got ''$"),
    ("adam:1lr=3", r"^malformed optimizer spec 'adam:1lr=3': expected key=value, got '1lr=3'$"),
    ("adam:lr=1,lr=2", r"^malformed optimizer spec 'adam:lr=1,lr=2': 'lr' given twice$"),
    ("adam:lr=nan", r"^malformed optimizer spec 'adam:lr=nan': lr=nan is not a finite number$"),
    ("adam:lr=inf", r"^malformed optimizer spec 'adam:lr=inf': lr=inf is not a finite number$"),
])
def test_malformed_spec_strings(text, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(text, "optimizer spec")
    with pytest.raises(ValueError, match=message):
        oo.create(text, _params())


def test_spec_strings_round_trip_and_parse_values():
    spec = parse_spec("adam:lr=0.001,betas=0.9/0.999,amsgrad=true")
    assert spec.kwargs == {"lr": 0.001, "betas": (0.9, 0.999), "amsgrad": True}
    assert parse_spec(str(spec)) == spec


@pytest.mark.parametrize("name", ["newton", "lbfgs"])
def test_closure_based_optimizers_refuse_a_missing_closure(name):
    optimizer = oo.create(name, _params())
    assert oo.get_entry(name).needs_closure and optimizer.needs_closure
    with pytest.raises(ValueError, match=r"\.step\(\) requires a closure"):
        optimizer.step()


def test_closure_free_optimizers_are_marked_so():
    assert [n for n, e in oo.OPTIMIZERS.items() if e.needs_closure] == ["newton", "lbfgs"]


def test_lazy_class_attributes():
    assert oo.Newton.__name__ == "Newton" and oo.LBFGS.__name__ == "LBFGS"


def test_cli_list_shows_newton_and_lbfgs_with_defaults(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name in oo.OPTIMIZERS:
        assert any(line.startswith(f"{name} ") for line in lines), name
    newton_line = lines[[i for i, line in enumerate(lines) if line.startswith("newton ")][0] + 1]
    assert "lr=1" in newton_line and "damping=0" in newton_line and "mode=saddle_free" in newton_line
    assert "max_params=2000" in newton_line
    lbfgs_line = lines[[i for i, line in enumerate(lines) if line.startswith("lbfgs ")][0] + 1]
    assert "history_size=100" in lbfgs_line and "line_search_fn=strong_wolfe" in lbfgs_line
    assert "tolerance_grad=1e-07" in lbfgs_line and "max_iter=1" in lbfgs_line


def test_cli_list_json(capsys):
    assert main(["list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["newton"]["needs_closure"] and rows["lbfgs"]["needs_closure"]
    assert rows["newton"]["defaults"]["max_params"] == 2000
    assert rows["lbfgs"]["defaults"]["history_size"] == 100
    assert not rows["adam"]["needs_closure"]


@pytest.mark.parametrize("cls,defaults,group,message", [
    (oo.SGD, dict(lr=0.1), dict(lr=-1.0), r"^lr=-1\.0 must be >= 0$"),
    (oo.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), dict(momentum=0.0), r"^nesterov=True requires momentum > 0"),
    (oo.Adam, dict(), dict(betas=(0.9, 1.0)), r"^betas\[1\]=1\.0 must be in \[0, 1\)$"),
    (oo.AdamW, dict(), dict(weight_decay=-1.0), r"^weight_decay=-1\.0 must be >= 0$"),
    (oo.RMSprop, dict(), dict(alpha=-0.5), r"^alpha=-0\.5 must be in \[0, 1\]$"),
    (oo.Adagrad, dict(), dict(eps=-1.0), r"^eps=-1\.0 must be >= 0$"),
])
def test_param_group_hyperparameters_are_validated(cls, defaults, group, message):
    with pytest.raises(ValueError, match=message):  # at construction
        cls([{"params": _params(), **group}], **defaults)
    optimizer = cls(_params(), **defaults)
    with pytest.raises(ValueError, match=message):  # and in add_param_group, which then adds nothing
        optimizer.add_param_group({"params": _params(), **group})
    assert len(optimizer.param_groups) == 1
