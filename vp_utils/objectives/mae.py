"""MAE's objective (He et al. 2021): predict the pixels of the hidden patches, scored on those alone."""
from __future__ import annotations

import torch

from ..data.batching import patch_count, step_generator, step_images
from ..data.shapes import ShapesWorld
from ..models.mae import MaskedAutoencoder
from ..models.vit import patchify


def patch_targets(images: torch.Tensor, patch: int, normalize: bool = False, eps: float = 1e-6) -> torch.Tensor:
    """What the decoder predicts, (B, N, patch*patch*C): each patch's pixels, or with `normalize`
    the pixels standardised per patch (MAE's norm_pix_loss): the target is then the patch's
    texture and edges, not its brightness."""
    target = patchify(images, patch)
    if normalize:
        mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + eps).sqrt()
    return target


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error per patch, averaged over the hidden patches only (mask = 1): copying
    the visible patches back would teach nothing."""
    if pred.shape != target.shape or mask.shape != pred.shape[:2]:
        raise ValueError(f"pred {tuple(pred.shape)}, target {tuple(target.shape)} and mask {tuple(mask.shape)} "
                         f"must be (B, N, P), (B, N, P) and (B, N)")
    hidden = mask.sum()
    if hidden == 0:
        raise ValueError("the mask hides no patch: the loss over hidden patches is undefined")
    return (((pred - target) ** 2).mean(dim=-1) * mask).sum() / hidden


def mae_loss(model: MaskedAutoencoder, images: torch.Tensor, mask_ratio: float | None = None,
             generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Mask, encode, decode and score one batch of images: `masked_mse` against the model's
    targets (plain or per-patch normalised pixels, as it was built)."""
    pred, mask = model(images, mask_ratio, generator, noise)
    return masked_mse(pred, patch_targets(images, model.patch_size, model.norm_pix_loss), mask)


def mae_objective(model: MaskedAutoencoder, batch) -> torch.Tensor:
    """The training step's loss on (images,) or (images, masking noise) batches."""
    images, *noise = batch
    return mae_loss(model, images, noise=noise[0] if noise else None)


def mae_batch(world: ShapesWorld, seed: int, step: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Global batch `step`: the images and the noise whose order picks each one's hidden patches."""
    return step_images(world, step, size), torch.rand(size, patch_count(world), generator=step_generator(seed, step))


def mean_colour_baseline(images: torch.Tensor, mask: torch.Tensor, patch: int) -> torch.Tensor:
    """A guess that needs no learning: every hidden patch painted in the mean colour of the
    image's visible pixels. Returns (B, N, patch*patch*C) like the decoder."""
    patches = patchify(images, patch)
    b, n, _ = patches.shape
    pixels = patches.reshape(b, n, patch * patch, -1)
    visible = (1 - mask)[..., None, None]
    colour = (pixels * visible).sum(dim=(1, 2)) / (visible.sum(dim=(1, 2)) * patch * patch)
    return colour[:, None, None, :].expand(b, n, patch * patch, -1).reshape(b, n, -1)
