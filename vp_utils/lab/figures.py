"""Figures the notebooks share: image grids with captions, training curves, feature maps,
patch grids and attention heat maps."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path
from matplotlib.ticker import FuncFormatter, MaxNLocator


def to_image(x) -> np.ndarray:
    """A (3, H, W) or (H, W, 3) tensor/array as a displayable (H, W, 3) array clipped to [0, 1]."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.ndim == 3 and x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
        x = x.transpose(1, 2, 0)
    if x.ndim not in (2, 3):
        raise ValueError(f"expected one image of shape (C, H, W) or (H, W, C), got {x.shape}")
    return np.clip(x.squeeze(), 0, 1) if x.ndim == 3 else x


TITLE_PT = 10        # panel titles: readable beside 10-11 pt prose
BAR_PT = 7           # colour-bar ticks and label: small, as the bar is one per panel in a grid
PANEL_BAR_IN = 0.55  # width each panel gains for its own colour bar and tick labels
SHARED_BAR_IN = 0.2  # width of the one colour-bar column beside a grid on one scale


def _text_inches(text: str, points: float = TITLE_PT) -> float:
    """Width of the longest line of `text` set at `points`, in inches (no renderer needed)."""
    font = FontProperties(size=points)
    return max(text_to_path.get_text_width_height_descent(line, font, ismath=False)[0]
               for line in str(text).split("\n")) / 72


def add_colour_bar(artist, ax=None, label: str | None = None, cax=None):
    """A slim colour bar for `artist` (an imshow result): in `cax` when given, else just right of
    `ax`, inside its layout box so tight_layout keeps it clear of the neighbours. Returns the bar."""
    if cax is None:
        cax = ax.inset_axes([1.04, 0.0, 0.06, 1.0])
    bar = cax.figure.colorbar(artist, cax=cax)
    bar.locator = MaxNLocator(2, steps=[1, 2, 2.5, 5, 10])  # two or three round values: enough to read a map
    bar.formatter = FuncFormatter(lambda value, _: f"{value:g}".replace("-", "\N{MINUS SIGN}"))  # 0.05, not 0.050
    bar.update_ticks()
    bar.ax.tick_params(labelsize=BAR_PT, length=2, pad=1)
    if label:
        bar.set_label(label, fontsize=BAR_PT, labelpad=2)
    return bar


def _bar_kind(colorbar, any_map: bool, cmap, vmin, vmax) -> str | None:
    """None, "shared" (one bar: every map on the vmin-vmax scale) or "each" (a bar per map)."""
    if colorbar is None:  # by default a bar wherever maps are drawn on a colour scale someone chose
        colorbar = cmap is not None or vmin is not None or vmax is not None
    if not colorbar or not any_map:
        return None
    return "shared" if vmin is not None and vmax is not None else "each"


def show_images(images, titles=None, ncols: int = 8, size: float = 1.6, title: str | None = None, cmap=None,
                vmin=None, vmax=None, colorbar: bool | None = None, label: str | None = None):
    """A grid of images with optional per-image titles; returns the figure. For single-channel
    maps, `vmin`/`vmax` put every panel on one colour scale (default: each its own). Maps drawn
    with a `cmap` or limits get a colour bar (`colorbar=False` drops it, `label` names it): one
    beside the grid when both limits are given, else one beside each map. RGB panels get none."""
    images = [to_image(image) for image in images]
    if not images:
        raise ValueError("no images to show")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    is_map = [image.ndim == 2 for image in images]
    bars = _bar_kind(colorbar, any(is_map), cmap, vmin, vmax)
    ncols = min(ncols, len(images))
    nrows = math.ceil(len(images) / ncols)
    fig, axes, grid = _image_grid(nrows, ncols, size, titles, title, bars)
    drawn = None
    for i, (ax, image) in enumerate(zip(axes, images)):
        shown = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=TITLE_PT)
        if is_map[i]:
            drawn = shown
            if bars == "each":
                add_colour_bar(shown, ax, label)
    if bars == "shared":
        rows = [i // ncols for i in range(len(images)) if is_map[i]]
        add_colour_bar(drawn, label=label, cax=fig.add_subplot(grid[rows[0]:rows[-1] + 1, ncols]))
    if title:  # pinned 0.05 inch below the top: tight_layout keeps that much room, and the default
        fig.suptitle(title, y=1 - 0.05 / fig.get_figheight())  # (2% of the height) falls onto a tall grid's titles
    fig.tight_layout()
    return fig


def _image_grid(nrows: int, ncols: int, size: float, titles, title, bars):
    """The figure, its ncols x nrows image axes (off, in reading order) and its grid, whose last
    column holds the colour bar when the maps share one. Each panel is wide enough for its title
    and its own bar; each row also holds its titles (0.22 inch a line), so they never reach the
    row above."""
    lines = max(str(t).count("\n") + 1 for t in titles) if titles is not None else 0
    width = max([size] + [_text_inches(t) + 0.25 for t in titles or []]) + (PANEL_BAR_IN if bars == "each" else 0)
    height = nrows * (size + 0.22 * lines) + (0.4 if title else 0)
    bar = [SHARED_BAR_IN] if bars == "shared" else []
    fig = plt.figure(figsize=(width * ncols + (SHARED_BAR_IN + 0.5 if bar else 0), height))  # 0.5: its tick labels
    grid = fig.add_gridspec(nrows, ncols + len(bar), width_ratios=[width] * ncols + bar)
    axes = [fig.add_subplot(grid[r, c]) for r in range(nrows) for c in range(ncols)]
    for ax in axes:
        ax.axis("off")
    return fig, axes, grid


def smooth(values, window: int = 20) -> np.ndarray:
    """Running mean over `window` steps (shorter at the start), for readable noisy curves."""
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values)))
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (cumulative[1:] - cumulative[starts]) / (np.arange(1, len(values) + 1) - starts)


