"""The flat path (fused=None eager, fused=True compiled) against the per-tensor path and torch.optim."""

import os
import platform
from pathlib import Path

import pytest
import torch

import optimlab.optim as oo

CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.01, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True, maximize=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, betas=(0.8, 0.99))),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
]
IDS = [f"{name}-{'-'.join(kwargs)}" for name, kwargs in CASES]


def _problem(dtype):
    gen = torch.Generator().manual_seed(0)
    shapes = [(), (3,), (4, 5), (2, 3, 2), (7,)]
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    targets = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    return params, targets


def run(cls, kwargs, *, dtype=torch.float64, steps=100, fused="torch"):
    """Two param groups (the second with half the lr), a smooth quartic loss, `steps` steps."""
    params, targets = _problem(dtype)
    params = [p.clone().requires_grad_() for p in params]
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": kwargs["lr"] / 2}]
    extra = {} if fused == "torch" else {"fused": fused}
    opt = cls(groups, **kwargs, **extra)
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(((p - t) ** 2).sum() + 0.1 * ((p - t) ** 4).sum() for p, t in zip(params, targets))
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in params], opt


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_flat_float64_matches_per_tensor_and_torch(name, kwargs):
    flat, opt = run(getattr(oo, name), kwargs, fused=None)
    reference, _ = run(getattr(oo, name), kwargs, fused=False)
    torch_result, _ = run(getattr(torch.optim, name), kwargs)
    assert opt._flat_groups and all(f.segments for f in opt._flat_groups.values())  # really flat
    for a, b, c in zip(flat, reference, torch_result):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(a, c, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_flat_float32_matches_per_tensor(name, kwargs):
    flat, _ = run(getattr(oo, name), kwargs, dtype=torch.float32, fused=None)
    reference, _ = run(getattr(oo, name), kwargs, dtype=torch.float32, fused=False)
    for a, b in zip(flat, reference):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


FAST_COMPILED = [CASES[1], CASES[7]]  # SGD+momentum, Adam+amsgrad: the rest are marked slow


@pytest.mark.parametrize(
    "name,kwargs",
    [pytest.param(*case, marks=() if case in FAST_COMPILED else pytest.mark.slow) for case in CASES], ids=IDS,
)
def test_compiled_float32_matches_per_tensor_and_torch(name, kwargs):
    compiled, _ = run(getattr(oo, name), kwargs, dtype=torch.float32, fused=True)
    reference, _ = run(getattr(oo, name), kwargs, dtype=torch.float32, fused=False)
    torch_result, _ = run(getattr(torch.optim, name), kwargs, dtype=torch.float32)
    for a, b, c in zip(compiled, reference, torch_result):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-6)


def test_compiled_rule_does_not_recompile_when_lr_changes():
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    w = torch.nn.Parameter(torch.randn(50))
    opt = oo.Adam([w], lr=0.1, fused=True)
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    for _ in range(6):
        opt.zero_grad()
        (w**2).sum().backward()
        opt.step()
        schedule.step()
    assert counters["stats"]["unique_graphs"] == 1


def _train_mlp(fused, steps=40):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    opt = oo.Adam(model.parameters(), lr=1e-2, fused=fused)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return torch.tensor(losses)


