import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vp_utils.viz import draw_patch_grid, overlay_heatmap, show_images  # noqa: E402


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
