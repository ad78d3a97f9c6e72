"""The long training recipes, in the form the command-line trainer runs them.

A recipe says how to build its model, how to make the inputs of global batch number `step`
(data *and* every random draw, such as MAE's masking noise), and how to score a shard of
them. Because a batch is a pure function of (seed, step), a run on N processes, each taking
its slice of the same global batch, computes what one process would, and a resumed run
continues exactly where the checkpoint left off.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .checks import check_choice
from .data import ShapesWorld
from .models.mae import MaskedAutoencoder
from .models.vit import vit


@dataclass(frozen=True)
class Recipe:
    """How one method trains: model, global batches, loss and its usual optimiser settings."""
    build: Callable[[], nn.Module]
    batch: Callable[[ShapesWorld, int, int, int], tuple[torch.Tensor, ...]]  # (world, seed, step, size)
    loss: Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor]
    world: dict = field(default_factory=dict)
    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)

    def make_world(self, seed: int, image_size: int = 32) -> ShapesWorld:
        return ShapesWorld(image_size=image_size, seed=seed, **self.world)


def scene_indices(step: int, size: int, world_length: int) -> np.ndarray:
    """The scenes of global batch `step`: consecutive indices, wrapping around the world."""
    return (np.arange(size) + step * size) % world_length


def step_generator(seed: int, step: int) -> torch.Generator:
    """One random stream per (seed, step), the same on every process."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def _mae_model() -> MaskedAutoencoder:
    return MaskedAutoencoder(vit("vit_micro", num_classes=0), decoder_dim=64, decoder_depth=2, decoder_heads=4)


def _mae_batch(world: ShapesWorld, seed: int, step: int, size: int):
    images = world.render(scene_indices(step, size, len(world))).torch_images()
    tokens = (world.image_size // 4) ** 2  # vit_micro's 4-pixel patches
    return images, torch.rand(size, tokens, generator=step_generator(seed, step))


def _mae_loss(model: nn.Module, shard) -> torch.Tensor:
    images, noise = shard
    return model(images, noise=noise)[0]


RECIPES = {
    "mae": Recipe(build=_mae_model, batch=_mae_batch, loss=_mae_loss, lr=1.5e-3,
                  world=dict(background="plain", objects=(1, 3), length=50_000)),
}


def get_recipe(name: str) -> Recipe:
    check_choice(name, RECIPES, "recipe")
    return RECIPES[name]
