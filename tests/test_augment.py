import pytest
import torch

from vp_utils.data.augment import augment, pick_pairs, simclr_augment, two_views, view_bank, view_pairs


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


def test_hue_turns_the_colour_wheel():
    red = torch.zeros(1, 3, 32, 32)
    red[:, 0] = 0.9
    views = augment(red.expand(64, -1, -1, -1).contiguous(), simclr_augment(32, crop=False, flip=False, hue=0.5))
    dominant = views.mean(dim=(2, 3)).argmax(dim=1)
    assert set(dominant.tolist()) == {0, 1, 2}  # red turns green and blue too


def test_view_bank_and_pairs():
    x = scenes(5)
    bank = view_bank(x, simclr_augment(32), views=3)
    assert bank.shape == (5, 3, 3, 32, 32)
    torch.manual_seed(0)
    for _ in range(20):
        a, b = pick_pairs(bank)
        assert a.shape == b.shape == (5, 3, 32, 32)
        for i in range(5):  # both views come from image i's row, and they are different views
            first = [v for v in range(3) if torch.equal(bank[i, v], a[i])]
            second = [v for v in range(3) if torch.equal(bank[i, v], b[i])]
            assert first and second and set(first) != set(second)
    with pytest.raises(ValueError, match="at least 2"):
        view_bank(x, simclr_augment(32), views=1)
    with pytest.raises(ValueError, match="view-bank rows"):
        pick_pairs(x)


def test_view_pairs_repeat_bit_for_bit_beside_another_run():
    bank = view_bank(scenes(12), simclr_augment(32), views=4)
    alone = [pair for _, pair in zip(range(5), view_pairs(bank, batch_size=4, seed=3))]
    torch.manual_seed(0)
    torch.randint(10, (7,))  # the global generator moves: the pairs must not
    again = [pair for _, pair in zip(range(5), view_pairs(bank, batch_size=4, seed=3))]
    assert all(torch.equal(x, y) for p, q in zip(alone, again) for x, y in zip(p, q))
    other = next(view_pairs(bank, batch_size=4, seed=4))
    assert not all(torch.equal(x, y) for x, y in zip(alone[0], other))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="crop_scale"):
        simclr_augment(32, crop_scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="size must be positive"):
        simclr_augment(0)
    with pytest.raises(ValueError, match="channels"):
        augment(torch.rand(2, 1, 32, 32), simclr_augment(32))
