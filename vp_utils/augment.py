"""SimCLR's augmentations with torchvision.transforms.v2, on batches of image tensors.

A v2 transform draws one set of random parameters per call, so a batch passed whole would get
the same crop and the same colours everywhere. `augment` calls the pipeline once per image:
every image gets its own draw, which is what makes two views of one image differ.
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2

from .checks import check_images, check_positive


def simclr_augment(size: int = 32, crop: bool = True, colour: bool = True, flip: bool = True, blur: bool = False,
                   crop_scale: tuple[float, float] = (0.2, 1.0), strength: float = 1.0) -> v2.Compose:
    """The SimCLR pipeline (Chen et al. 2020, appendix A), each family switchable for ablations:
    random resized crop, horizontal flip, colour jitter (p=0.8, strength s: brightness,
    contrast, saturation 0.8s, hue 0.2s) with random grayscale (p=0.2), Gaussian blur (p=0.5).
    Images are float tensors in [0, 1]."""
    check_positive(size, "size")
    check_positive(strength, "strength")
    lo, hi = crop_scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"crop_scale must be (lo, hi) with 0 < lo <= hi <= 1, got {crop_scale}")
    steps = []
    if crop:
        steps.append(v2.RandomResizedCrop(size, scale=crop_scale, antialias=True))
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if colour:
        s = strength
        steps += [v2.RandomApply([v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, min(0.2 * s, 0.5))], p=0.8),
                  v2.RandomGrayscale(p=0.2)]
    if blur:
        steps.append(v2.RandomApply([v2.GaussianBlur(3, sigma=(0.1, 2.0))], p=0.5))
    return v2.Compose(steps or [v2.Identity()])  # everything off: the views are the image


def augment(images: torch.Tensor, transform) -> torch.Tensor:
    """`transform` applied to each image of a (batch, 3, H, W) tensor with its own random draw."""
    check_images(images)
    return torch.stack([transform(image) for image in images])


def two_views(images: torch.Tensor, transform) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent augmentations of every image: SimCLR's positive pairs."""
    return augment(images, transform), augment(images, transform)
