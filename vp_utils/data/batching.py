"""How batches are drawn: endless shuffled minibatches of tensors, and a recipe's global batches
as pure functions of (seed, step).

A recipe's batch number `step` takes consecutive scenes of its world and draws every random
choice (crops, masks, captions) from a generator seeded by (seed, step) alone. So N processes,
each taking its slice of the same global batch, compute what one process would, and a resumed run
continues exactly where its checkpoint left off.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..lab.checks import check_non_empty, check_positive
from .shapes import Scenes, ShapesWorld


def batches(*tensors: torch.Tensor, batch_size: int, seed: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless shuffled minibatches of aligned tensors (a new permutation every epoch)."""
    n = len(check_non_empty(tensors[0], "tensors[0]"))
    if any(len(t) != n for t in tensors):
        raise ValueError(f"tensors must be equally long, got lengths {[len(t) for t in tensors]}")
    check_positive(batch_size, "batch_size")
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, max(n - batch_size, 0) + 1, batch_size):  # drop the ragged last batch
            pick = order[start:start + batch_size]
            yield tuple(t[pick] for t in tensors)


def scene_indices(step: int, size: int, world_length: int) -> np.ndarray:
    """The scenes of global batch `step`: consecutive indices, wrapping around the world."""
    return (np.arange(size) + step * size) % world_length


def step_seed(seed: int, step: int) -> int:
    """The seed of global batch `step`'s random draws: one per (seed, step), the same on every process."""
    return seed * 1_000_003 + step


def step_generator(seed: int, step: int) -> torch.Generator:
    """A generator of global batch `step`'s random draws."""
    return torch.Generator().manual_seed(step_seed(seed, step))


def step_scenes(world: ShapesWorld, step: int, size: int) -> Scenes:
    """The rendered scenes of global batch `step`."""
    return world.render(scene_indices(step, size, len(world)))


def step_images(world: ShapesWorld, step: int, size: int) -> torch.Tensor:
    """The images of global batch `step`, (size, 3, H, W) in [0, 1]."""
    return step_scenes(world, step, size).torch_images()


def patch_count(world: ShapesWorld, patch: int = 4) -> int:
    """Patch tokens per image of this world for a ViT of `patch`-pixel patches."""
    return (world.image_size // patch) ** 2
