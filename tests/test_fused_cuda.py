"""CUDA parity of the flat path in real loops (run by benchmarks/gpu_check.sh on a GPU machine).

Without a CUDA device these tests do not run (CI has none); the CPU twins are tests/test_fused_loops.py.
"""

import pytest
import torch

import optimlab.optim as oo
from optimlab.optim import flat

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (benchmarks/gpu_check.sh)")

STEPS = 50
ALGORITHMS = [("Adam", dict(lr=0.01)), ("AdamW", dict(lr=0.01, weight_decay=0.1)),
              ("SGD", dict(lr=0.05, momentum=0.9))]


@pytest.fixture(autouse=True)
def both_kinds_of_segment(monkeypatch):
    monkeypatch.setattr(flat, "BIG_NUMEL", 50)  # the weights in place, the biases gathered


def _model(dtype):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)).to("cuda", dtype)


def _batch(step, dtype):
    gen = torch.Generator().manual_seed(100 + step)
    x, y = torch.randn(16, 4, generator=gen, dtype=dtype), torch.randn(16, 2, generator=gen, dtype=dtype)
    return x.cuda(), y.cuda()


def _run(make, loop, dtype):
    model = _model(dtype)
    opt = make(model)
    scaler = torch.amp.GradScaler("cuda", init_scale=256.0)
    for step in range(STEPS):
        opt.zero_grad(set_to_none=loop != "zeros")
        micro = 3 if loop == "accumulate" else 1
        for index in range(micro):
            x, y = _batch(1000 * index + step, dtype)
            if loop == "autocast":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = model(x)
                loss = torch.nn.functional.mse_loss(out.float(), y)
            else:
                loss = torch.nn.functional.mse_loss(model(x), y) / micro
            if loop == "scaler":
                scaler.scale(loss * (float("inf") if step == 7 else 1.0)).backward()
            else:
                loss.backward()
        if loop == "scaler":
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).cpu()


@pytest.mark.parametrize("loop", ["plain", "zeros", "accumulate", "scaler", "autocast"])
@pytest.mark.parametrize("fused", [None, True])
@pytest.mark.parametrize("name,kwargs", ALGORITHMS, ids=[name for name, _ in ALGORITHMS])
def test_cuda_loop_matches_torch(name, kwargs, fused, loop):
    dtype = torch.float64 if fused is None and loop != "autocast" else torch.float32
    ours = _run(lambda m: getattr(oo, name)(m.parameters(), **kwargs, fused=fused), loop, dtype)
    theirs = _run(lambda m: getattr(torch.optim, name)(m.parameters(), **kwargs), loop, dtype)
    rtol, atol = (1e-10, 1e-12) if dtype == torch.float64 else (1e-5, 1e-6)
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=atol)


def test_cuda_second_optimizer_shares_and_held_tensor_follows():
    model = _model(torch.float32)
    held = model[0].bias.detach()
    adam = oo.Adam(model.parameters(), lr=0.01)
    sgd = oo.SGD(model.parameters(), lr=0.05)
    for step in range(5):
        for opt in (adam, sgd):
            opt.zero_grad()
            x, y = _batch(step, torch.float32)
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
    assert torch.equal(held, model[0].bias.detach())
    assert not any(group.per_tensor for opt in (adam, sgd) for group in opt._flat_groups.values())
