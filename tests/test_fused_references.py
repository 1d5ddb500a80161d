"""Nobody holding a reference is surprised: held tensors follow their parameters, optimizers share.

Each case is compared with torch.optim running the same code (float64, rtol 1e-10).
"""

import copy
import warnings

import torch

import optimlab.optim as oo


def _model(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.Tanh(), torch.nn.Linear(6, 6)).to(dtype)


def _loss(model, step, dtype=torch.float64):
    gen = torch.Generator().manual_seed(100 + step)
    x, y = torch.randn(16, 6, generator=gen, dtype=dtype), torch.randn(16, 6, generator=gen, dtype=dtype)
    return torch.nn.functional.mse_loss(model(x), y)


def _params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _train(model, optimizers, steps=5, start=0):
    for step in range(start, start + steps):
        for opt in optimizers:  # several optimizers take turns, as in a two-phase schedule
            opt.zero_grad()
            _loss(model, step).backward()
            opt.step()


def _side_by_side(scenario):
    """Run `scenario(model, module)` with module = optimlab.optim, then torch.optim; compare parameters."""
    results = []
    for module in (oo, torch.optim):
        model = _model()
        scenario(model, module)
        results.append(_params(model))
    torch.testing.assert_close(results[0], results[1], rtol=1e-10, atol=1e-12)


def _segments(opt):
    return [segment for flat in opt._flat_groups.values() for segment in flat.segments]


def test_tensor_taken_before_the_optimizer_follows_the_parameter():
    def scenario(model, module):
        held = model[0].bias.detach()  # e.g. an EMA or a logger that kept the tensor
        opt = module.Adam(model.parameters(), lr=0.01)
        _train(model, [opt])
        assert torch.equal(held, model[0].bias.detach())
        if module is oo:  # only the held parameter left the gathered store
            in_place = [s.params[0] for s in _segments(opt) if s.in_place]
            assert len(in_place) == 1 and in_place[0] is model[0].bias

    _side_by_side(scenario)


def test_model_state_dict_taken_before_the_optimizer_follows_the_parameters():
    def scenario(model, module):
        snapshot = model.state_dict()  # aliases the parameters, as torch documents
        opt = module.SGD(model.parameters(), lr=0.1, momentum=0.9)
        _train(model, [opt])
        for name, param in model.named_parameters():
            assert torch.equal(snapshot[name], param.detach()), name

    _side_by_side(scenario)


def test_second_optimizer_on_the_same_parameters_shares_the_buffers_without_warning():
    def scenario(model, module):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "per-tensor path" warning
            adam = module.Adam(model.parameters(), lr=0.01)
            sgd = module.SGD(model.parameters(), lr=0.05, momentum=0.9)
        _train(model, [adam, sgd])
        if module is oo:
            assert not any(flat.per_tensor for o in (adam, sgd) for flat in o._flat_groups.values())
            stores = {id(s.store) for o in (adam, sgd) for s in _segments(o)}
            assert len(stores) == 1  # one store: the parameters did not move for the second optimizer

    _side_by_side(scenario)


def test_second_optimizer_on_a_subset_in_another_order_shares_too():
    def scenario(model, module):
        adam = module.Adam(model.parameters(), lr=0.01)
        later = module.Adagrad(list(model[2].parameters())[::-1], lr=0.1)
        _train(model, [adam, later])
        if module is oo:
            assert all(not s.in_place for s in _segments(later))
            assert {id(s.store) for s in _segments(later)} == {id(s.store) for s in _segments(adam)}

    _side_by_side(scenario)


def test_model_moved_after_construction_is_readopted_and_held_tensors_follow():
    def scenario(model, module):
        model.float()
        opt = module.Adam(model.parameters(), lr=0.01)
        model.double()  # every parameter's data is replaced after the optimizer was built
        held = model[2].weight.detach()
        _train(model, [opt])
        assert torch.equal(held, model[2].weight.detach())
        if module is oo:
            assert all(s.data.dtype == torch.float64 for s in _segments(opt))

    _side_by_side(scenario)


def test_model_load_state_dict_after_construction():
    def scenario(model, module):
        opt = module.Adam(model.parameters(), lr=0.01)
        _train(model, [opt])
        model.load_state_dict(_model(seed=1).state_dict())  # copies into the parameters in place
        _train(model, [opt], start=5)

    _side_by_side(scenario)


def test_weights_tied_through_data_after_construction_are_both_updated_without_warning():
    def scenario(model, module):
        opt = module.Adam(model.parameters(), lr=0.01)
        _train(model, [opt], steps=2)
        model[2].weight.data = model[0].weight.data  # tied the old way: two parameters, one memory
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _train(model, [opt], start=2)
        assert model[2].weight.data_ptr() == model[0].weight.data_ptr()

    _side_by_side(scenario)


def test_weights_tied_as_one_parameter():
    def scenario(model, module):
        model[2].weight = model[0].weight  # one Parameter in two modules: parameters() lists it once
        opt = module.AdamW(model.parameters(), lr=0.01)
        _train(model, [opt], steps=8)

    _side_by_side(scenario)


def test_deepcopy_of_the_model_keeps_its_gradients_to_itself():
    model = _model()
    opt = oo.Adam(model.parameters(), lr=0.01)
    _train(model, [opt], steps=2)
    twin = copy.deepcopy(model)  # e.g. an EMA model or a MAML inner copy
    opt.zero_grad()
    _loss(twin, 0).backward()
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is not None and p.grad.data_ptr() != q.data_ptr()
               for p, q in zip(twin.parameters(), model.parameters()))


def test_frozen_parameter_in_the_optimizer_then_unfrozen():
    def scenario(model, module):
        model[0].weight.requires_grad_(False)  # frozen, but handed to the optimizer anyway
        opt = module.Adam(model.parameters(), lr=0.01)
        _train(model, [opt], steps=3)
        model[0].weight.requires_grad_(True)  # unfrozen: no hook, the step copies its gradient
        _train(model, [opt], steps=3, start=3)

    _side_by_side(scenario)
