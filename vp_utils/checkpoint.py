"""Checkpoints that are safe to load and that resume a run exactly.

A checkpoint is a plain dict of tensors, numbers and strings, so `torch.load(weights_only=True)`
can read it without running any pickled code. It is written to a temporary file and renamed,
so a run killed mid-save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    step: int = 0, **meta) -> Path:
    """Write model (and optimizer) state, the step reached and `meta` (plain values) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": _unwrap(model).state_dict(), "step": int(step), "meta": meta}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)
    return path


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    map_location: str | torch.device = "cpu") -> dict:
    """Restore `model` (and `optimizer`) in place from `path`; return the checkpoint's step and meta."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    _unwrap(model).load_state_dict(state["model"])
    if optimizer is not None:
        if "optimizer" not in state:
            raise ValueError(f"{path} holds no optimizer state, so the run cannot resume exactly")
        optimizer.load_state_dict(state["optimizer"])
    return {"step": state["step"], "meta": state["meta"]}


def sha256(path: str | Path) -> str:
    """The file's SHA-256, recorded beside shipped checkpoints so a changed file is caught."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper, so checkpoints do not depend on it."""
    return getattr(model, "module", model)
