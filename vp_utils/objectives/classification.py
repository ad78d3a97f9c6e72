"""Supervised classification (notebooks 01 and 02): cross-entropy against a label per image."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batching import step_scenes
from ..data.shapes import ShapesWorld, standardise


def classification_loss(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    """Cross-entropy and accuracy for an (images, labels) batch."""
    images, labels = batch
    logits = model(images)
    return {"loss": F.cross_entropy(logits, labels), "accuracy": (logits.argmax(1) == labels).float().mean()}


def shape_batch(world: ShapesWorld, seed: int, step: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Global batch `step`: standardised scenes and the index of each one's shape."""
    scenes = step_scenes(world, step, size)
    return standardise(scenes.torch_images()), torch.from_numpy(scenes.targets("shape")).long()
