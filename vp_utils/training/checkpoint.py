"""Checkpoints that are safe to load and that resume a run exactly, and the few the project ships.

A checkpoint is a plain dict of tensors, numbers and strings, so `torch.load(weights_only=True)`
can read it without running any pickled code. Its SHA-256 is recorded beside it in PATH.sha256
(the format `sha256sum -c` reads) and checked before it is loaded, since torch does not check
its zip's CRCs: a flipped block would load silently. Both files go through fsynced temporary
files and renames, so a run killed mid-save, or a full disk, leaves the previous checkpoint whole.

When a notebook's claim needs more training than a notebook minute, it loads a checkpoint the
project trained with its own recipe: `export` copies a trainer run's weights to
`data/checkpoints/NAME.pt` with a record beside it (NAME.json: the command that made it, the
step, final loss, time, the loss a rerun should reach and SHA-256), and `load_shipped` refuses a
file whose hash differs. `check_rerun` holds a learner's rerun of that command to the record.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import platform
import re
from pathlib import Path

import torch
from torch import nn


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    step: int = 0, **meta) -> Path:
    """Write model (and optimizer) state, the step reached and `meta` (plain values) atomically,
    with the file's SHA-256 in PATH.sha256 beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": _unwrap(model).state_dict(), "step": int(step), "meta": meta}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    data = _serialise(state)
    # the checkpoint is renamed first: a kill between the two renames leaves the new record staged
    # as PATH.sha256.partial, and read_checkpoint finishes the save
    write_atomically({path: data, checksum_path(path): f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode()})
    return path


def checksum_path(path: str | Path) -> Path:
    """Where the SHA-256 of checkpoint `path` is recorded."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def write_atomically(files: dict[Path, bytes]) -> None:
    """Write each file to a fsynced temporary file first and rename them all, in order, only once
    every byte is on disk: a kill or a full disk mid-write leaves the old files whole."""
    staged = {}
    try:
        for path, data in files.items():
            staged[Path(path)] = _stage(Path(path), data)
    except OSError:
        for partial in staged.values():
            partial.unlink(missing_ok=True)
        raise
    for path, partial in staged.items():
        os.replace(partial, path)
    for folder in {path.parent for path in staged}:
        _fsync_folder(folder)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint at `path` as a dict, after checking its bytes against PATH.sha256."""
    path = Path(path)
    data = _read(path)
    digest = hashlib.sha256(data).hexdigest()
    _check_digest(path, data, digest, _recorded_sha256(path, digest), checksum_path(path).name)
    return _deserialise(path, data, map_location)


def restore(state: dict, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
            source: str | Path = "the checkpoint") -> dict:
    """Load a checkpoint dict into `model` (and `optimizer`) in place; returns its step and meta."""
    mismatch = _mismatch(_unwrap(model).state_dict(), state["model"])
    if mismatch:
        raise ValueError(f"{source} does not fit this {type(_unwrap(model)).__name__}: {mismatch}")
    _unwrap(model).load_state_dict(state["model"])
    if optimizer is not None:
        if "optimizer" not in state:
            raise ValueError(f"{source} holds no optimizer state, so the run cannot resume exactly")
        optimizer.load_state_dict(state["optimizer"])
    return {"step": state["step"], "meta": state.get("meta", {})}


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    map_location: str | torch.device = "cpu") -> dict:
    """Restore `model` (and `optimizer`) in place from `path` (hash checked); return the checkpoint's step and meta."""
    return restore(read_checkpoint(path, map_location), model, optimizer, path)


