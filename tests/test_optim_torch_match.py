"""optimlab's NAdam, RAdam, Adamax, Adadelta, ASGD, Rprop, Adafactor and Muon against torch.optim:
every option combination, 100 steps, two param groups, 0-d to 3-d tensors, float64 rtol 1e-10,
on the flat path (where the rule runs there) and the per-tensor path, and with a Tensor lr."""

from __future__ import annotations

import pytest
import torch

from optim_torch_cases import (FLAT, RTOL, both, build, case_id, cases, max_rel_error, problem, run, set_grads,
                               shapes_for)
import optimlab.optim as oo

CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_matches_torch(case):
    name, kwargs = case
    assert both(name, kwargs) <= RTOL


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in FLAT][::3], ids=lambda c: case_id(c))
def test_per_tensor_path_matches_torch(case):
    """The same rule on the per-tensor path (a group with fused=False), a third of the grid."""
    name, kwargs = case
    assert both(name, kwargs, per_tensor=True) <= RTOL


@pytest.mark.parametrize("name", ["Adamax", "Adadelta", "NAdam", "RAdam", "ASGD", "Rprop", "Adafactor", "Muon"])
def test_tensor_lr_matches_torch(name):
    lr = {"Adadelta": 1.0, "ASGD": 0.05, "Adafactor": 0.05, "Muon": 0.02}.get(name, 0.01)
    assert both(name, {"lr": torch.tensor(lr, dtype=torch.float64)}) <= RTOL


@pytest.mark.parametrize("name", ["Adamax", "Adadelta", "NAdam", "RAdam", "ASGD", "Rprop", "Adafactor"])
def test_state_keys_and_shapes_match_torch(name):
    (_, ours), (_, theirs) = run(oo, name, {"lr": 0.01}, steps=3), run(torch.optim, name, {"lr": 0.01}, steps=3)
    mine, torchs = ours.state_dict(), theirs.state_dict()
    assert mine["state"].keys() == torchs["state"].keys()
    for index, state in torchs["state"].items():
        assert mine["state"][index].keys() == state.keys()
        for key, value in state.items():
            assert type(mine["state"][index][key]) is type(value)
            if isinstance(value, torch.Tensor):
                assert mine["state"][index][key].shape == value.shape
                assert mine["state"][index][key].dtype == value.dtype
    assert [sorted(g) for g in mine["param_groups"]] == [sorted(g) for g in torchs["param_groups"]]


@pytest.mark.parametrize("name", ["Adamax", "Adadelta", "NAdam", "RAdam", "ASGD", "Rprop", "Adafactor", "Muon",
                                  "SparseAdam"])
def test_defaults_match_torch(name):
    import inspect
    ours = inspect.signature(getattr(oo, name).__init__).parameters
    theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters
    assert list(ours) == list(theirs)
    for key, parameter in theirs.items():
        assert ours[key].default == parameter.default, key
        assert ours[key].kind == parameter.kind, key


def test_adafactor_eps1_none_is_machine_epsilon():
    """eps=(None, eps2) means the dtype's machine epsilon, as torch: the same run as eps1 = 2^-52."""
    params_none, _ = run(oo, "Adafactor", {"lr": 0.05, "eps": (None, 1e-3)})
    params_eps, _ = run(oo, "Adafactor", {"lr": 0.05, "eps": (torch.finfo(torch.float64).eps, 1e-3)})
    assert all(torch.equal(a, b) for a, b in zip(params_none, params_eps))


@pytest.mark.filterwarnings("ignore:.*per-tensor path")
def test_complex_params_match_torch():
    """A complex parameter is a pair of reals to the rules, as torch: Rprop steps both parts from lr."""
    for name in ("Rprop", "NAdam", "RAdam", "Adamax", "Adadelta", "ASGD"):
        start = torch.randn(3, 2, dtype=torch.complex128, generator=torch.Generator().manual_seed(1))
        results = []
        for module in (oo, torch.optim):
            param = start.clone().requires_grad_()
            opt = getattr(module, name)([param], lr=0.01)
            for _ in range(20):
                param.grad = param.detach() - (1 + 2j)
                opt.step()
            results.append(param.detach())
        assert torch.allclose(results[0], results[1], rtol=RTOL, atol=0), name


@pytest.mark.parametrize("name", ["Adamax", "Adadelta", "NAdam", "RAdam", "ASGD", "Rprop", "Adafactor", "Muon"])
def test_float32_matches_torch(name):
    """float32 (the flat path for Adamax, Adadelta, RAdam, Rprop): rtol 1e-5 after 100 steps."""
    lr = {"Adadelta": 1.0, "ASGD": 0.05, "Adafactor": 0.05, "Muon": 0.02}.get(name, 0.01)
    results = []
    for module in (oo, torch.optim):
        starts = [s.float() for s in problem(shapes_for(name))[0]]
        centers = [c.float() for c in problem(shapes_for(name))[1]]
        params, opt = build(module, name, {"lr": lr}, starts)
        for step in range(100):
            set_grads(params, centers, step)
            opt.step()
        results.append(params)
    assert max_rel_error(*results) <= 1e-5
