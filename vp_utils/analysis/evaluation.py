"""Measuring models: accuracy, frozen features, linear probes and k-NN."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..lab.checks import check_callable, check_images, check_int, check_non_empty, check_tensor
from ..data.photos import normalise_pixels


@torch.no_grad()
def predict(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 256,
            device: torch.device | str = "cpu") -> torch.Tensor:
    """fn applied to x in batches under no_grad, results concatenated on the CPU.
    Pass `model` for logits or `model.forward_features` (etc.) for frozen features."""
    check_callable(fn, "fn")
    check_non_empty(check_tensor(x, "x"), "x")
    check_int(batch_size, "batch_size", 1)
    return torch.cat([fn(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def enlarged_features(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, size: int, mean, std,
                      batch_size: int = 200, device: torch.device | str = "cpu") -> torch.Tensor:
    """`predict` for a pretrained model on small photos: each batch of images in [0, 1] is enlarged
    (bicubic) to the size x size the model was trained at and standardised with its per-channel
    mean and std on the device, so 10,000 CIFAR photos never sit in memory at 224 px. The model
    behind `fn` must already be on `device`."""
    check_images(images)
    check_int(size, "size", 1)
    for name, values in (("mean", mean), ("std", std)):
        if np.shape(values) != (3,):
            raise ValueError(f"{name} must hold one value per channel (3), got {values!r}")

    def enlarged(x):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)  # bicubic overshoots
        return fn(normalise_pixels(x, mean, std))
    return predict(enlarged, images, batch_size, device)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} images vs {len(y)} labels")
    was_training = model.training
    model.eval()
    logits = predict(model, x, batch_size, next(model.parameters()).device)
    model.train(was_training)
    return (logits.argmax(1) == y).float().mean().item()


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 max_iter: int = 1000) -> float:
    """Test accuracy of a logistic regression on frozen, standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = _split(train_x, train_y, test_x, test_y)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=check_int(max_iter, "max_iter", 1)))
    probe.fit(train, np.asarray(train_y))
    return float(probe.score(test, np.asarray(test_y)))


def knn_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 k: int = 20) -> float:
    """Accuracy of a majority vote among the k nearest training features by cosine similarity."""
    train, test = (F.normalize(torch.as_tensor(x), dim=1) for x in _split(train_x, train_y, test_x, test_y))
    if check_int(k, "k", 1) > len(train):
        raise ValueError(f"k must be between 1 and the {len(train)} training points, got {k}")
    neighbours = (test @ train.T).topk(k, dim=1).indices
    votes = torch.as_tensor(np.asarray(train_y))[neighbours]
    predicted = torch.mode(votes, dim=1).values
    return (predicted == torch.as_tensor(np.asarray(test_y))).float().mean().item()


def _flat(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(len(x), -1)


def _split(train_x, train_y, test_x, test_y) -> tuple[np.ndarray, np.ndarray]:
    """The train and test features as (n, features) arrays, checked against their labels and each other."""
    flat = {}
    for part, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        check_non_empty(x, f"{part}_x")
        if len(x) != len(y):
            raise ValueError(f"{part}_x and {part}_y differ in length: {len(x)} vs {len(y)}")
        flat[part] = _flat(x)
        if not np.isfinite(flat[part]).all():
            raise ValueError(f"{part}_x contains NaN or infinite values")
    train, test = flat["train"], flat["test"]
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"train_x and test_x differ in feature size: {train.shape[1]} vs {test.shape[1]}")
    return train, test


