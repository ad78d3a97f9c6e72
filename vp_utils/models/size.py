"""How big a model is."""
from __future__ import annotations

from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Every parameter, trainable or frozen."""
    return sum(p.numel() for p in model.parameters())
