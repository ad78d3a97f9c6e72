import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from matplotlib.collections import QuadMesh  # noqa: E402

from vp_utils.lab.figures import (draw_patch_grid, overlay_heatmap, plot_curves, plot_embedding,  # noqa: E402
                                  show_feature_maps, show_images)


def test_patch_grid_draws_one_line_per_inner_border():
    ax = draw_patch_grid(torch.rand(3, 32, 16), 4, title="grid")
    vertical = [line for line in ax.lines if line.get_xdata()[0] == line.get_xdata()[1]]
    assert len(vertical) == 16 // 4 - 1 and len(ax.lines) == (16 // 4 - 1) + (32 // 4 - 1)
    assert ax.get_title() == "grid"
    with pytest.raises(ValueError, match="dividing the image size 32x16"):
        draw_patch_grid(torch.rand(3, 32, 16), 5)
    plt.close("all")


def test_heatmap_covers_the_whole_image():
    image = np.random.rand(32, 32, 3)
    ax = overlay_heatmap(image, torch.rand(8, 8))
    picture, heat = ax.get_images()
    assert heat.get_extent() == picture.get_extent() == [-0.5, 31.5, 31.5, -0.5]
    with pytest.raises(ValueError, match=r"one \(rows, cols\) map"):
        overlay_heatmap(image, torch.rand(1, 8, 8))
    plt.close("all")


def test_show_images_shares_a_colour_scale_on_request():
    fig = show_images([np.zeros((4, 4)), np.ones((4, 4))], cmap="viridis", vmin=-1, vmax=1)
    assert all(im.get_clim() == (-1, 1) for ax in fig.axes for im in ax.get_images())
    plt.close("all")


def test_heatmap_colours_start_at_zero_unless_asked():
    image = np.random.rand(8, 8, 3)
    heat = torch.full((2, 2), 0.25) + 0.01 * torch.rand(2, 2)
    assert overlay_heatmap(image, heat).get_images()[1].get_clim()[0] == 0.0
    stretched = overlay_heatmap(image, heat, vmin=None).get_images()[1].get_clim()
    assert stretched[0] == pytest.approx(heat.min().item())
    plt.close("all")


def colour_bars(fig):
    """Axes that draw a colour scale (a mesh and no image), standalone or inset in a panel."""
    every = fig.axes + [child for ax in fig.axes for child in ax.child_axes]
    return [ax for ax in every if not ax.get_images() and any(isinstance(c, QuadMesh) for c in ax.collections)]


def test_maps_on_one_scale_share_one_labelled_colour_bar():
    maps = [np.random.rand(4, 4) * 2 - 1 for _ in range(6)]
    fig = show_images([np.random.rand(4, 4, 3)] + maps, ncols=4, cmap="viridis", vmin=-1, vmax=1, label="cosine")
    (bar,) = colour_bars(fig)
    assert bar.get_ylabel() == "cosine" and bar.get_ylim() == (-1, 1)
    assert [t.get_text() for t in bar.get_yticklabels()] == ["\N{MINUS SIGN}1", "0", "1"]
    plt.close("all")


def test_maps_on_their_own_scales_get_a_bar_each_and_rgb_panels_none():
    pictures = [np.random.rand(4, 4, 3) for _ in range(2)]
    fig = show_images(pictures + [np.linspace(0, top, 16).reshape(4, 4) for top in (1, 5, 50)], cmap="inferno")
    bars = colour_bars(fig)
    assert len(bars) == 3 and sorted(bar.get_ylim() for bar in bars) == [(0, 1), (0, 5), (0, 50)]
    assert not colour_bars(show_images(pictures, cmap="inferno"))
    assert not colour_bars(show_images([np.random.rand(4, 4) > 0.5]))  # a mask with no colour scale asked for
    assert not colour_bars(show_images(pictures[:1] + [np.random.rand(4, 4)], cmap="inferno", colorbar=False))
    plt.close("all")


