"""SimCLR's training step (Chen et al. 2020): two augmented views of every image, NT-Xent between them."""
from __future__ import annotations

import torch
from torch import nn

from ..data.augment import SHAPES_WORLD_VIEWS, simclr_augment, two_views
from ..data.batching import step_images, step_seed
from ..data.shapes import ShapesWorld
from .contrastive import nt_xent


def simclr_batch(world: ShapesWorld, seed: int, step: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two augmented views of each scene of global batch `step`. torchvision's augmentations draw
    from torch's global generator, so it is seeded from (seed, step) here and restored afterwards."""
    images = step_images(world, step, size)
    with torch.random.fork_rng():
        torch.manual_seed(step_seed(seed, step))
        return two_views(images, simclr_augment(world.image_size, **SHAPES_WORLD_VIEWS))


def simclr_objective(model: nn.Module, batch, temperature: float = 0.2) -> torch.Tensor:
    """NT-Xent between the two views' embeddings; one forward pass for both views, as
    DistributedDataParallel expects one per step."""
    first, second = batch
    z = model(torch.cat([first, second]))
    return nt_xent(*z.chunk(2), temperature=temperature)
