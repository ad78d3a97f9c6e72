"""Input checks that fail early and name the problem (a shape error deep inside a conv is no help)."""
from __future__ import annotations

from collections.abc import Collection

import torch


def check_images(x, name: str = "images", channels: int | None = 3) -> torch.Tensor:
    """`x` must be a float tensor of shape (batch, channels, height, width)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (batch, channels, height, width), got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got {x.shape[1]} (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    return x


def check_choice(value, choices: Collection, name: str):
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose from {sorted(choices)}")
    return value


def check_positive(value, name: str):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def check_non_empty(data, name: str):
    if len(data) == 0:
        raise ValueError(f"{name} is empty")
    return data
