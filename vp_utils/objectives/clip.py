"""CLIP's objective (Radford et al. 2021): each image picks its caption out of the batch's captions,
and each caption its image."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batching import step_scenes
from ..data.captions import caption, caption_vocabulary
from ..data.shapes import ShapesWorld
from ..lab.checks import check_positive
from .contrastive import check_embedding_pair
from .distributed import all_gather_with_grad, local_rows


def clip_loss(image_features: torch.Tensor, text_features: torch.Tensor, temperature: float | torch.Tensor = 0.07):
    """CLIP's symmetric InfoNCE (Radford et al. 2021): images pick their caption among all
    captions, captions pick their image among all images; the mean of the two cross-entropies.
    `temperature` may be a learnable tensor (CLIP learns log(1 / temperature))."""
    check_embedding_pair(image_features, text_features, "image_features,text_features")
    if len(image_features) != len(text_features):
        raise ValueError(f"need one caption per image, got {len(image_features)} images and {len(text_features)} captions")
    if not isinstance(temperature, torch.Tensor):
        check_positive(temperature, "temperature")
    images, texts = F.normalize(image_features, dim=1), F.normalize(text_features, dim=1)
    rows = local_rows(len(images)).to(images.device)
    image_logits = images @ all_gather_with_grad(texts).T / temperature
    text_logits = texts @ all_gather_with_grad(images).T / temperature
    return (F.cross_entropy(image_logits, rows) + F.cross_entropy(text_logits, rows)) / 2


def clip_objective(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    """The training step's loss on (images, token ids) batches: the symmetric InfoNCE at the
    model's own learned temperature 1 / scale, with the scale logged beside it."""
    image_features, text_features, scale = model(*batch)
    return {"loss": clip_loss(image_features, text_features, temperature=1 / scale), "logit_scale": scale.detach()}


def clip_batch(world: ShapesWorld, seed: int, step: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Global batch `step`: the images and one caption of each, as token ids."""
    scenes = step_scenes(world, step, size)
    return scenes.torch_images(), caption_vocabulary()([caption(scenes, i, seed=seed) for i in range(len(scenes))])
