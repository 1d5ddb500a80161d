"""Newton: exact on quadratics (vs torch.linalg.solve), the documented saddle and D2L behaviour,
the Hessian vs torch.autograd.functional.hessian, closures with and without backward, errors."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from optimlab.optim import create
from optimlab.optim.newton import Newton

F64 = torch.float64


def _spd(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=gen, dtype=F64)
    return a @ a.T + 0.5 * torch.eye(n, dtype=F64), torch.randn(n, generator=gen, dtype=F64)


def _params_for(n_shapes=((), (3,), (2, 2))) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(s, generator=gen, dtype=F64).requires_grad_() for s in n_shapes]


def _flat(params) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def _quadratic_closure(optimizer, params, a, b, backward=True):
    def closure():
        optimizer.zero_grad()
        w = torch.cat([p.reshape(-1) for p in params])
        loss = 0.5 * w @ a @ w - b @ w
        if backward:
            loss.backward()
        return loss
    return closure


@pytest.mark.parametrize("backward", [True, False], ids=["closure-calls-backward", "closure-returns-loss"])
@pytest.mark.parametrize("mode", ["saddle_free", "plain"])
def test_one_step_solves_a_positive_definite_quadratic(mode, backward):
    a, b = _spd(8)
    params = _params_for()
    optimizer = Newton(params, mode=mode)
    optimizer.step(_quadratic_closure(optimizer, params, a, b, backward))
    torch.testing.assert_close(_flat(params), torch.linalg.solve(a, b), rtol=1e-10, atol=1e-12)
    assert optimizer.state[params[0]] == {"n_iter": 1, "positive_definite": True}


def test_closure_backward_leaves_plain_gradients():
    a, b = _spd(8)
    params = _params_for()
    start = _flat(params)
    optimizer = Newton(params)
    optimizer.step(_quadratic_closure(optimizer, params, a, b))
    grad = torch.cat([p.grad.reshape(-1) for p in params])
    assert all(p.grad.grad_fn is None for p in params)
    torch.testing.assert_close(grad, a @ start - b)  # the gradient at the start, as backward wrote it


def test_backward_is_restored_after_the_step_even_when_the_closure_fails():
    original = torch.autograd.backward
    w = torch.zeros(2, dtype=F64, requires_grad=True)
    optimizer = Newton([w])
    optimizer.step(lambda: (w**2).sum())
    assert torch.autograd.backward is original

    def failing():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        optimizer.step(failing)
    assert torch.autograd.backward is original
    loss = (w**3).sum()
    loss.backward()  # outside a Newton step the graph is freed again, as usual
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_backward_is_never_patched_and_other_threads_keep_default_backward():
    """The graph-keeping backward is scoped to the Newton step's own thread: torch.autograd.backward
    stays the original object, and a backward in another thread during the step frees its graph."""
    original = torch.autograd.backward
    w = torch.zeros(2, dtype=F64, requires_grad=True)
    optimizer = Newton([w])
    seen = {}

    def other_thread() -> None:
        x = torch.ones(3, dtype=F64, requires_grad=True)
        loss = (x**2).sum()
        loss.backward()
        try:
            loss.backward()
            seen["second"] = "allowed"
        except RuntimeError as error:
            seen["second"] = str(error)

    def closure():
        optimizer.zero_grad()
        seen["patched"] = torch.autograd.backward is not original
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        loss = ((w - 1) ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    assert seen["patched"] is False and torch.autograd.backward is original
    assert "second time" in seen["second"]  # the other thread's graph was freed, as without Newton
    torch.testing.assert_close(w.detach(), torch.ones(2, dtype=F64))  # and the Newton step is exact


def test_closure_that_frees_the_graph_gets_a_clear_error():
    w = torch.zeros(2, dtype=F64, requires_grad=True)
    optimizer = Newton([w])

    def closure():
        loss = ((w - 1) ** 2).sum()
        torch.autograd.backward(loss)  # frees the graph; only Tensor.backward is kept
        return loss

    with pytest.raises(ValueError, match="freed the loss's graph"):
        optimizer.step(closure)


def test_lr_and_damping_scale_the_step():
    a, b = _spd(8)
    params = _params_for()
    start = _flat(params)
    optimizer = Newton(params, lr=0.5, damping=0.3)
    optimizer.step(_quadratic_closure(optimizer, params, a, b))
    expected = start - 0.5 * torch.linalg.solve(a + 0.3 * torch.eye(8, dtype=F64), a @ start - b)
    torch.testing.assert_close(_flat(params), expected, rtol=1e-10, atol=1e-12)


def test_hessian_matches_autograd_functional_on_a_non_quadratic():
    gen = torch.Generator().manual_seed(3)
    m = torch.randn(5, 5, generator=gen, dtype=F64)

    def f(w):
        return torch.exp(0.3 * (m @ w)).sum() + (w**4).sum() + torch.cos(w[0] * w[1])

    w0 = torch.randn(5, generator=gen, dtype=F64) * 0.3
    hessian = torch.autograd.functional.hessian(f, w0)
    grad = torch.autograd.functional.jacobian(f, w0)
    assert torch.linalg.eigvalsh(hessian).min() > 0  # so both modes take the plain Newton step
    w = w0.clone().requires_grad_()
    optimizer = Newton([w])
    optimizer.step(lambda: f(w))
    torch.testing.assert_close(w.detach(), w0 - torch.linalg.solve(hessian, grad), rtol=1e-10, atol=1e-12)


def _saddle_step(mode: str, x: float, y: float) -> tuple[list[float], float, float]:
    w = torch.tensor([x, y], dtype=F64, requires_grad=True)
    optimizer = Newton([w], mode=mode)

    def saddle():  # f(x, y) = x^2 - y^2, H = diag(2, -2)
        optimizer.zero_grad()
        loss = w[0] ** 2 - w[1] ** 2
        loss.backward()
        return loss

    before = optimizer.step(saddle).item()
    after = (w[0] ** 2 - w[1] ** 2).item()
    assert optimizer.state[w]["positive_definite"] is False
    return w.detach().tolist(), before, after


def test_plain_newton_jumps_onto_the_saddle():
    point, _, _ = _saddle_step("plain", 0.5, 0.3)
    assert point == pytest.approx([0.0, 0.0], abs=1e-15)


def test_saddle_free_newton_descends_away_from_the_saddle():
    point, before, after = _saddle_step("saddle_free", 0.5, 0.3)
    assert point == pytest.approx([0.0, 0.6], abs=1e-14)  # x solved, y doubled
    assert after < before


def test_saddle_free_step_is_minus_abs_hessian_inverse_times_gradient():
    """Against numpy's eigendecomposition on an indefinite quadratic: d = -V |L|^-1 V^T g."""
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    hessian = q @ np.diag([3.0, 1.0, 0.5, -0.2, -1.0, -4.0]) @ q.T
    start = rng.standard_normal(6)
    w = torch.tensor(start, requires_grad=True)
    h = torch.tensor(hessian)
    optimizer = Newton([w], damping=0.1)
    optimizer.step(lambda: 0.5 * w @ h @ w)
    values, vectors = np.linalg.eigh(hessian)
    expected = start - vectors @ ((vectors.T @ (hessian @ start)) / (np.abs(values) + 0.1))
    np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-10, atol=1e-12)


