"""Feeding small photos to pretrained models: enlarged, standardised, in batches."""
import pytest
import torch
import torch.nn.functional as F

from vp_utils.analysis.evaluation import enlarged_features

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def test_photos_are_enlarged_then_standardised_per_channel():
    photos = torch.rand(5, 3, 8, 8)
    seen = enlarged_features(lambda x: x, photos, 24, MEAN, STD)
    expected = F.interpolate(photos, size=(24, 24), mode="bicubic", align_corners=False).clamp(0, 1)
    expected = (expected - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    assert seen.shape == (5, 3, 24, 24)
    assert torch.allclose(seen, expected, atol=1e-6)


def test_batching_does_not_change_the_features():
    photos = torch.rand(7, 3, 8, 8)
    pool = lambda x: x.mean(dim=(2, 3))  # noqa: E731 - a stand-in for an image tower
    assert torch.allclose(enlarged_features(pool, photos, 16, MEAN, STD, batch_size=3),
                          enlarged_features(pool, photos, 16, MEAN, STD))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="images"):
        enlarged_features(lambda x: x, torch.rand(3, 8, 8), 16, MEAN, STD)
    with pytest.raises(ValueError, match="size"):
        enlarged_features(lambda x: x, torch.rand(2, 3, 8, 8), 0, MEAN, STD)