def test_model_loss_curve_same_fused_and_per_tensor():
    per_tensor, eager_flat, compiled = _train_mlp(False), _train_mlp(None), _train_mlp(True)
    assert per_tensor[-1] < 0.7 * per_tensor[0]  # it trains at all
    torch.testing.assert_close(eager_flat, per_tensor, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(compiled, per_tensor, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_eager_chunks_across_parameter_boundaries_match_torch(name, kwargs, monkeypatch):
    from optimlab.optim import flat

    monkeypatch.setattr(flat, "EAGER_CHUNK", 7)  # chunks that cut through parameters
    chunked, _ = run(getattr(oo, name), kwargs, fused=None, steps=30)
    torch_result, _ = run(getattr(torch.optim, name), kwargs, steps=30)
    for a, b in zip(chunked, torch_result):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_eager_chunk_is_a_sixteenth_of_the_last_level_cache_per_buffer(tmp_path, monkeypatch):
    from optimlab.optim import flat

    for index, size in enumerate(["48K", "1024K", "32768K\n"]):
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "size").write_text(size)
    assert flat.last_level_cache_bytes(str(tmp_path)) == 32 << 20
    assert flat.last_level_cache_bytes(str(tmp_path / "none")) is None
    monkeypatch.setattr(flat, "_CACHE_BYTES", 32 << 20)
    assert [flat.eager_chunk(size) for size in (4, 8, 2)] == [1 << 19, 1 << 18, 1 << 20]  # 2 MiB per buffer
    monkeypatch.setattr(flat, "_CACHE_BYTES", 3 << 20)  # 3 MiB / 16 = 192 KiB: the power of two below
    assert flat.eager_chunk(4) == 1 << 15
    monkeypatch.setattr(flat, "_CACHE_BYTES", None)  # unknown: 1 MiB per buffer
    assert flat.eager_chunk(4) == 1 << 18


HEAP_CASE = """
import resource, statistics, torch
import optimlab.optim as oo
n, size = 4000, 2500
x = torch.randn(size) * 1e-3
def build():
    ps = [torch.nn.Parameter(torch.randn(size)) for _ in range(n)]
    return ps, oo.AdamW(ps, lr=1e-3, weight_decay=0.01)
def faults(ps, opt, steps=4):
    counts = []
    for _ in range(steps):
        opt.zero_grad()
        torch.stack([torch.dot(p, x) for p in ps]).sum().backward()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        opt.step()
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return statistics.median(counts[1:])
first = build()
faults(*first)
second = build()  # the heap layout in which each eager chunk's temporaries were given back and faulted in again
print(faults(*second), faults(*first))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc thresholds")
def test_eager_steps_do_not_fault_their_temporaries_in_again(tmp_path):
    """Two AdamW optimizers on 4,000 x 2,500: without flat.prepare_heap, each step of either took 18,848 page faults
    here (glibc gave the chunks' freed temporaries back to the system and faulted them in again)."""
    import subprocess
    import sys

    script = tmp_path / "heap_case.py"
    script.write_text(HEAP_CASE)
    root = str(Path(__file__).resolve().parents[1])
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": root})
    assert result.returncode == 0, result.stderr[-2000:]
    faults_per_step = [float(v) for v in result.stdout.split()]
    assert max(faults_per_step) < 500, faults_per_step  # 10M parameters: a re-faulted 2 MiB chunk is 512 faults


def _mixed_layout_run(cls, kwargs, *, skip_every=0, steps=12, **extra):
    """Two in-place parameters of different sizes and three gathered ones in one group (COMPILED_BIG_NUMEL
    lowered to 40 elements), float32; with `skip_every`, parameter 1 gets no gradient every that many steps."""
    gen = torch.Generator().manual_seed(3)
    shapes = [(50,), (8, 9), (3,), (4, 2), (6,)]
    params = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
    targets = [torch.randn(s, generator=gen) for s in shapes]
    opt = cls(params, **kwargs, **extra)
    for step in range(steps):
        opt.zero_grad()
        used = [i for i in range(len(params)) if not (skip_every and i == 1 and step % skip_every == 0)]
        sum((((params[i] - targets[i]) ** 2).sum() for i in used), torch.zeros(())).backward()
        opt.step()
    return [p.detach() for p in params]


@pytest.mark.parametrize("name,kwargs", [CASES[1], CASES[7]], ids=[IDS[1], IDS[7]])
@pytest.mark.parametrize("skip_every", [0, 3])
def test_one_compiled_call_over_in_place_and_gathered_segments_matches_torch(name, kwargs, skip_every, monkeypatch):
    from torch._dynamo.utils import counters

    from optimlab.optim import flat

    monkeypatch.setattr(flat, "COMPILED_BIG_NUMEL", 40)
    torch._dynamo.reset()
    counters.clear()
    compiled = _mixed_layout_run(getattr(oo, name), kwargs, skip_every=skip_every, fused=True)
    reference = _mixed_layout_run(getattr(torch.optim, name), kwargs, skip_every=skip_every)
    for a, b in zip(compiled, reference):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # one graph for the whole group; a step without parameter 1's gradient is a second layout
    assert counters["stats"]["unique_graphs"] == (1 if skip_every == 0 else 2)


COMPILER_MISSING = """
import warnings
import torch
import torch._inductor.config
import optimlab.optim as oo

torch._inductor.config.cpp.cxx = (None, "/nonexistent/g++")  # a machine without a C++ compiler
torch._inductor.config.fx_graph_cache = False

def run(cls, **kwargs):
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(4093, generator=gen)), torch.nn.Parameter(torch.randn(300001, generator=gen))]
    opt = cls(params, lr=0.01, **kwargs)
    for _ in range(5):
        opt.zero_grad()
        sum((p ** 2).sum() for p in params).backward()
        opt.step()
    return params, opt

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ours, opt = run(oo.Adam, fused=True)
messages = [str(w.message) for w in caught if "could not compile" in str(w.message)]
assert len(messages) == 1 and messages[0].startswith("Adam: fused=True"), messages
reference, _ = run(torch.optim.Adam)
for a, b in zip(ours, reference):
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
assert [float(opt.state[p]["step"]) for p in ours] == [5.0, 5.0]
print("ok")
"""


def test_fused_true_without_a_compiler_warns_once_and_runs_the_eager_rule(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}  # nothing compiled before
    done = subprocess.run([sys.executable, "-c", COMPILER_MISSING], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