def mask_iou(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Jaccard index |P and T| / |P or T| of boolean masks (..., H, W), one value per mask.
    A coarse predicted mask (a patch grid) is first stretched to the target's pixels."""
    predicted, target = torch.as_tensor(predicted).bool(), torch.as_tensor(target).bool()
    if predicted.ndim < 2 or target.ndim < 2 or predicted.shape[:-2] != target.shape[:-2]:
        raise ValueError(f"predicted and target must be masks (..., H, W) with the same leading shape, got "
                         f"{tuple(predicted.shape)} and {tuple(target.shape)}")
    (h, w), (gh, gw) = target.shape[-2:], predicted.shape[-2:]
    if h % gh or w % gw:
        raise ValueError(f"a {gh}x{gw} predicted mask does not tile a {h}x{w} target")
    predicted = predicted.repeat_interleave(h // gh, dim=-2).repeat_interleave(w // gw, dim=-1)
    union = (predicted | target).sum(dim=(-2, -1))
    return (predicted & target).sum(dim=(-2, -1)) / union.clamp_min(1)


def mean_iou(predicted: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """Semantic segmentation's mIoU: per class, |pred = c and true = c| / |pred = c or true = c|
    over all pixels, averaged over the classes that occur in the target or the prediction."""
    predicted, target = torch.as_tensor(predicted).long(), torch.as_tensor(target).long()
    if predicted.shape != target.shape:
        raise ValueError(f"predicted and target differ in shape: {tuple(predicted.shape)} vs {tuple(target.shape)}")
    check_int(num_classes, "num_classes", 1)
    for name, labels in (("predicted", predicted), ("target", target)):
        if labels.numel() and not 0 <= labels.min() <= labels.max() < num_classes:
            raise ValueError(f"{name} has labels outside 0..{num_classes - 1} (num_classes={num_classes})")
    ious = []
    for c in range(num_classes):
        union = ((predicted == c) | (target == c)).sum()
        if union > 0:
            ious.append((((predicted == c) & (target == c)).sum() / union).item())
    return float(np.mean(ious))


def patch_labels(maps: torch.Tensor, grid: int, mode: str = "majority") -> torch.Tensor:
    """Pixel maps (B, H, W) -> one value per patch of a grid x grid layout, raster order (B, grid*grid):
    the most frequent label ("majority") or the mean ("mean", for depth)."""
    maps = torch.as_tensor(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (batch, height, width), got {tuple(maps.shape)}")
    b, h, w = maps.shape
    if h % check_int(grid, "grid", 1) or w % grid:
        raise ValueError(f"grid {grid} must divide the {h}x{w} maps")
    cells = maps.reshape(b, grid, h // grid, grid, w // grid).permute(0, 1, 3, 2, 4).flatten(3)
    if mode == "mean":
        return cells.float().mean(-1).flatten(1)
    if mode == "majority":
        return cells.long().mode(-1).values.flatten(1)
    raise ValueError(f"unknown mode {mode!r}; choose from ['majority', 'mean']")


def dense_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, task: str = "classify",
                alpha: float = 1.0) -> torch.Tensor:
    """One linear map shared by every patch, fitted on frozen patch features (B, N, D) -> per-patch
    targets (B, N): logistic regression for labels ("classify", segmentation), ridge regression
    for values ("regress", depth). Returns the predictions for test_x, shape (B_test, N)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if train_x.ndim != 3 or test_x.ndim != 3 or train_x.shape[:2] != train_y.shape[:2]:
        raise ValueError(f"train_x and test_x must be (batch, patches, dim) and train_y (batch, patches), got "
                         f"train_x {tuple(train_x.shape)}, train_y {tuple(train_y.shape)}, "
                         f"test_x {tuple(test_x.shape)}")
    model = {"classify": lambda: LogisticRegression(max_iter=300), "regress": lambda: Ridge(alpha=alpha)}
    if task not in model:
        raise ValueError(f"unknown task {task!r}; choose from {sorted(model)}")
    probe = make_pipeline(StandardScaler(), model[task]())
    probe.fit(train_x.flatten(0, 1).numpy(), train_y.flatten().numpy())
    predicted = probe.predict(test_x.flatten(0, 1).numpy())
    return torch.as_tensor(predicted).reshape(test_x.shape[:2])