def plot_curves(curves: dict, title: str, xlabel: str = "step", ylabel: str = "loss", window: int = 20,
                ax=None, logy: bool = False, colors: dict | None = None):
    """One line per named series, smoothed; returns the axes. `colors` maps names to matplotlib
    colours, so that a series keeps its colour from panel to panel."""
    if not curves:
        raise ValueError("no curves to plot")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    for name, values in curves.items():
        ax.plot(smooth(values, window), label=name, color=(colors or {}).get(name))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return ax


def show_feature_maps(maps: torch.Tensor, channels=None, title: str | None = None, ncols: int = 8,
                      label: str | None = "activation"):
    """Channels of one (C, H, W) feature map, each scaled to its own range and given its own
    colour bar (named `label`)."""
    if maps.ndim != 3:
        raise ValueError(f"expected one feature map of shape (C, H, W), got {tuple(maps.shape)}")
    channels = range(min(ncols * 2, maps.shape[0])) if channels is None else channels
    chosen = [maps[c].detach().cpu().numpy() for c in channels]
    return show_images(chosen, [f"ch {c}" for c in channels], ncols=ncols, title=title, cmap="viridis", label=label)


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
        ax.set_title(title, fontsize=TITLE_PT)
    return ax


def overlay_heatmap(image, heat, ax=None, alpha: float = 0.6, cmap: str = "inferno", title: str | None = None,
                    vmin: float | None = 0.0, vmax: float | None = None, colorbar: bool = True,
                    label: str | None = "attention weight"):
    """An image with a (rows, cols) map stretched over it, one block per cell (per patch for an
    attention map), and a colour bar named `label` beside it; returns the axes. The colours run
    from `vmin` (default 0, so an even map looks even) to `vmax` (default: the map's maximum);
    vmin=None stretches to the map's minimum."""
    picture = to_image(image)
    heat = heat.detach().cpu().numpy() if isinstance(heat, torch.Tensor) else np.asarray(heat)
    if heat.ndim != 2:
        raise ValueError(f"heat must be one (rows, cols) map, got shape {heat.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.5, 3.5))
    height, width = picture.shape[:2]
    ax.imshow(picture, interpolation="nearest")
    shown = ax.imshow(heat, cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax,
                      extent=(-0.5, width - 0.5, height - 0.5, -0.5), interpolation="nearest")
    ax.axis("off")
    if colorbar:
        add_colour_bar(shown, ax, label).solids.set_alpha(1)  # the bar shows the colours, not the blend
        if ax.figure.get_layout_engine() is None:  # else the bar, outside the axes, may run into the next panel
            ax.figure.set_layout_engine("tight")
    if title:
        ax.set_title(title, fontsize=TITLE_PT)
    return ax


def show_source(obj) -> None:
    """Display the source of a vp_utils class or function, so a notebook reads the code it runs."""
    import inspect

    from IPython.display import Code, display

    display(Code(inspect.getsource(obj), language="python"))


def plot_embedding(features, labels, names=None, method: str = "pca", ax=None, title: str | None = None,
                   colours=None, seed: int = 0, axis_labels: tuple[str, str] | None = None):
    """Features as a 2-d scatter, one colour per class: the features themselves when they are
    2-d, else their first two principal components ("pca", each axis labelled with its share of
    the variance) or a t-SNE map ("tsne", slower). `colours` maps class index -> colour (default:
    tab10); `axis_labels` overrides the axis names. Returns the axes."""
    features = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    labels = np.asarray(labels)
    if features.ndim != 2 or features.shape[1] < 2 or len(features) != len(labels) or len(features) < 3:
        raise ValueError(f"need (n, dim) features with n >= 3, dim >= 2 and one label each, "
                         f"got {features.shape} and {labels.shape}")
    if method not in ("pca", "tsne"):
        raise ValueError(f"unknown method {method!r}; choose 'pca' or 'tsne'")
    points, names_of_axes = _project(features, method, seed)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    for k in np.unique(labels):
        pick = labels == k
        colour = colours[k] if colours is not None else plt.cm.tab10(k % 10)
        ax.scatter(points[pick, 0], points[pick, 1], s=6, color=colour, alpha=0.7,
                   label=names[k] if names is not None else str(k))
    xlabel, ylabel = axis_labels or names_of_axes
    ax.set(title=title, xticks=[], yticks=[], xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8, markerscale=2, loc="best")
    return ax


def _project(features: np.ndarray, method: str, seed: int):
    """(n, 2) points and the names of their two axes."""
    if features.shape[1] == 2:
        return features, ("feature 1", "feature 2")
    if method == "tsne":
        from sklearn.manifold import TSNE
        tsne = TSNE(2, init="pca", random_state=seed, perplexity=min(30, len(features) - 1))
        return tsne.fit_transform(features), ("t-SNE 1", "t-SNE 2")
    centred = features - features.mean(0)
    _, spread, directions = np.linalg.svd(centred, full_matrices=False)
    share = spread**2 / (spread**2).sum()
    return centred @ directions[:2].T, tuple(f"PC {i + 1} ({share[i]:.0%} of variance)" for i in range(2))
