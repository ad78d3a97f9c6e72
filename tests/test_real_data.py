"""Real datasets for VP_SCALE=full: a cached copy is read offline, a missing one fails fast."""
import time

import numpy as np
import pytest
import torch

from vp_utils.data import ShapesWorld
from vp_utils.data import real
from vp_utils.lab.environment import Config

WORLD = ShapesWorld(image_size=32, objects=(1, 1), background="plain", target="shape", length=20)


def _config(scale):
    return Config(seed=0, scale=scale, device=torch.device("cpu"), threads=1, online=False)


@pytest.fixture
def cached(tmp_path, monkeypatch):
    """A dataset 'already downloaded' into tmp_path: 6 random 8x8 photos, its reads recorded."""
    reads = []

    def read(root, split, download):
        reads.append((root, split, download))
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8), np.arange(6) % 2, ["cat", "dog"]

    (tmp_path / "fake").mkdir()
    monkeypatch.setitem(real.DATASETS, "fake", real.RealDataset("unreachable.invalid", "fake", read))
    monkeypatch.setattr(real, "CACHE", tmp_path)
    return reads


def test_a_missing_dataset_fails_fast_offline(tmp_path):
    began = time.perf_counter()
    with pytest.raises(real.DatasetUnavailable, match="cifar10 is not in"):
        real.real_dataset("cifar10", root=tmp_path)
    assert time.perf_counter() - began < 2
    assert not any(tmp_path.iterdir())  # nothing half-downloaded


def test_a_cached_dataset_is_read_without_download_and_resized(cached, tmp_path):
    data = real.real_dataset("fake", "test", n=4, image_size=16)
    assert cached == [(tmp_path, "test", False)]
    assert data.images.shape == (4, 3, 16, 16) and data.images.dtype == torch.float32
    assert 0 <= data.images.min() and data.images.max() <= 1
    assert data.labels.tolist() == [0, 1, 0, 1] and data.classes == ["cat", "dog"]


def test_pixels_keep_their_values_at_the_native_size(cached):
    data = real.real_dataset("fake")
    rng = np.random.default_rng(0)
    expected = torch.from_numpy(rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)).permute(0, 3, 1, 2) / 255
    assert torch.equal(data.images, expected.float())


def test_the_scale_picks_the_world_or_the_real_data(cached, capsys):
    small_x, small_y = real.images_for_scale(_config("small"), WORLD, "fake", n=5)
    assert torch.equal(small_x, WORLD.tensors(5)[0])
    full_x, full_y = real.images_for_scale(_config("full"), WORLD, "fake", n=5)
    assert full_x.shape == (5, 3, 32, 32) and full_y.tolist() == [0, 1, 0, 1, 0]
    assert "fake (train), 5 images" in capsys.readouterr().out
    fallback_x, _ = real.images_for_scale(_config("full"), WORLD, "cifar100", n=5)
    assert torch.equal(fallback_x, small_x)
    assert "using the shapes world" in capsys.readouterr().out


def test_the_full_scale_reads_the_split_asked_for(cached, capsys):
    real.images_for_scale(_config("small"), WORLD, "fake", split="test", n=3)
    assert cached == []  # the small scale never opens the dataset
    real.images_for_scale(_config("full"), WORLD, "fake", split="test", n=3)
    real.images_for_scale(_config("full"), WORLD, "fake", n=3)
    assert [split for _, split, _ in cached] == ["test", "train"]
    assert "fake (test), 3 images" in capsys.readouterr().out


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="dataset"):
        real.real_dataset("imagenet")
    with pytest.raises(ValueError, match="split"):
        real.real_dataset("cifar10", split="val")


def test_class_captions_name_each_class_with_its_article():
    assert real.class_captions(["airplane", "cat", "aquarium_fish"]) == [
        "a photo of an airplane", "a photo of a cat", "a photo of an aquarium fish"]
    assert real.class_captions(["dog"], template="{} on grass") == ["a dog on grass"]
    with pytest.raises(ValueError, match="classes"):
        real.class_captions([])


def test_train_test_splits_at_full_scale_only(cached, capsys):
    assert real.real_train_test(_config("small"), "fake") is None and cached == []
    train, test = real.real_train_test(_config("full"), "fake", n_train=4)
    assert [c[1] for c in cached] == ["train", "test"] and len(train.labels) == 4 and len(test.labels) == 6
    assert real.real_train_test(_config("full"), "cifar100") is None  # not cached, not reachable
    assert capsys.readouterr().out.count("using the shapes world") == 1  # one line, and no test split tried
