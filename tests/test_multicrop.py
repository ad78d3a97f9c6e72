import itertools

import pytest
import torch
import torch.nn.functional as F

from vp_utils.data.multicrop import multicrop, permute_channels, random_boxes, resized_crops


def test_whole_image_box_is_the_identity_and_half_size_is_average_pooling():
    x = torch.rand(4, 3, 32, 32)
    whole = torch.tensor([[0.0, 0.0, 32.0, 32.0]]).expand(4, 4)
    assert torch.allclose(resized_crops(x, whole, 32), x, atol=1e-6)
    assert torch.allclose(resized_crops(x, whole, 16), F.avg_pool2d(x, 2), atol=1e-6)
    centre = torch.tensor([[8.0, 8.0, 24.0, 24.0]]).expand(4, 4)
    assert torch.allclose(resized_crops(x, centre, 16), x[..., 8:24, 8:24], atol=1e-6)
    flipped = resized_crops(x, whole, 32, flip=torch.tensor([True, False, True, False]))
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])


def test_boxes_lie_inside_the_image_with_the_asked_area():
    boxes = random_boxes(2000, 32, 32, scale=(0.05, 0.4), generator=torch.Generator().manual_seed(0))
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 32 + 1e-4).all() and (boxes[:, 3] <= 32 + 1e-4).all()
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / 32**2
    assert area.min() >= 0.05 - 1e-4 and area.max() <= 0.4 + 1e-4
    assert 0.2 < area.mean() < 0.25  # uniform in [0.05, 0.4]: mean 0.225
    with pytest.raises(ValueError, match="scale"):
        random_boxes(2, 32, 32, scale=(0.5, 0.2))


def test_multicrop_gives_global_then_local_views_different_per_image_and_repeatable():
    x = torch.rand(6, 3, 32, 32)
    views = multicrop(x, 32, 16, n_global=2, n_local=3, generator=torch.Generator().manual_seed(0))
    assert [tuple(v.shape) for v in views] == [(6, 3, 32, 32)] * 2 + [(6, 3, 16, 16)] * 3
    assert not torch.allclose(views[0], views[1])
    again = multicrop(x, 32, 16, n_global=2, n_local=3, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(views, again))
    with pytest.raises(ValueError, match="n_global"):
        multicrop(x, 32, 16, n_global=0)
    with pytest.raises(ValueError, match="boxes"):
        resized_crops(x, torch.zeros(5, 4), 8)


def test_permute_channels_reorders_each_views_colours_and_keeps_grey():
    x = torch.rand(200, 3, 8, 8)
    x[0] = 0.5  # a grey image has no colour to change
    (out,) = permute_channels([x], generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[0], x[0])
    orders = [next(o for o in itertools.permutations(range(3)) if torch.equal(out[i], x[i, list(o)]))
              for i in range(1, 200)]  # StopIteration if a view is anything but its image, reordered
    assert len(set(orders)) == 6  # all six orders occur
    with pytest.raises(ValueError, match="3 channels"):
        permute_channels([torch.rand(2, 1, 8, 8)])
