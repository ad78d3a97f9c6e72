"""Checkpoints that are safe to load and that resume a run exactly, and the few the project ships.

A checkpoint is a plain dict of tensors, numbers and strings, so `torch.load(weights_only=True)`
can read it without running any pickled code. It is written to a temporary file and renamed,
so a run killed mid-save leaves the previous checkpoint intact.

When a notebook's claim needs more training than a notebook minute, it loads a checkpoint the
project trained with its own recipe: `export` copies a trainer run's weights to
`data/checkpoints/NAME.pt` with a record beside it (NAME.json: the command that made it, the
step, final loss, time and SHA-256), and `load_shipped` refuses a file whose hash differs.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
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


SHIPPED = Path(__file__).resolve().parents[1] / "data" / "checkpoints"


def export(run: str | Path, name: str, shipped: Path = SHIPPED) -> Path:
    """Copy the weights of the trainer run in folder `run` to `shipped/NAME.pt`, with its record."""
    run = Path(run)
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    meta = state["meta"]
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    path = shipped / f"{name}.pt"
    shipped.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state["model"], "step": state["step"], "meta": meta}, path)
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in meta.items()
                     if k in ("steps", "batch_size", "seed", "lr", "warmup", "image_size") and v is not None)
    record = {"recipe": meta["recipe"], "command": f"python -m vp_utils.trainer {meta['recipe']} {flags} --out RUN",
              "step": state["step"], "final_loss": round(last["loss"], 4), "train_seconds": round(last["seconds"]),
              "machine": f"{platform.machine()}, {meta.get('world_size', 1)} process(es), torch {torch.__version__}",
              "sha256": sha256(path)}
    path.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    return path


def load_shipped(name: str, model: nn.Module, shipped: Path = SHIPPED) -> dict:
    """Load a shipped checkpoint into `model` after checking its SHA-256; returns its record."""
    path = shipped / f"{name}.pt"
    record_path = path.with_suffix(".json")
    if not path.is_file() or not record_path.is_file():
        raise FileNotFoundError(f"no shipped checkpoint {name!r} in {shipped} (need {path.name} and {record_path.name})")
    record = json.loads(record_path.read_text())
    if sha256(path) != record["sha256"]:
        raise ValueError(f"{path} does not match the SHA-256 in {record_path.name}: re-export it with its recipe")
    load_checkpoint(path, model)
    return record


def shipped_model(name: str, shipped: Path = SHIPPED) -> tuple[nn.Module, dict]:
    """Build the model of the recipe that trained shipped checkpoint `name`, load it (hash checked)
    and put it in eval mode; returns (model, record)."""
    from .recipes import get_recipe  # recipes build models that may themselves load shipped weights

    record_path = shipped / f"{name}.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"no shipped checkpoint {name!r} in {shipped} (need {record_path.name})")
    model = get_recipe(json.loads(record_path.read_text())["recipe"]).build()
    return model.eval(), load_shipped(name, model, shipped)


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper, so checkpoints do not depend on it."""
    return getattr(model, "module", model)
