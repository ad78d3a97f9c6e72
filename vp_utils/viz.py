"""Figures the notebooks share: image grids with captions, training curves, feature maps."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch


def to_image(x) -> np.ndarray:
    """A (3, H, W) or (H, W, 3) tensor/array as a displayable (H, W, 3) array clipped to [0, 1]."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.ndim == 3 and x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
        x = x.transpose(1, 2, 0)
    if x.ndim not in (2, 3):
        raise ValueError(f"expected one image of shape (C, H, W) or (H, W, C), got {x.shape}")
    return np.clip(x.squeeze(), 0, 1) if x.ndim == 3 else x


def show_images(images, titles=None, ncols: int = 8, size: float = 1.6, title: str | None = None, cmap=None):
    """A grid of images with optional per-image titles; returns the figure."""
    images = list(images)
    if not images:
        raise ValueError("no images to show")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    ncols = min(ncols, len(images))
    nrows = math.ceil(len(images) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if title else 0)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(to_image(image), cmap=cmap, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def smooth(values, window: int = 20) -> np.ndarray:
    """Running mean over `window` steps (shorter at the start), for readable noisy curves."""
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values)))
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (cumulative[1:] - cumulative[starts]) / (np.arange(1, len(values) + 1) - starts)


def plot_curves(curves: dict, title: str, xlabel: str = "step", ylabel: str = "loss", window: int = 20,
                ax=None, logy: bool = False):
    """One line per named series, smoothed; returns the axes."""
    if not curves:
        raise ValueError("no curves to plot")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    for name, values in curves.items():
        ax.plot(smooth(values, window), label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return ax


def show_feature_maps(maps: torch.Tensor, channels=None, title: str | None = None, ncols: int = 8):
    """Channels of one (C, H, W) feature map, each scaled to its own range."""
    if maps.ndim != 3:
        raise ValueError(f"expected one feature map of shape (C, H, W), got {tuple(maps.shape)}")
    channels = range(min(ncols * 2, maps.shape[0])) if channels is None else channels
    chosen = [maps[c].detach().cpu().numpy() for c in channels]
    return show_images(chosen, [f"ch {c}" for c in channels], ncols=ncols, title=title, cmap="viridis")


def show_source(obj) -> None:
    """Display the source of a vp_utils class or function, so a notebook reads the code it runs."""
    import inspect

    from IPython.display import Code, display

    display(Code(inspect.getsource(obj), language="python"))
