"""Negatives gathered across processes: 2 CPU processes (gloo) must give the loss and the
gradients of one process on the concatenated batch."""
import os
import socket
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vp_utils.objectives import distributed
from vp_utils.objectives import clip_loss, nt_xent

WORLD, SHARD, DIM_IN, DIM = 2, 4, 6, 5
TIMEOUT_S = 60


def _problem():
    """A linear encoder and a batch of paired inputs, identical in every process."""
    torch.manual_seed(0)
    return torch.nn.Linear(DIM_IN, DIM), torch.randn(WORLD * SHARD, DIM_IN), torch.randn(WORLD * SHARD, DIM_IN)


def _losses(model, a, b):
    return {"nt_xent": lambda: nt_xent(model(a), model(b), temperature=0.3),
            "clip": lambda: clip_loss(model(a), model(b), temperature=0.3)}


def _run(model, a, b):
    """loss and parameter gradients of each objective; gradients averaged over processes, as DDP does."""
    out = {}
    for name, loss_fn in _losses(model, a, b).items():
        model.zero_grad()
        loss = loss_fn()
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters()]
        if distributed.is_distributed():
            for g in grads:
                dist.all_reduce(g)
                g /= distributed.world_size()
            dist.all_reduce(loss := loss.detach().clone())
            loss /= distributed.world_size()
        out[name] = (loss.detach(), grads)
    return out


def _worker(rank, port, result_path):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=timedelta(seconds=30))
    try:
        model, a, b = _problem()
        shard = slice(rank * SHARD, (rank + 1) * SHARD)
        assert (distributed.rank(), distributed.world_size()) == (rank, WORLD)
        out = _run(model, a[shard], b[shard])
        if rank == 0:
            torch.save(out, result_path)
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_single_process_helpers_need_no_process_group():
    x = torch.randn(3, 4, requires_grad=True)
    assert not distributed.is_distributed()
    assert (distributed.world_size(), distributed.rank()) == (1, 0)
    assert distributed.all_gather_with_grad(x) is x
    assert distributed.local_rows(3).tolist() == [0, 1, 2]
    with pytest.raises(TypeError, match="torch.Tensor"):
        distributed.all_gather_with_grad([1, 2])


def test_two_gloo_processes_match_one_process_on_the_whole_batch(tmp_path):
    result_path = tmp_path / "rank0.pt"
    context = mp.start_processes(_worker, args=(_free_port(), str(result_path)), nprocs=WORLD, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not context.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORLD} processes did not finish within {TIMEOUT_S} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    gathered = torch.load(result_path)
    expected = _run(*_problem())
    for name, (loss, grads) in expected.items():
        got_loss, got_grads = gathered[name]
        assert torch.allclose(got_loss, loss, atol=1e-6), f"{name}: loss {got_loss} vs {loss}"
        for got, want in zip(got_grads, grads):
            assert torch.allclose(got, want, atol=1e-6), f"{name}: gradients differ by {(got - want).abs().max()}"
    # the gradients are not trivially zero, so the comparison means something
    assert all(g.abs().max() > 1e-3 for g in expected["nt_xent"][1])
