"""Gathering features across processes, so contrastive losses see every process's negatives.

Each process encodes its own shard of the batch. Contrastive losses need the whole batch: a
bigger pool of negatives is a better loss (notebook 04). `all_gather_with_grad` collects every
shard, and its backward pass sends each shard's gradient back to the process that owns it, so
N processes train exactly like one process on the concatenated batch. Without an initialised
process group every helper here acts as the world of a single process.
"""
from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True inside an initialised torch.distributed process group."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


class _AllGather(torch.autograd.Function):
    """Concatenate equal shards along dim 0; the gradient of each shard is summed over every
    process (each process's loss used it) and handed back to the shard's owner."""

    @staticmethod
    def forward(ctx, x):
        shards = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(shards, x.contiguous())
        return torch.cat(shards)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Every process's `x`, concatenated in rank order along dim 0, differentiable with respect
    to the local `x`. Shards must have the same shape on every process. One process: `x` itself."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not is_distributed() or world_size() == 1:
        return x
    sizes = [None] * world_size()
    dist.all_gather_object(sizes, tuple(x.shape))
    if len(set(sizes)) != 1:
        raise ValueError(f"all_gather_with_grad needs equal shards on every process, got shapes {sizes}")
    return _AllGather.apply(x)


def local_rows(n_local: int) -> torch.Tensor:
    """Indices of this process's rows inside a gathered batch of equal shards."""
    return torch.arange(n_local) + rank() * n_local
