"""Bad inputs to optimlab's NAdam, RAdam, Adamax, Adadelta, ASGD, Rprop, Adafactor, SparseAdam and
Muon raise what torch.optim raises (the same exception type), at construction or at the step."""

from __future__ import annotations

import pytest
import torch

import optimlab.optim as oo

BAD_ARGUMENTS = {
    "Adamax": [dict(lr=-1.0), dict(eps=-1e-8), dict(betas=(1.0, 0.9)), dict(betas=(0.9, -0.1)),
               dict(weight_decay=-0.1), dict(lr=torch.tensor([0.1, 0.2]))],
    "Adadelta": [dict(lr=-1.0), dict(rho=1.5), dict(rho=-0.1), dict(eps=-1.0), dict(weight_decay=-1.0)],
    "NAdam": [dict(lr=-1.0), dict(eps=-1.0), dict(betas=(0.9, 1.0)), dict(weight_decay=-1.0),
              dict(momentum_decay=-1e-3), dict(lr=torch.tensor([0.1, 0.2]))],
    "RAdam": [dict(lr=-1.0), dict(eps=-1.0), dict(betas=(-0.1, 0.9)), dict(weight_decay=-1.0)],
    "ASGD": [dict(lr=-1.0), dict(weight_decay=-1.0), dict(lr=torch.tensor([0.1, 0.2]))],
    "Rprop": [dict(lr=-1.0), dict(etas=(1.2, 0.5)), dict(etas=(0.0, 1.2)), dict(etas=(0.5, 1.0))],
    "Adafactor": [dict(lr=-1.0), dict(beta2_decay=0.5), dict(eps=(-1.0, 1e-3)), dict(eps=(None, -1.0)),
                  dict(d=0.5), dict(weight_decay=-1.0)],
    "SparseAdam": [dict(lr=0.0), dict(lr=-1.0), dict(eps=0.0), dict(betas=(1.0, 0.9)), dict(betas=(0.9, 1.5))],
    "Muon": [dict(lr=-1.0), dict(momentum=-0.1), dict(weight_decay=-1.0), dict(adjust_lr_fn="spectral")],
}
CASES = [(name, kwargs) for name, bad in BAD_ARGUMENTS.items() for kwargs in bad]


def _raised(module, name: str, kwargs: dict, params) -> type[BaseException] | None:
    try:
        getattr(module, name)(params(), **kwargs)
    except Exception as error:  # noqa: BLE001 - the type is what the test compares
        return type(error)
    return None


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_bad_arguments_raise_torchs_error_type(name, kwargs):
    def params():
        shape = (3, 2) if name == "Muon" else (3,)
        return [torch.zeros(shape, requires_grad=True)]

    theirs = _raised(torch.optim, name, kwargs, params)
    assert theirs is not None, "torch accepts it: not a bad input"
    assert _raised(oo, name, kwargs, params) is theirs


@pytest.mark.parametrize("name", ["NAdam", "Adafactor", "Rprop", "Adadelta"])
def test_a_bad_second_group_is_refused_at_add_param_group(name):
    """torch checks only the constructor's defaults; optimlab checks each group with the same rules."""
    bad = {"NAdam": {"momentum_decay": -1.0}, "Adafactor": {"d": 0.5}, "Rprop": {"etas": (1.5, 2.0)},
           "Adadelta": {"rho": 2.0}}[name]
    opt = getattr(oo, name)([torch.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError):
        opt.add_param_group({"params": [torch.zeros(2, requires_grad=True)], **bad})


def test_muon_refuses_non_matrix_parameters_as_torch():
    for module in (torch.optim, oo):
        with pytest.raises(ValueError, match="2D parameters"):
            module.Muon([torch.zeros(3, requires_grad=True)])
    opt = oo.Muon([torch.zeros(3, 2, requires_grad=True)])
    with pytest.raises(ValueError, match="2D parameters"):  # torch would fail only at the first step
        opt.add_param_group({"params": [torch.zeros(2, 2, 2, requires_grad=True)]})


def test_muon_ns_steps_limit_raises_at_step_as_torch():
    for module in (torch.optim, oo):
        param = torch.ones(3, 2, requires_grad=True)
        opt = module.Muon([param], ns_steps=100)
        param.grad = torch.ones(3, 2)
        with pytest.raises(ValueError, match="less than 100"):
            opt.step()


@pytest.mark.parametrize("name", ["Adafactor", "Muon"])
def test_complex_parameters_refused_at_step_as_torch(name):
    for module in (torch.optim, oo):
        param = torch.ones(3, 2, dtype=torch.complex64, requires_grad=True)
        opt = getattr(module, name)([param])
        param.grad = torch.ones(3, 2, dtype=torch.complex64)
        with pytest.raises(RuntimeError, match="complex"):
            opt.step()


def test_sparse_adam_refuses_sparse_and_complex_parameters_as_torch():
    for module in (torch.optim, oo):
        with pytest.raises(ValueError, match="Complex params"):
            module.SparseAdam([torch.zeros(2, dtype=torch.complex64, requires_grad=True)])


@pytest.mark.parametrize("flag", ["capturable", "differentiable"])
@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adamax", "Adadelta", "ASGD", "Rprop"])
def test_unimplemented_torch_flags_are_refused_with_one_line(name, flag):
    with pytest.raises(ValueError, match=flag):
        getattr(oo, name)([torch.zeros(2, requires_grad=True)], **{flag: True})


def test_a_group_asking_for_the_compiled_path_is_refused():
    """torch's NAdam, RAdam... have no `fused`; fused=True in a group is refused, fused=False is per tensor."""
    with pytest.raises(ValueError, match="fused"):
        oo.RAdam([{"params": [torch.zeros(2, requires_grad=True)], "fused": True}])
    oo.RAdam([{"params": [torch.zeros(2, requires_grad=True)], "fused": False}])
