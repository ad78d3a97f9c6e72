"""SimCLR's augmentations with torchvision.transforms.v2, on batches of image tensors.

A v2 transform draws one set of random parameters per call, so a batch passed whole would get
the same crop and the same colours everywhere. `augment` calls the pipeline once per image:
every image gets its own draw, which is what makes two views of one image differ.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from ..lab.checks import check_images, check_positive
from .batching import batches

# torchvision is imported where it is used: it takes about a second to load, which every notebook
# would pay at its first cell, and only SimCLR's views need it (TYPE_CHECKING keeps the annotation)
if TYPE_CHECKING:
    from torchvision.transforms import v2


# The shapes world's setting (notebook 05 and the `simclr` recipe): milder crops than ImageNet's,
# since a 32-px object cut to a fifth loses its shape, and hue over the whole colour wheel, so
# colour cannot tell two scenes apart and shape must.
SHAPES_WORLD_VIEWS = dict(crop_scale=(0.6, 1.0), strength=0.5, hue=0.5)


def simclr_augment(size: int = 32, crop: bool = True, colour: bool = True, flip: bool = True, blur: bool = False,
                   crop_scale: tuple[float, float] = (0.2, 1.0), strength: float = 1.0,
                   hue: float | None = None) -> v2.Compose:
    """The SimCLR pipeline (Chen et al. 2020, appendix A), each family switchable for ablations:
    random resized crop, horizontal flip, colour jitter (p=0.8, strength s: brightness,
    contrast, saturation 0.8s, hue 0.2s) with random grayscale (p=0.2), Gaussian blur (p=0.5).
    `hue` overrides the hue range (0.5 turns the whole colour wheel). Images are floats in [0, 1]."""
    from torchvision.transforms import v2

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
        hue = min(0.2 * s, 0.5) if hue is None else hue
        steps += [v2.RandomApply([v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, hue)], p=0.8),
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


def view_bank(images: torch.Tensor, transform, views: int = 8) -> torch.Tensor:
    """`views` augmentations of every image, drawn once: (batch, views, 3, H, W). On a CPU the
    per-image pipeline costs as much as the network, so short runs draw pairs from this bank."""
    if not isinstance(views, int) or views < 2:
        raise ValueError(f"views must be an integer of at least 2 (a positive pair), got {views!r}")
    return torch.stack([augment(images, transform) for _ in range(views)], dim=1)


def pick_pairs(bank_rows: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two different views of each image, chosen at random from rows of a `view_bank` (with
    `generator`, or torch's global one when it is None)."""
    if bank_rows.ndim != 5 or bank_rows.shape[1] < 2:
        raise ValueError(f"expected view-bank rows of shape (batch, views >= 2, 3, H, W), got {tuple(bank_rows.shape)}")
    n, views = bank_rows.shape[:2]
    first = torch.randint(views, (n,), generator=generator)
    second = (first + torch.randint(1, views, (n,), generator=generator)) % views  # never the same view twice
    rows = torch.arange(n)
    return bank_rows[rows, first], bank_rows[rows, second]


def view_pairs(bank: torch.Tensor, batch_size: int, seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless minibatches of positive pairs from a `view_bank`: shuffled rows, two different views
    of each. Every draw comes from generators seeded here, so runs trained side by side in threads
    (`training.fit_together`) do not share torch's global generator and each repeats bit for bit."""
    generator = torch.Generator().manual_seed(seed)
    for (rows,) in batches(bank, batch_size=batch_size, seed=seed):
        yield pick_pairs(rows, generator)
