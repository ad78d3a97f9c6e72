"""Measuring models: accuracy, frozen features, linear probes and k-NN."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_non_empty, check_positive


@torch.no_grad()
def predict(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 256,
            device: torch.device | str = "cpu") -> torch.Tensor:
    """fn applied to x in batches under no_grad, results concatenated on the CPU.
    Pass `model` for logits or `model.forward_features` (etc.) for frozen features."""
    check_non_empty(x, "x")
    check_positive(batch_size, "batch_size")
    return torch.cat([fn(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


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