def test_d2l_x_cos_cx_plain_newton_goes_to_a_maximum_and_lr_fixes_it():
    """D2L 12.3: f(x) = x cos(cx), c = 0.15 pi, x0 = 10, 10 steps: 26.834133 with eta = 1 (where
    f'' < 0, a maximum), 7.269860 with eta = 0.5; the saddle-free step finds a minimum."""
    c = 0.15 * math.pi

    def run(mode: str, lr: float) -> float:
        x = torch.tensor(10.0, dtype=F64, requires_grad=True)
        optimizer = Newton([x], lr=lr, mode=mode)
        for _ in range(10):
            optimizer.step(lambda: x * torch.cos(c * x))
        return x.item()

    def second_derivative(x: float) -> float:
        return -2 * c * math.sin(c * x) - c * c * x * math.cos(c * x)

    assert run("plain", 1.0) == pytest.approx(26.834133, abs=1e-6)
    assert second_derivative(run("plain", 1.0)) < 0
    assert run("plain", 0.5) == pytest.approx(7.269860, abs=1e-6)
    minimum = run("saddle_free", 1.0)
    assert second_derivative(minimum) > 0
    assert math.cos(c * minimum) - c * minimum * math.sin(c * minimum) == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("mode", ["saddle_free", "plain"])
def test_without_curvature_newton_takes_a_gradient_step(mode):
    w = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    optimizer = Newton([w], lr=0.5, mode=mode)
    optimizer.step(lambda: 3 * w[0] - w[1])  # linear: H = 0, g = (3, -1)
    assert w.detach().tolist() == [1.0 - 1.5, 2.0 + 0.5]


@pytest.mark.parametrize("mode", ["saddle_free", "plain"])
def test_at_an_inflection_point_newton_moves_downhill(mode):
    """f(x) = x cos(pi x) at x = 0: f'(0) = 1, f''(0) = 0; the step is the gradient step -lr * f'."""
    x = torch.tensor(0.0, dtype=F64, requires_grad=True)
    optimizer = Newton([x], mode=mode)
    optimizer.step(lambda: x * torch.cos(torch.pi * x))
    assert x.item() == pytest.approx(-1.0, abs=1e-12)


