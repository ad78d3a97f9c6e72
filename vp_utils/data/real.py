"""Real labelled photos through torchvision, for `VP_SCALE=full`.

A dataset is downloaded once into `data/cache/` (git-ignored) when its server answers; a copy
already there is used offline. Without either, `DatasetUnavailable` is raised within about a
second, so a notebook can say so in one line and keep to the shapes world.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..lab.checks import check_choice, check_non_empty
from ..lab.environment import PROBE_SECONDS, reachable
from .shapes import ShapesWorld

CACHE = Path(__file__).resolve().parents[2] / "data" / "cache"


class DatasetUnavailable(RuntimeError):
    """The dataset is neither in the cache nor downloadable from here."""


def _cifar(hundred: bool):
    def read(root: Path, split: str, download: bool):
        from torchvision import datasets
        kind = datasets.CIFAR100 if hundred else datasets.CIFAR10
        data = kind(root, train=split == "train", download=download)
        return data.data, np.asarray(data.targets), list(data.classes)
    return read


def _stl10(root: Path, split: str, download: bool):
    from torchvision import datasets
    data = datasets.STL10(root, split=split, download=download)
    return data.data.transpose(0, 2, 3, 1), np.asarray(data.labels), list(data.classes)


@dataclass(frozen=True)
class RealDataset:
    """Where a torchvision dataset comes from and how to read it as (uint8 NHWC, labels, class names)."""
    host: str
    folder: str
    read: Callable[[Path, str, bool], tuple[np.ndarray, np.ndarray, list[str]]]


DATASETS = {"cifar10": RealDataset("www.cs.toronto.edu", "cifar-10-batches-py", _cifar(hundred=False)),
            "cifar100": RealDataset("www.cs.toronto.edu", "cifar-100-python", _cifar(hundred=True)),
            "stl10": RealDataset("ai.stanford.edu", "stl10_binary", _stl10)}


@dataclass
class LabelledImages:
    images: torch.Tensor  # (n, 3, H, W) float in [0, 1]
    labels: torch.Tensor  # (n,) long
    classes: list[str]


def real_dataset(name: str, split: str = "train", n: int | None = None, image_size: int | None = None,
                 root: str | Path | None = None) -> LabelledImages:
    """The first `n` images of a real dataset's split (all by default), resized to `image_size`."""
    check_choice(name, DATASETS, "dataset")
    check_choice(split, ("train", "test"), "split")
    source, root = DATASETS[name], Path(root or CACHE)
    have = (root / source.folder).exists()
    if not have and (os.environ.get("VP_OFFLINE") == "1" or not reachable((source.host, 443), PROBE_SECONDS)):
        raise DatasetUnavailable(f"{name} is not in {root} and {source.host} cannot be reached")
    root.mkdir(parents=True, exist_ok=True)
    images, labels, classes = source.read(root, split, download=not have)
    images, labels = images[:n], labels[:n]
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    if image_size is not None and x.shape[-1] != image_size:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return LabelledImages(x.clamp(0, 1), torch.from_numpy(labels).long(), classes)


def class_captions(classes, template: str = "a photo of {}") -> list[str]:
    """One caption per class name, CLIP's zero-shot prompt: "a photo of an airplane", "a photo of a
    cat"; underscores become spaces ("aquarium_fish" -> "an aquarium fish")."""
    captions = []
    for name in check_non_empty(list(classes), "classes"):
        name = name.replace("_", " ")
        captions.append(template.format(f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"))
    return captions


def real_for_scale(config, name: str, split: str = "train", n: int | None = None,
                   image_size: int | None = None) -> LabelledImages | None:
    """At `full`, the real dataset's split, announced in one line; None at `small`, or at `full`
    when it cannot be had (one line says why, and the notebook keeps to the shapes world)."""
    if config.scale != "full":
        return None
    try:
        data = real_dataset(name, split, n, image_size)
    except DatasetUnavailable as reason:
        print(f"VP_SCALE=full but {reason}: using the shapes world")
        return None
    print(f"VP_SCALE=full: {name} ({split}), {len(data.labels)} images, classes {data.classes}")
    return data


def real_train_test(config, name: str, n_train: int | None = None, image_size: int | None = None):
    """(train, test) splits through `real_for_scale`, or None; the test split is read only after
    the train split was."""
    train = real_for_scale(config, name, "train", n_train, image_size)
    test = None if train is None else real_for_scale(config, name, "test", image_size=image_size)
    return None if test is None else (train, test)


def images_for_scale(config, world: ShapesWorld, real: str, split: str = "train", n: int | None = None):
    """(images, labels) for the notebook's scale: the real dataset `real` at the world's image size
    where `real_for_scale` gives it, else the world's own `tensors()` (labels from its `target`)."""
    data = real_for_scale(config, real, split, n, world.image_size)
    return (data.images, data.labels) if data else world.tensors(n)
