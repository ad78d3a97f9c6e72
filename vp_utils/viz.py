"""Figures the notebooks share: image grids with captions, training curves, feature maps,
patch grids and attention heat maps."""
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


def show_images(images, titles=None, ncols: int = 8, size: float = 1.6, title: str | None = None, cmap=None,
                vmin=None, vmax=None):
    """A grid of images with optional per-image titles; returns the figure. For single-channel
    maps, `vmin`/`vmax` put every panel on one colour scale (default: each its own)."""
    images = list(images)
    if not images:
        raise ValueError("no images to show")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    ncols = min(ncols, len(images))
    nrows = math.ceil(len(images) / ncols)
    lines = max(str(t).count("\n") + 1 for t in titles) if titles is not None else 0
    # each row also holds its titles (8 pt lines, with room to spare), so they never reach the row above
    height = nrows * (size + 0.2 * lines) + (0.4 if title else 0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, height), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(to_image(image), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
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


def draw_patch_grid(image, patch: int, ax=None, colour: str = "white", title: str | None = None):
    """An image with the borders of its patch x patch tiles drawn on top; returns the axes."""
    picture = to_image(image)
    height, width = picture.shape[:2]
    if not isinstance(patch, int) or patch < 1 or height % patch or width % patch:
        raise ValueError(f"patch must be a positive integer dividing the image size {height}x{width}, got {patch!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.5, 3.5))
    ax.imshow(picture, interpolation="nearest")
    for edge in range(patch, width, patch):
        ax.axvline(edge - 0.5, color=colour, linewidth=0.8)
    for edge in range(patch, height, patch):
        ax.axhline(edge - 0.5, color=colour, linewidth=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def overlay_heatmap(image, heat, ax=None, alpha: float = 0.6, cmap: str = "inferno", title: str | None = None,
                    vmin: float | None = 0.0, vmax: float | None = None):
    """An image with a (rows, cols) map stretched over it, one block per cell (per patch for an
    attention map); returns the axes. The colours run from `vmin` (default 0, so an even map
    looks even) to `vmax` (default: the map's maximum); vmin=None stretches to the map's minimum."""
    picture = to_image(image)
    heat = heat.detach().cpu().numpy() if isinstance(heat, torch.Tensor) else np.asarray(heat)
    if heat.ndim != 2:
        raise ValueError(f"heat must be one (rows, cols) map, got shape {heat.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.5, 3.5))
    height, width = picture.shape[:2]
    ax.imshow(picture, interpolation="nearest")
    ax.imshow(heat, cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax, extent=(-0.5, width - 0.5, height - 0.5, -0.5),
              interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=8)
    return ax


def show_source(obj) -> None:
    """Display the source of a vp_utils class or function, so a notebook reads the code it runs."""
    import inspect

    from IPython.display import Code, display

    display(Code(inspect.getsource(obj), language="python"))


def plot_embedding(features, labels, names=None, method: str = "pca", ax=None, title: str | None = None,
                   colours=None, seed: int = 0):
    """Features as a 2-d scatter, one colour per class: the features themselves when they are
    2-d, else their first two principal components ("pca") or a t-SNE map ("tsne", slower).
    `colours` maps class index -> colour (default: tab10). Returns the axes."""
    features = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels) or len(features) < 3:
        raise ValueError(f"need (n, dim) features with n >= 3 and one label each, got {features.shape} and {labels.shape}")
    if method not in ("pca", "tsne"):
        raise ValueError(f"unknown method {method!r}; choose 'pca' or 'tsne'")
    if features.shape[1] > 2 and method == "pca":
        centred = features - features.mean(0)
        features = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    elif features.shape[1] > 2:
        from sklearn.manifold import TSNE
        features = TSNE(2, init="pca", random_state=seed, perplexity=min(30, len(features) - 1)).fit_transform(features)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    for k in np.unique(labels):
        pick = labels == k
        colour = colours[k] if colours is not None else plt.cm.tab10(k % 10)
        ax.scatter(features[pick, 0], features[pick, 1], s=6, color=colour, alpha=0.7,
                   label=names[k] if names is not None else str(k))
    ax.set(title=title, xticks=[], yticks=[])
    ax.legend(fontsize=7, markerscale=2, loc="best")
    return ax
