"""The flat path under DistributedDataParallel and ZeroRedundancyOptimizer (gloo, 2 CPU processes).

Each process trains on its half of every batch; DDP averages the gradients, so the parameters
must equal a single-process run on the whole (concatenated) batch. ``BIG_NUMEL`` is lowered so
that the first weight is updated in place and the rest are gathered (gradients through the hook).
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
from optimlab.optim import flat

STEPS, BATCH = 50, 8
LOOPS = ("ddp", "ddp-zeros", "ddp-accumulate", "ddp-bucket-view", "zero")


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()


def _batch(step):
    gen = torch.Generator().manual_seed(step)
    return torch.randn(BATCH, 4, generator=gen, dtype=torch.float64), torch.randn(BATCH, 1, generator=gen, dtype=torch.float64)


def _train(model, opt, rank=0, world=1, loop="ddp"):
    for step in range(STEPS):
        x, y = _batch(step)
        share = BATCH // world
        x, y = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
        opt.zero_grad(set_to_none=loop != "ddp-zeros")
        if loop == "ddp-accumulate":  # two micro-batches, gradients synchronized on the second only
            half = share // 2
            with model.no_sync():
                (torch.nn.functional.mse_loss(model(x[:half]), y[:half]) / 2).backward()
            (torch.nn.functional.mse_loss(model(x[half:]), y[half:]) / 2).backward()
        else:
            torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    flat.BIG_NUMEL = 16  # the 8 x 4 weight in place, the rest gathered
    try:
        for name in LOOPS:
            model = DistributedDataParallel(_model(), gradient_as_bucket_view=name == "ddp-bucket-view")
            if name != "zero":
                opt = oo.Adam(model.parameters(), lr=0.01, fused=None)
            else:
                opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=oo.Adam, lr=0.01, fused=None)
            local = opt if name != "zero" else opt.optim
            assert all(group.segments and not group.per_tensor for group in local._flat_groups.values())
            segments = [segment for group in local._flat_groups.values() for segment in group.segments]
            if name != "zero":  # ZeRO gives each rank a shard of the parameters
                assert {segment.in_place for segment in segments} == {True, False}
            _train(model, opt, rank, world, name)
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
    for name in LOOPS:
        torch.testing.assert_close(torch.load(tmp_path / f"{name}.pt"), expected, rtol=1e-10, atol=1e-12, msg=name)
    zero_state = torch.load(tmp_path / "zero_state.pt")
    reference_state = reference_opt.state_dict()["state"]
    assert len(zero_state["state"]) == len(reference_state)
    for index, state in reference_state.items():
        torch.testing.assert_close(zero_state["state"][index]["exp_avg"], state["exp_avg"], rtol=1e-10, atol=1e-12)
