"""Multi-crop (Caron et al. 2020, used by DINO): a few large *global* crops and several small
*local* crops of every image, so a model learns that a part and the whole show the same thing.

Crops are cut for a whole batch at once with `roi_align` (one bilinear resample per crop box,
vectorised over the batch): cropping images one by one in Python would cost more than the
tiny models trained on them.
"""
from __future__ import annotations

import math

import torch

from ..lab.checks import check_images, check_positive


def random_boxes(batch: int, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, 4) crop boxes (x0, y0, x1, y1) in pixels, as RandomResizedCrop draws them: an area
    fraction uniform in `scale`, an aspect ratio log-uniform in `ratio`, a uniform position.
    A box that would not fit is shrunk to the image, so every box lies inside it."""
    lo, hi = scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"scale must be (lo, hi) with 0 < lo <= hi <= 1, got {scale}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must be (lo, hi) with 0 < lo <= hi, got {ratio}")
    u = torch.rand(batch, 4, generator=generator)
    area = (lo + (hi - lo) * u[:, 0]) * height * width
    aspect = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1])
    w = (area * aspect).sqrt().clamp(max=width)
    h = (area / aspect).sqrt().clamp(max=height)
    x0, y0 = (width - w) * u[:, 2], (height - h) * u[:, 3]
    return torch.stack([x0, y0, x0 + w, y0 + h], dim=1)


def resized_crops(images: torch.Tensor, boxes: torch.Tensor, size: int, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Cut box b out of image b and resample it bilinearly to size x size; mirror where flip."""
    check_images(images, channels=None)
    check_positive(size, "crop size")
    if boxes.shape != (len(images), 4):
        raise ValueError(f"boxes must have shape ({len(images)}, 4), got {tuple(boxes.shape)}")
    rois = torch.cat([torch.arange(len(images), dtype=images.dtype)[:, None], boxes.to(images.dtype)], dim=1)
    # aligned=True samples pixel centres; sampling_ratio=-1 averages ceil(box / size) points per output
    # pixel and side: one when enlarging (exact on a whole-image box), more when shrinking (anti-aliasing)
    from torchvision.ops import roi_align  # here, not at the top: loading torchvision takes a second

    crops = roi_align(images, rois, output_size=size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    if flip is not None:
        crops = torch.where(flip[:, None, None, None], crops.flip(-1), crops)
    return crops


def multicrop(images: torch.Tensor, global_size: int, local_size: int, n_global: int = 2, n_local: int = 2,
              global_scale: tuple[float, float] = (0.4, 1.0), local_scale: tuple[float, float] = (0.05, 0.4),
              generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """A list of n_global crops (B, C, global_size, global_size), then n_local crops (B, C,
    local_size, local_size), each a fresh random resized crop of every image with a random
    horizontal flip. DINO's scale ranges: global crops cover 40-100% of the image, local 5-40%."""
    check_images(images, channels=None)
    if n_global < 1 or n_local < 0:
        raise ValueError(f"need n_global >= 1 and n_local >= 0, got {n_global} and {n_local}")
    batch, _, height, width = images.shape
    views = []
    for size, scale, count in ((global_size, global_scale, n_global), (local_size, local_scale, n_local)):
        for _ in range(count):
            boxes = random_boxes(batch, height, width, scale, generator=generator)
            flip = torch.rand(batch, generator=generator) < 0.5
            views.append(resized_crops(images, boxes, size, flip))
    return views


_CHANNEL_ORDERS = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])


def permute_channels(views: list[torch.Tensor], generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Colour jitter for the shapes world: every view of every image gets its RGB channels in one of
    the six orders at random, so an object's colour differs between views while its shape, size and
    place do not (grey stays grey). Without it, colour is the easiest thing to match across crops and
    DINO's features learn colour and little else."""
    permuted = []
    for view in views:
        check_images(view)
        order = _CHANNEL_ORDERS[torch.randint(len(_CHANNEL_ORDERS), (len(view),), generator=generator)]
        permuted.append(view.gather(1, order.to(view.device)[:, :, None, None].expand_as(view)))
    return permuted
