import pytest
import torch

from vp_utils.augment import augment, simclr_augment, two_views


def scenes(n=8):
    torch.manual_seed(0)
    return torch.rand(n, 3, 32, 32)


def test_every_image_gets_its_own_draw():
    x = scenes(1).expand(16, -1, -1, -1).contiguous()  # one image, sixteen times
    out = augment(x, simclr_augment(32))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert 0 <= out.min() and out.max() <= 1
    distinct = {tuple(v.flatten()[:50].tolist()) for v in out}
    assert len(distinct) > 8


def test_two_views_differ():
    x = scenes()
    a, b = two_views(x, simclr_augment(32))
    assert a.shape == b.shape == x.shape
    assert not torch.allclose(a, b)


def test_switches_turn_families_off():
    x = scenes()
    assert torch.equal(augment(x, simclr_augment(32, crop=False, colour=False, flip=False)), x)
    flipped = augment(x, simclr_augment(32, crop=False, colour=False))
    for image, view in zip(x, flipped):
        assert torch.equal(view, image) or torch.equal(view, image.flip(-1))
    # colour on, geometry off: pixels move in colour, not in place
    torch.manual_seed(1)
    jittered = augment(x, simclr_augment(32, crop=False, flip=False))
    assert not torch.allclose(jittered, x)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="crop_scale"):
        simclr_augment(32, crop_scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="size must be positive"):
        simclr_augment(0)
    with pytest.raises(ValueError, match="channels"):
        augment(torch.rand(2, 1, 32, 32), simclr_augment(32))
