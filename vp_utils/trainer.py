"""The command-line trainer for the long recipes, on one process or many.

    python -m vp_utils.trainer mae --steps 2000 --out runs/mae
    torchrun --nproc_per_node 4 -m vp_utils.trainer mae --steps 2000 --out runs/mae
    python -m vp_utils.trainer mae --steps 4000 --out runs/mae --resume   # carries on from runs/mae/last.pt

Recipes: the names in vp_utils.recipes.RECIPES (mae, simclr, clip, clip_vit, dino, dinov2, fusion).
Under torchrun every process builds the same global batch from (seed, step) and trains on its
slice; DistributedDataParallel averages the gradients, so the run equals one process on the
whole batch. Checkpoints hold plain state (`weights_only=True` loads them) and the step, and
every random draw is a function of (seed, step), so a resumed run repeats the uninterrupted
one exactly. Metrics go to OUT/metrics.jsonl, one JSON object per step.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .checkpoint import load_checkpoint, save_checkpoint
from .env import apply_threads
from .progress import progress_bar
from .recipes import RECIPES, Recipe, get_recipe
from .training import cosine


@dataclass(frozen=True)
class Process:
    """This process's place in the run: rank, world size and device."""
    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """This process's equal slice of each global-batch tensor."""
        return tuple(t.tensor_split(self.world_size)[self.rank].to(self.device) for t in tensors)

    def mean(self, value: torch.Tensor) -> float:
        """The mean of `value` over all processes (the global batch's loss)."""
        value = value.detach().clone()
        if self.world_size > 1:
            dist.all_reduce(value)
            value /= self.world_size
        return value.item()


@contextmanager
def process_group(device: str | None = None):
    """Join the torchrun process group when launched by torchrun; otherwise a one-process run."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if world_size == 1:
        yield Process(0, 1, device)
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield Process(dist.get_rank(), world_size, device)
    finally:
        dist.destroy_process_group()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vp_utils.trainer", description=__doc__.split("\n")[0])
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--out", type=Path, required=True, help="folder for last.pt and metrics.jsonl")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch, split across processes")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--clip", type=float, default=3.0, help="gradient-norm clip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    parser.add_argument("--stop-after", type=int, help="leave after this many steps (a time-limited job), keeping "
                                                       "the schedule of --steps; --resume carries on")
    parser.add_argument("--device", help="default: this process's GPU, else the CPU")
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "save_every", "image_size", "stop_after"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def build(recipe: Recipe, args, proc: Process) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(args.seed)  # the same initial weights on every process
    model = recipe.build()
    if proc.world_size > 1 and proc.device.type == "cuda":
        # batch norm over the global batch, as SimCLR trains; torch has no CPU SyncBatchNorm, so
        # on CPU each process normalises by its own shard's statistics
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(proc.device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr or recipe.lr, weight_decay=recipe.weight_decay,
                                  betas=recipe.betas)
    return model, optimizer


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) one recipe; returns {"step", "loss", "seconds"} of the last step run."""
    recipe = get_recipe(args.recipe)
    with process_group(args.device) as proc:
        if args.batch_size % proc.world_size:
            raise ValueError(f"--batch-size {args.batch_size} must divide evenly over {proc.world_size} processes")
        model, optimizer = build(recipe, args, proc)
        checkpoint, start = args.out / "last.pt", 0
        if args.resume and checkpoint.exists():
            start = load_checkpoint(checkpoint, model, optimizer, map_location=proc.device)["step"]
        net = DistributedDataParallel(model) if proc.world_size > 1 else model
        world = recipe.make_world(args.seed, args.image_size)
        end = min(args.steps, start + args.stop_after) if args.stop_after else args.steps
        log = _metrics_log(args.out / "metrics.jsonl", start) if proc.main else None
        began, last = time.perf_counter(), {}
        quiet = 1.0 if sys.stderr.isatty() else 30.0  # a redirected log gets a line every 30 s, not 10 a second
        for step in progress_bar(range(start, end), args.recipe, disable=not proc.main, initial=start,
                                 total=args.steps, mininterval=quiet):
            loss = _step(recipe, net, model, optimizer, proc.shard(recipe.batch(world, args.seed, step, args.batch_size)),
                         step, args)
            last = {"step": step + 1, "loss": proc.mean(loss), "seconds": time.perf_counter() - began}
            if log:
                log.write(json.dumps({**last, "lr": optimizer.param_groups[0]["lr"]}) + "\n")
                log.flush()
            if proc.main and ((step + 1) % args.save_every == 0 or step + 1 == end):
                save_checkpoint(checkpoint, model, optimizer, step + 1, world_size=proc.world_size,
                                **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()})
        if log:
            log.close()
    return last


def _step(recipe: Recipe, net: nn.Module, model: nn.Module, optimizer, shard, step: int, args) -> torch.Tensor:
    """One optimiser step at the scheduled learning rate; returns this process's loss."""
    for group in optimizer.param_groups:
        group["lr"] = (args.lr or recipe.lr) * cosine(step, args.steps, args.warmup)
    if recipe.before_step is not None:
        recipe.before_step(net, step, args.steps)
    loss = recipe.loss(net, shard)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), args.clip)
    optimizer.step()
    return loss


def _metrics_log(path: Path, start: int):
    """Open the metrics log for appending, first dropping any steps after `start` (a resumed run
    rewrites them, so the log matches the checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= start] \
        if path.exists() else []
    path.write_text("".join(line + "\n" for line in kept))
    return open(path, "a")


def main(argv=None) -> None:
    args = parse_args(argv)
    # VP_THREADS as in the notebooks; otherwise torch's own choice (torchrun already sets one per process)
    apply_threads(torch.get_num_threads())
    last = train(args)
    if int(os.environ.get("RANK", 0)) == 0 and last:
        print(f"{args.recipe}: step {last['step']}, loss {last['loss']:.4f}, {last['seconds']:.0f} s; "
              f"checkpoint {args.out / 'last.pt'}")


if __name__ == "__main__":
    main()