def test_feature_maps_and_heat_maps_name_their_colour_bars():
    bars = colour_bars(show_feature_maps(torch.rand(4, 6, 6)))
    assert len(bars) == 4 and {bar.get_ylabel() for bar in bars} == {"activation"}
    ax = overlay_heatmap(np.random.rand(8, 8, 3), torch.rand(2, 2))
    (bar,) = colour_bars(ax.figure)
    assert bar.get_ylabel() == "attention weight" and bar.get_ylim()[0] == 0.0
    renamed = overlay_heatmap(np.random.rand(8, 8, 3), torch.rand(2, 2), label="rollout")
    assert colour_bars(renamed.figure)[0].get_ylabel() == "rollout"
    assert not colour_bars(overlay_heatmap(np.random.rand(8, 8, 3), torch.rand(2, 2), colorbar=False).figure)
    plt.close("all")


def test_heat_map_bars_stay_clear_of_the_next_panel():
    fig, axes = plt.subplots(1, 6, figsize=(13, 2.4))  # as notebook 11 draws it: no tight_layout call
    for ax in axes:
        overlay_heatmap(np.random.rand(8, 8, 3), torch.rand(2, 2), ax=ax, title="layer 2 head 1: IoU 0.45")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for left, right in zip(axes[:-1], axes[1:]):
        assert left.child_axes[0].get_tightbbox(renderer).x1 <= right.get_window_extent(renderer).x0
        assert left.title.get_window_extent(renderer).x1 <= right.title.get_window_extent(renderer).x0
    plt.close("all")


def title_boxes(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in [ax.title for ax in fig.axes] + [fig._suptitle] if t.get_text()]


def test_panel_titles_are_readable_and_never_collide():
    long = ["a green circle below a red triangle\nand a big red star"] * 4
    wide = show_images([np.random.rand(8, 8, 3)] * 8, long + ["head 0"] * 4, ncols=4, size=1.5, title="wide titles")
    tall = show_images([np.random.rand(8, 8, 3)] * 4 + [np.random.rand(8, 8)] * 24, ["cat"] * 28, ncols=4, size=2.2,
                       cmap="inferno", title="seven rows, as notebook 06 draws its heads")
    for fig in (wide, tall):
        assert min(ax.title.get_fontsize() for ax in fig.axes) >= 10
        boxes = title_boxes(fig)
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert draw_patch_grid(torch.rand(3, 8, 8), 4, title="g").title.get_fontsize() >= 10
    assert overlay_heatmap(np.random.rand(8, 8, 3), torch.rand(2, 2), title="h").title.get_fontsize() >= 10
    plt.close("all")


def test_embedding_axes_say_what_they_are():
    torch.manual_seed(0)
    features, labels = torch.randn(40, 6) * torch.tensor([5.0, 1, 1, 1, 1, 1]), torch.arange(40) % 2
    ax = plot_embedding(features, labels)
    assert ax.get_xlabel().startswith("PC 1 (") and ax.get_xlabel().endswith("% of variance)")
    assert ax.get_ylabel().startswith("PC 2 (")
    assert int(ax.get_xlabel()[6:].split("%")[0]) > int(ax.get_ylabel()[6:].split("%")[0])
    tsne = plot_embedding(features, labels, method="tsne")
    assert (tsne.get_xlabel(), tsne.get_ylabel()) == ("t-SNE 1", "t-SNE 2")
    assert plot_embedding(features[:, :2], labels).get_xlabel() == "feature 1"
    assert plot_embedding(features, labels, axis_labels=("a", "b")).get_ylabel() == "b"
    with pytest.raises(ValueError, match="dim >= 2"):
        plot_embedding(features[:, :1], labels)
    plt.close("all")


def test_curves_keep_their_colours_from_panel_to_panel():
    colours = {"ResNet": "tab:blue", "ViT": "tab:orange"}
    first = plot_curves({"ResNet": np.ones(30), "ViT": np.zeros(30)}, "both", colors=colours)
    second = plot_curves({"ViT": np.zeros(30)}, "one", colors=colours)
    assert [line.get_color() for line in first.lines] == ["tab:blue", "tab:orange"]
    assert second.lines[0].get_color() == "tab:orange"
    plt.close("all")
