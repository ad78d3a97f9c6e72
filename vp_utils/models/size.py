"""How big a model is."""
from __future__ import annotations

from torch import nn


def count_parameters(model: nn.Module, trainable: bool = False) -> int:
    """Every parameter, trainable or frozen; with `trainable`, only those that learn."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)
