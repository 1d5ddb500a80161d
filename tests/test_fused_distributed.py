"""The flat path under DistributedDataParallel and ZeroRedundancyOptimizer (gloo, 2 CPU processes).

Each process trains on its half of every batch; DDP averages the gradients, so the parameters
must equal a single-process run on the whole (concatenated) batch.
"""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.optim import ZeroRedundancyOptimizer
from torch.nn.parallel import DistributedDataParallel

import optimlab.optim as oo

STEPS, BATCH = 6, 8


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()


def _batch(step):
    gen = torch.Generator().manual_seed(step)
    return torch.randn(BATCH, 4, generator=gen, dtype=torch.float64), torch.randn(BATCH, 1, generator=gen, dtype=torch.float64)


def _train(model, opt, rank=0, world=1):
    for step in range(STEPS):
        x, y = _batch(step)
        share = BATCH // world
        x, y = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        for name in ("ddp", "zero"):
            model = DistributedDataParallel(_model())
            if name == "ddp":
                opt = oo.Adam(model.parameters(), lr=0.01, fused=None)
            else:
                opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=oo.Adam, lr=0.01, fused=None)
            local = opt if name == "ddp" else opt.optim
            assert all(flat.segments and not flat.per_tensor for flat in local._flat_groups.values())
            _train(model, opt, rank, world)
            if name == "zero":
                opt.consolidate_state_dict(to=0)
            if rank == 0:
                torch.save(_flat(model.module), os.path.join(out_dir, f"{name}.pt"))
                if name == "zero":
                    torch.save(opt.state_dict(), os.path.join(out_dir, "zero_state.pt"))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(180)
def test_ddp_and_zero_match_single_process_on_the_whole_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    model = _model()
    reference_opt = torch.optim.Adam(model.parameters(), lr=0.01)
    _train(model, reference_opt)
    expected = _flat(model)
    for name in ("ddp", "zero"):
        torch.testing.assert_close(torch.load(tmp_path / f"{name}.pt"), expected, rtol=1e-10, atol=1e-12)
    zero_state = torch.load(tmp_path / "zero_state.pt")
    reference_state = reference_opt.state_dict()["state"]
    assert len(zero_state["state"]) == len(reference_state)
    for index, state in reference_state.items():
        torch.testing.assert_close(zero_state["state"][index]["exp_avg"], state["exp_avg"], rtol=1e-10, atol=1e-12)
