"""load_state_dict refuses, in one line, a state_dict of another optimizer class or of other shapes."""

import pytest
import torch

import optimlab.optim as oo


def _model(width=6):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.Tanh(), torch.nn.Linear(width, 2))


def _stepped(opt, model):
    opt.zero_grad()
    model(torch.randn(8, 4)).pow(2).sum().backward()
    opt.step()
    return opt.state_dict()


@pytest.mark.parametrize("saved_by,loaded_by", [
    (torch.optim.SGD, oo.Adam), (oo.SGD, oo.Adam), (torch.optim.Adam, oo.SGD), (oo.RMSprop, oo.Adagrad),
])
def test_state_dict_of_another_class_raises_one_line(saved_by, loaded_by):
    model = _model()
    kwargs = {"momentum": 0.9} if saved_by in (torch.optim.SGD, oo.SGD) else {}
    saved = _stepped(saved_by(model.parameters(), lr=0.01, **kwargs), model)
    target = loaded_by(model.parameters(), lr=0.01)
    before = [dict(group) for group in target.param_groups]
    with pytest.raises(ValueError, match=r"load_state_dict: param group 0 lacks .*another optimizer class") as info:
        target.load_state_dict(saved)
    assert "\n" not in str(info.value)
    assert [dict(group) for group in target.param_groups] == before  # nothing merged


@pytest.mark.parametrize("fused", [None, False])
def test_state_dict_for_other_shapes_raises_naming_the_parameter(fused):
    small, big = _model(width=6), _model(width=7)  # same number of parameters, other shapes
    saved = _stepped(oo.Adam(small.parameters(), lr=0.01, fused=fused), small)
    target = oo.Adam(big.parameters(), lr=0.01, fused=fused)
    with pytest.raises(ValueError, match=r"state 'exp_avg' of param_groups\[0\]\['params'\]\[0\] has shape \(6, 4\), "
                                         r"the parameter needs \(7, 4\)"):
        target.load_state_dict(saved)


def test_sgd_momentum_of_other_shapes_raises_on_the_flat_path():
    small, big = _model(width=6), _model(width=7)
    saved = _stepped(torch.optim.SGD(small.parameters(), lr=0.01, momentum=0.9), small)
    with pytest.raises(ValueError, match=r"state 'momentum_buffer' .* has shape \(6, 4\)"):
        oo.SGD(big.parameters(), lr=0.01, momentum=0.9).load_state_dict(saved)


def test_matching_state_dicts_still_load():
    model = _model()
    for saved_by, loaded_by in [(torch.optim.Adam, oo.Adam), (oo.Adam, oo.AdamW), (torch.optim.SGD, oo.SGD)]:
        saved = _stepped(saved_by(model.parameters(), lr=0.01), model)
        loaded_by(model.parameters(), lr=0.01).load_state_dict(saved)  # no error