def sha256(path: str | Path) -> str:
    """The file's SHA-256, recorded beside checkpoints so a changed file is caught."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


SHIPPED = Path(__file__).resolve().parents[2] / "data" / "checkpoints"


def export(run: str | Path, name: str, shipped: Path = SHIPPED) -> Path:
    """Copy the weights of the trainer run in folder `run` to `shipped/NAME.pt`, with its record."""
    run = Path(run)
    path, record_path = _shipped_paths(name, shipped)
    state = read_checkpoint(run / "last.pt")
    meta = state["meta"]
    metrics = _metrics(run)
    last = metrics[-1]
    data = _serialise({"model": state["model"], "step": state["step"], "meta": meta})
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in meta.items()
                     if k in ("steps", "batch_size", "seed", "lr", "warmup", "clip", "image_size") and v is not None)
    record = {"recipe": meta["recipe"], "command": f"python -m vp_utils.training.trainer {meta['recipe']} {flags} --out RUN",
              "step": state["step"], "final_loss": round(last["loss"], 4), "train_seconds": round(last["seconds"]),
              "machine": f"{platform.machine()}, {meta.get('world_size', 1)} process(es), torch {torch.__version__}",
              **{k: meta.get(k) for k in ("device", "threads", "commit", "parent")},
              "rerun": rerun_target(metrics), "sha256": hashlib.sha256(data).hexdigest()}
    shipped.mkdir(parents=True, exist_ok=True)
    write_atomically({path: data, record_path: (json.dumps(record, indent=1) + "\n").encode()})
    return path


def rerun_target(metrics: list[dict], share: float = 0.1) -> dict:
    """What a rerun of the same command should reach: the mean loss over the last `share` of its
    logged steps, within twice those steps' standard deviation. One batch's loss is noisy, and
    another machine's thread count or BLAS changes the rounding, so a rerun follows the curve, not
    its digits. The band is never narrower than the record's rounding (1e-4): a run that ends at a
    loss of 0.0000 still gives a rerun room for its last digits."""
    tail = torch.tensor([m["loss"] for m in metrics[-max(2, int(len(metrics) * share)):]], dtype=torch.float64)
    return {"last_steps": len(tail), "mean_loss": round(tail.mean().item(), 4),
            "within": max(round(2 * tail.std().item(), 4), 1e-4)}


def check_rerun(run: str | Path, name: str, shipped: Path = SHIPPED) -> str:
    """Hold trainer run `run` (a rerun of shipped checkpoint `name`'s command) to the record: its
    mean loss over the same last steps must land within the recorded band. Returns the comparison;
    raises ValueError when the run is too short or lands outside."""
    target = shipped_record(name, shipped).get("rerun")
    if not target:
        raise ValueError(f"{name}.json records no rerun target; re-export it with its recipe")
    metrics = _metrics(Path(run))
    if len(metrics) < target["last_steps"]:
        raise ValueError(f"{run} logged {len(metrics)} steps, fewer than the {target['last_steps']} compared")
    reached = sum(m["loss"] for m in metrics[-target["last_steps"]:]) / target["last_steps"]
    verdict = (f"{name}: mean loss over the last {target['last_steps']} steps {reached:.4f}, "
               f"shipped {target['mean_loss']:.4f} +- {target['within']:.4f}")
    if abs(reached - target["mean_loss"]) > target["within"]:
        raise ValueError(verdict + ": outside the band (another command, or a changed recipe?)")
    return verdict


def record_flag(record: dict, flag: str) -> int:
    """The integer a shipped record's command gives `--flag` (record_flag(record, "batch-size"))."""
    found = re.search(rf"--{flag} (\d+)(?:\s|$)", record["command"])
    if found is None:
        raise KeyError(f"the command of {record.get('recipe', 'this record')} gives no integer --{flag}: "
                       f"{record['command']}")
    return int(found.group(1))


def _metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{run} holds no metrics.jsonl: not a trainer run folder")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_shipped(name: str, model: nn.Module, shipped: Path = SHIPPED) -> dict:
    """Load a shipped checkpoint into `model` after checking its SHA-256; returns its record."""
    path, record_path = _shipped_paths(name, shipped)
    if not path.is_file():
        raise FileNotFoundError(f"no shipped checkpoint {name!r} in {shipped} "
                                f"(need {path.name} and {record_path.name})")
    record = shipped_record(name, shipped)
    if not isinstance(record.get("sha256"), str):
        raise ValueError(f"{record_path} records no sha256, so {path.name} cannot be checked: "
                         f"re-export it with its recipe")
    data = _read(path)
    _check_digest(path, data, hashlib.sha256(data).hexdigest(), record["sha256"], record_path.name)
    restore(_deserialise(path, data, "cpu"), model, source=path)
    return record


def _shipped_paths(name: str, shipped: Path) -> tuple[Path, Path]:
    """NAME.pt and NAME.json in `shipped`; a name is a plain identifier, so it cannot reach outside."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str such as 'clip', got {type(name).__name__}")
    if not name.isidentifier():
        raise ValueError(f"name must be a plain identifier such as 'clip' (a checkpoint in {shipped}), got {name!r}")
    return shipped / f"{name}.pt", shipped / f"{name}.json"


def shipped_record(name: str, shipped: Path) -> dict:
    record_path = _shipped_paths(name, shipped)[1]
    if not record_path.is_file():
        raise FileNotFoundError(f"no shipped checkpoint {name!r} in {shipped} (need {record_path.name})")
    try:
        record = json.loads(record_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{record_path} is not a JSON record ({error})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{record_path} is not a JSON record (a {type(record).__name__}, expected an object)")
    return record


def _serialise(state: dict) -> bytes:
    """The checkpoint's bytes, made in memory: torch's zip writer turns a write error such as a full
    disk into an opaque message, a plain file write keeps the OSError."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _stage(path: Path, data: bytes) -> Path:
    """Write `data` to PATH.partial and fsync it; removed again if the write fails."""
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as error:
        partial.unlink(missing_ok=True)
        error.filename = error.filename or str(path)  # a failed write() names no file
        raise
    return partial


def _fsync_folder(folder: Path) -> None:
    """Make the renames in `folder` durable too (where the platform can open a folder)."""
    if hasattr(os, "O_DIRECTORY"):
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path.read_bytes()


def _recorded_sha256(path: Path, digest: str) -> str:
    """The SHA-256 recorded beside `path`; a save killed between its two renames left the new
    record staged, and if that one matches the file, the save is finished here."""
    record = checksum_path(path)
    if not record.is_file():
        raise ValueError(f"{path} has no {record.name} beside it, so it cannot be checked; if you trust it, "
                         f"record its hash with `sha256sum {path.name} > {record.name}` in {path.parent}")
    staged = record.with_name(record.name + ".partial")
    if _first_word(record) != digest and staged.is_file() and _first_word(staged) == digest:
        os.replace(staged, record)
    return _first_word(record)


def _first_word(path: Path) -> str:
    words = path.read_text(errors="replace").split()
    return words[0] if words else ""


def _check_digest(path: Path, data: bytes, digest: str, expected: str, record: str) -> None:
    """Refuse checkpoint bytes whose SHA-256 `digest` is not the one recorded in `record`."""
    if digest != expected:
        size = f"{len(data):,} bytes" if data else "empty"
        raise ValueError(f"{path} ({size}) does not match the SHA-256 recorded in {record}: it is damaged, "
                         f"partly written or changed since it was saved")


def _deserialise(path: Path, data: bytes, map_location) -> dict:
    """The checkpoint dict in `data` (already checked against its hash), read without pickled code."""
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise ValueError(f"{path} is not a readable checkpoint ({type(error).__name__}: {first_line})") from error
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or "step" not in state:
        raise ValueError(f"{path} is not a checkpoint of this project (expected a dict with model state and a step)")
    return state


def _mismatch(own: dict, saved: dict) -> str:
    """What differs between a model's state dict and a saved one, in a line; empty when they fit."""
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    if missing or unexpected:
        return (f"{len(missing)} of its {len(own)} tensors missing from the checkpoint, {len(unexpected)} unexpected "
                f"(first: {(missing + unexpected)[0]!r})")
    reshaped = [k for k in own if tuple(own[k].shape) != tuple(getattr(saved[k], "shape", ()))]
    if reshaped:
        k = reshaped[0]
        return (f"{len(reshaped)} tensors of another shape (first: {k!r}, "
                f"{tuple(getattr(saved[k], 'shape', ()))} saved, {tuple(own[k].shape)} expected)")
    return ""


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper, so checkpoints do not depend on it."""
    return getattr(model, "module", model)