@pytest.mark.parametrize("mode", ["saddle_free", "plain"])
def test_mixed_curvature_and_flat_directions(mode):
    """f = 2 x^2 + y (H = diag(4, 0)): x solved exactly, y gets the gradient step -lr * 1."""
    w = torch.tensor([0.7, 0.2], dtype=F64, requires_grad=True)
    optimizer = Newton([w], mode=mode)
    optimizer.step(lambda: 2 * w[0] ** 2 + w[1])
    assert w.detach().tolist() == pytest.approx([0.0, -0.8], abs=1e-14)


def test_state_dict_round_trip():
    a, b = _spd(8)
    params = _params_for()
    optimizer = Newton(params, lr=0.7)
    optimizer.step(_quadratic_closure(optimizer, params, a, b))
    other = Newton(_params_for(), lr=0.1)
    other.load_state_dict(optimizer.state_dict())
    assert other.param_groups[0]["lr"] == 0.7
    assert other.state_dict()["state"] == {0: {"n_iter": 1, "positive_definite": True}}


def test_registry_creates_newton():
    w = torch.zeros(2, dtype=F64, requires_grad=True)
    optimizer = create("newton:damping=0.5,mode=plain", [w])
    assert isinstance(optimizer, Newton)
    assert optimizer.defaults["damping"] == 0.5 and optimizer.defaults["mode"] == "plain"


def test_missing_closure_is_refused():
    optimizer = Newton([torch.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match=r"Newton.step\(\) requires a closure"):
        optimizer.step()


def test_too_many_parameters_are_refused():
    with pytest.raises(ValueError, match=r"Newton: 2001 parameters exceed max_params=2000"):
        Newton([torch.zeros(2000, requires_grad=True), torch.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError, match=r"Newton: 11 parameters exceed max_params=10"):
        Newton([torch.zeros(11, requires_grad=True)], max_params=10)


@pytest.mark.parametrize("kwargs,message", [
    (dict(lr=-1.0), r"lr=-1.0 must be >= 0"),
    (dict(lr=float("nan")), r"lr=nan must be a finite number"),
    (dict(damping=-0.1), r"damping=-0.1 must be >= 0"),
    (dict(mode="exact"), r"mode='exact' must be one of: saddle_free, plain"),
    (dict(max_params=0), r"max_params=0 must be a positive integer"),
])
def test_bad_hyperparameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Newton([torch.zeros(2, requires_grad=True)], **kwargs)


def test_closure_without_graph_is_refused():
    w = torch.zeros(2, requires_grad=True)
    optimizer = Newton([w])
    with pytest.raises(ValueError, match="closure must return the loss as a tensor computed from the parameters"):
        optimizer.step(lambda: torch.tensor(1.0))


@pytest.mark.parametrize("mode", ["saddle_free", "plain"])
def test_an_unused_parameter_has_no_curvature_and_no_gradient_and_stays(mode):
    a, b = _spd(3)
    w = torch.zeros(3, dtype=F64, requires_grad=True)
    unused = torch.ones(2, dtype=F64, requires_grad=True)
    optimizer = Newton([w, unused], mode=mode)
    optimizer.step(lambda: 0.5 * w @ a @ w - b @ w)
    torch.testing.assert_close(w.detach(), torch.linalg.solve(a, b), rtol=1e-10, atol=1e-12)
    assert unused.detach().tolist() == [1.0, 1.0]
    assert optimizer.state[w]["positive_definite"] is False


def test_row_by_row_hessian_when_vmap_fails(monkeypatch):
    """The fallback for ops without a batching rule gives the same step as the batched path."""
    a, b = _spd(6)
    original_grad = torch.autograd.grad

    def grad_without_batching(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("no batching rule")
        return original_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", grad_without_batching)
    params = [torch.zeros(2, dtype=F64, requires_grad=True), torch.zeros(4, dtype=F64, requires_grad=True)]
    optimizer = Newton(params)
    optimizer.step(_quadratic_closure(optimizer, params, a, b))
    torch.testing.assert_close(_flat(params), torch.linalg.solve(a, b), rtol=1e-10, atol=1e-12)


def test_float32_parameters():
    a, b = _spd(5)
    w = torch.zeros(5, dtype=torch.float32, requires_grad=True)
    a32, b32 = a.float(), b.float()
    optimizer = Newton([w])
    optimizer.step(lambda: 0.5 * w @ a32 @ w - b32 @ w)
    torch.testing.assert_close(w.detach(), torch.linalg.solve(a, b).float(), rtol=1e-4, atol=1e-5)
