"""The spec names nadam, radam, adamax, adadelta, adafactor, asgd, rprop and muon in the registry,
`optimlab list`, `trace` and the sweep's space checks; and `muon` (MuonAdamW) = torch.optim.Muon on
the 2-D parameters + torch.optim.AdamW on the others, as torch's docs prescribe."""

from __future__ import annotations

import json

import pytest
import torch

from optim_torch_cases import RTOL, max_rel_error
from optimlab.cli import main
from optimlab.optim import OPTIMIZERS, MuonAdamW, create
from optimlab.sweep.space import parse_space, space_for

NEW = ["nadam", "radam", "adamax", "adadelta", "adafactor", "asgd", "rprop", "muon"]


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()


@pytest.mark.parametrize("name", NEW)
def test_each_spec_builds_and_trains_a_small_model(name):
    model = _model()
    inputs = torch.randn(32, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    targets = torch.randn(32, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    opt = create(name, model.parameters())
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first  # the registry defaults make progress on a small model


def test_list_names_every_new_optimizer(capsys):
    assert main(["list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(NEW) <= set(rows)
    assert rows["muon"]["class"] == "MuonAdamW" and "AdamW" in rows["muon"]["description"]


def test_list_table_has_a_row_per_optimizer(capsys):
    main(["list"])
    lines = capsys.readouterr().out.splitlines()
    names = {line.split()[0] for line in lines if line and not line.startswith(" ")}
    assert set(NEW) <= names


def test_trace_runs_every_new_optimizer(capsys):
    argv = ["trace", "bowl", "--steps", "30", "--json"]
    for name in NEW:
        argv += ["--opt", name]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    text = json.dumps(out)
    assert all(name in text for name in NEW)


def test_sweep_space_checks_the_new_optimizers():
    assert [d.name for d in space_for(parse_space(["lr=log:1e-3:1e-1", "muon.momentum=0.9,0.95"]), "muon")] == [
        "lr", "momentum"]
    with pytest.raises(ValueError, match="momentum"):
        space_for(parse_space(["muon.momentum=-1:0.5"]), "muon")
    with pytest.raises(ValueError, match="rho"):
        space_for(parse_space(["rho=0.5:1.5"]), "adadelta")
    with pytest.raises(ValueError, match="not a hyperparameter of rprop"):
        space_for(parse_space(["betas1=0.8:0.9"]), "rprop")


def test_muon_adamw_is_torch_muon_plus_torch_adamw():
    """The fallback torch documents: Muon on the 2-D weights, AdamW on the biases, 50 steps."""
    inputs = torch.randn(16, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    targets = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ours, theirs = _model(), _model()
    hyper = dict(lr=0.02, momentum=0.9, weight_decay=0.01)
    adamw = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.02)
    opt = MuonAdamW(ours.parameters(), **hyper, adamw_lr=adamw["lr"], adamw_betas=adamw["betas"],
                    adamw_eps=adamw["eps"], adamw_weight_decay=adamw["weight_decay"])
    assert [g["use_muon"] for g in opt.param_groups] == [True, False]
    matrices = [p for p in theirs.parameters() if p.ndim == 2]
    others = [p for p in theirs.parameters() if p.ndim != 2]
    pair = [torch.optim.Muon(matrices, **hyper), torch.optim.AdamW(others, **adamw)]
    for _ in range(50):
        for model, optimizers in ((ours, [opt]), (theirs, pair)):
            model.zero_grad()
            torch.nn.functional.mse_loss(model(inputs), targets).backward()
            for optimizer in optimizers:
                optimizer.step()
    assert max_rel_error(list(ours.parameters()), list(theirs.parameters())) <= RTOL


def test_muon_adamw_state_dict_round_trip():
    def run(steps: int, resume_at: int | None = None) -> list[torch.Tensor]:
        model = _model()
        inputs = torch.randn(16, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        opt = MuonAdamW(model.parameters(), adamw_lr=1e-2)
        for step in range(steps):
            if step == resume_at:
                saved = opt.state_dict()
                opt = MuonAdamW(model.parameters(), adamw_lr=1e-2)
                opt.load_state_dict(saved)
            model.zero_grad()
            model(inputs).pow(2).mean().backward()
            opt.step()
        return list(model.parameters())

    assert max_rel_error(run(30, resume_at=15), run(30)) <= RTOL
