"""Measuring models: accuracy, frozen features, linear probes and k-NN."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_images, check_non_empty, check_positive
from .data.photos import standardise


@torch.no_grad()
def predict(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 256,
            device: torch.device | str = "cpu") -> torch.Tensor:
    """fn applied to x in batches under no_grad, results concatenated on the CPU.
    Pass `model` for logits or `model.forward_features` (etc.) for frozen features."""
    check_non_empty(x, "x")
    check_positive(batch_size, "batch_size")
    return torch.cat([fn(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def enlarged_features(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, size: int, mean, std,
                      batch_size: int = 200, device: torch.device | str = "cpu") -> torch.Tensor:
    """`predict` for a pretrained model on small photos: each batch of images in [0, 1] is enlarged
    (bicubic) to the size x size the model was trained at and standardised with its per-channel
    mean and std on the device, so 10,000 CIFAR photos never sit in memory at 224 px. The model
    behind `fn` must already be on `device`."""
    check_images(images)
    check_positive(size, "size")

    def enlarged(x):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)  # bicubic overshoots
        return fn(standardise(x, mean, std))
    return predict(enlarged, images, batch_size, device)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
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

    _check_split(train_x, train_y, test_x, test_y)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    probe.fit(_flat(train_x), np.asarray(train_y))
    return float(probe.score(_flat(test_x), np.asarray(test_y)))


def knn_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 k: int = 20) -> float:
    """Accuracy of a majority vote among the k nearest training features by cosine similarity."""
    _check_split(train_x, train_y, test_x, test_y)
    if not 1 <= k <= len(train_x):
        raise ValueError(f"k must be between 1 and the {len(train_x)} training points, got {k}")
    train, test = F.normalize(torch.as_tensor(_flat(train_x)), dim=1), F.normalize(torch.as_tensor(_flat(test_x)), dim=1)
    neighbours = (test @ train.T).topk(k, dim=1).indices
    votes = torch.as_tensor(np.asarray(train_y))[neighbours]
    predicted = torch.mode(votes, dim=1).values
    return (predicted == torch.as_tensor(np.asarray(test_y))).float().mean().item()


def _flat(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(len(x), -1)


def _check_split(train_x, train_y, test_x, test_y) -> None:
    for name, data in (("train_x", train_x), ("test_x", test_x)):
        check_non_empty(data, name)
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError(f"features and labels differ in length: train {len(train_x)} vs {len(train_y)}, "
                         f"test {len(test_x)} vs {len(test_y)}")


def mask_iou(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Jaccard index |P and T| / |P or T| of boolean masks (..., H, W), one value per mask.
    A coarse predicted mask (a patch grid) is first stretched to the target's pixels."""
    predicted, target = torch.as_tensor(predicted).bool(), torch.as_tensor(target).bool()
    if predicted.ndim < 2 or target.ndim < 2 or predicted.shape[:-2] != target.shape[:-2]:
        raise ValueError(f"masks must be (..., H, W) with the same leading shape, got {tuple(predicted.shape)} "
                         f"and {tuple(target.shape)}")
    (h, w), (gh, gw) = target.shape[-2:], predicted.shape[-2:]
    if h % gh or w % gw:
        raise ValueError(f"a {gh}x{gw} mask does not tile a {h}x{w} target")
    predicted = predicted.repeat_interleave(h // gh, dim=-2).repeat_interleave(w // gw, dim=-1)
    union = (predicted | target).sum(dim=(-2, -1))
    return (predicted & target).sum(dim=(-2, -1)) / union.clamp_min(1)


def mean_iou(predicted: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """Semantic segmentation's mIoU: per class, |pred = c and true = c| / |pred = c or true = c|
    over all pixels, averaged over the classes that occur in the target or the prediction."""
    predicted, target = torch.as_tensor(predicted).long(), torch.as_tensor(target).long()
    if predicted.shape != target.shape:
        raise ValueError(f"label maps differ in shape: {tuple(predicted.shape)} vs {tuple(target.shape)}")
    check_positive(num_classes, "num_classes")
    ious = []
    for c in range(num_classes):
        union = ((predicted == c) | (target == c)).sum()
        if union > 0:
            ious.append((((predicted == c) & (target == c)).sum() / union).item())
    return float(np.mean(ious))


def patch_labels(maps: torch.Tensor, grid: int, mode: str = "majority") -> torch.Tensor:
    """Pixel maps (B, H, W) -> one value per patch of a grid x grid layout, raster order (B, grid*grid):
    the most frequent label ("majority") or the mean ("mean", for depth)."""
    b, h, w = maps.shape
    if h % grid or w % grid:
        raise ValueError(f"grid {grid} must divide the {h}x{w} maps")
    cells = torch.as_tensor(maps).reshape(b, grid, h // grid, grid, w // grid).permute(0, 1, 3, 2, 4).flatten(3)
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
        raise ValueError(f"features must be (batch, patches, dim) with targets (batch, patches), got "
                         f"{tuple(train_x.shape)}, {tuple(train_y.shape)} and test {tuple(test_x.shape)}")
    model = {"classify": lambda: LogisticRegression(max_iter=300), "regress": lambda: Ridge(alpha=alpha)}
    if task not in model:
        raise ValueError(f"unknown task {task!r}; choose from {sorted(model)}")
    probe = make_pipeline(StandardScaler(), model[task]())
    probe.fit(train_x.flatten(0, 1).numpy(), train_y.flatten().numpy())
    predicted = probe.predict(test_x.flatten(0, 1).numpy())
    return torch.as_tensor(predicted).reshape(test_x.shape[:2])
