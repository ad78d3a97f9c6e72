"""Supervised classification: cross-entropy against a label per image (notebooks 01 and 02), and
yes/no labels for what a scene holds (notebook 06's supervised reference)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.batching import step_scenes
from ..data.shapes import COLOURS, SHAPES, Scenes, ShapesWorld, standardise


def classification_loss(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    """Cross-entropy and accuracy for an (images, labels) batch."""
    images, labels = batch
    logits = model(images)
    return {"loss": F.cross_entropy(logits, labels), "accuracy": (logits.argmax(1) == labels).float().mean()}


def shape_batch(world: ShapesWorld, seed: int, step: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Global batch `step`: standardised scenes and the index of each one's shape."""
    scenes = step_scenes(world, step, size)
    return standardise(scenes.torch_images()), torch.from_numpy(scenes.targets("shape")).long()


def scene_contents(scenes: Scenes) -> torch.Tensor:
    """Multi-hot labels (n, 5 shapes + 6 colours): which shapes and which colours each scene holds.
    Every object counts, so a model must look at all of them, as DINO's features must."""
    labels = np.zeros((len(scenes), len(SHAPES) + len(COLOURS)), np.float32)
    rows, slots = np.nonzero(scenes.shape >= 0)
    labels[rows, scenes.shape[rows, slots]] = 1
    labels[rows, len(SHAPES) + scenes.colour[rows, slots]] = 1
    return torch.from_numpy(labels)


def contents_batch(world: ShapesWorld, seed: int, step: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Global batch `step`: standardised scenes and their `scene_contents`."""
    scenes = step_scenes(world, step, size)
    return standardise(scenes.torch_images()), scene_contents(scenes)


def multilabel_loss(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    """One yes/no cross-entropy per label, and the share of labels right, for an (images, multi-hot) batch."""
    images, targets = batch
    logits = model(images)
    return {"loss": F.binary_cross_entropy_with_logits(logits, targets),
            "label accuracy": ((logits > 0) == (targets > 0)).float().mean()}
