"""Real pictures that ship inside installed packages, so they work offline."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

_SKIMAGE = ("astronaut", "coffee", "chelsea", "rocket", "camera")


def photos(size: int | None = 224) -> dict[str, np.ndarray]:
    """Named RGB photos from scikit-image and scikit-learn as float32 (H, W, 3) arrays in [0, 1].

    With `size`, each is centre-cropped to a square and resized to size x size.
    """
    import skimage.data
    from sklearn.datasets import load_sample_images

    images = {name: getattr(skimage.data, name)() for name in _SKIMAGE}
    sample = load_sample_images()
    images.update({path.rsplit("/", 1)[-1].removesuffix(".jpg"): image
                   for path, image in zip(sample.filenames, sample.images)})
    return {name: _prepare(image, size) for name, image in images.items()}


def normalise_pixels(images: torch.Tensor, mean, std) -> torch.Tensor:
    """Images (n, 3, H, W) in [0, 1] less a pretrained model's per-channel mean, over its std: the
    input the model saw in training."""
    mean, std = (torch.as_tensor(v, dtype=images.dtype, device=images.device).reshape(1, 3, 1, 1) for v in (mean, std))
    return (images - mean) / std


def photo_batch(pictures: dict[str, np.ndarray], names: Iterable[str], mean, std) -> torch.Tensor:
    """The named photos (from `photos`; any iterable of names, a dict's keys too) as one batch
    (n, 3, H, W), standardised for a pretrained model."""
    names = list(names)
    missing = [name for name in names if name not in pictures]
    if missing:
        raise KeyError(f"no photos named {missing}; choose from {sorted(pictures)}")
    return normalise_pixels(torch.stack([torch.from_numpy(pictures[name]).permute(2, 0, 1) for name in names]), mean, std)


def digits():
    """scikit-learn's 1,797 handwritten digits: (images (n, 8, 8) float32 in [0, 1], labels (n,))."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target


def _prepare(image: np.ndarray, size: int | None) -> np.ndarray:
    if image.ndim == 2:  # greyscale: repeat into RGB so every photo has the same layout
        image = np.repeat(image[..., None], 3, axis=2)
    image = image.astype(np.float32) / 255.0
    if size is None:
        return image
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer or None, got {size!r}")
    from skimage.transform import resize

    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top:top + side, left:left + side]
    return resize(square, (size, size), anti_aliasing=True).astype(np.float32)
