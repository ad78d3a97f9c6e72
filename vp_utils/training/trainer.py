"""The command-line trainer for the long recipes, on one process or many.

    python -m vp_utils.training.trainer mae --steps 2000 --out runs/mae
    torchrun --nproc_per_node 4 -m vp_utils.training.trainer mae --steps 2000 --out runs/mae
    python -m vp_utils.training.trainer mae --steps 2000 --out runs/mae --resume   # carries on from runs/mae/last.pt

Recipes: the names in vp_utils.training.RECIPES (vit, mae, simclr, clip, clip_vit, dino, dinov2, fusion).
Under torchrun every process builds the same global batch from (seed, step) and trains on its
slice; DistributedDataParallel averages the gradients, so the run equals one process on the
whole batch. Checkpoints hold plain state (`weights_only=True` loads them), the step and the
run's settings, with their SHA-256 beside them, and every random draw is a function of
(seed, step), so a resumed run repeats the uninterrupted one exactly. Metrics go to
OUT/metrics.jsonl, one JSON object per step.

The device is kept fed: --workers processes (default 0 on a CPU, whose cores train, and 2-4 beside
a GPU) render the batches of the coming steps while the current one trains, into pinned memory
that is copied to the GPU without blocking, and the losses stay on the device until they are read
back every LOG_EVERY steps. --amp trains in bf16 autocast on a CUDA GPU.

Every run is guarded: a folder that holds a run is only continued (--resume) or replaced
(--overwrite); a resume must match the checkpoint's recipe, data and schedule
(--allow-schedule-change lets --steps, --lr, --warmup and --clip differ); a non-finite loss stops
the run with its last finite checkpoint kept. Each refusal is one line and exit status 2; a run
that fails part-way (divergence, a full disk) says so in one line with exit status 1.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from ..lab.environment import apply_threads
from .checkpoint import checksum_path, read_checkpoint, restore, save_checkpoint, write_atomically
from .recipes import BATCH_SIZE, CLIP, RECIPES, WARMUP, Recipe, get_recipe
from .loop import as_metrics, fit

PROG = "python -m vp_utils.training.trainer"
# what a run trains on: a resume that changes one of these trains on other batches than the run did
DATA_FIELDS = ("recipe", "seed", "batch_size", "image_size")
# how it trains: --allow-schedule-change lets a resume change these
SCHEDULE_FIELDS = ("steps", "lr", "warmup", "clip")
# steps between reads of the loss on the host: each read waits for the device to finish its queue
LOG_EVERY = 10
# batches each worker keeps ready
PREFETCH = 2


class RunRefused(ValueError):
    """The trainer will not start this run; the message says why and what to pass instead."""


class RunFailed(RuntimeError):
    """The run stopped part-way; its last good checkpoint is kept."""


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
        """This process's equal slice of each global-batch tensor, where it was made (the CPU)."""
        if self.world_size == 1:
            return tuple(tensors)
        # a copy, so a worker hands over this slice's memory only, not the whole batch's
        return tuple(t.tensor_split(self.world_size)[self.rank].clone() for t in tensors)

    def to_device(self, tensors) -> tuple[torch.Tensor, ...]:
        """The tensors on this process's device; from pinned memory the copy does not wait."""
        return tuple(t.to(self.device, non_blocking=True) for t in tensors)

    def reduce(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of `value` over all processes (the global batch's loss), left on the device."""
        value = value.detach().float().clone()
        if self.world_size > 1:
            dist.all_reduce(value)
            value /= self.world_size
        return value

    def mean(self, value: torch.Tensor) -> float:
        """`reduce(value)` read back on the host (waits for the device)."""
        return self.reduce(value).item()

    def same_everywhere(self, model: nn.Module) -> bool:
        """Whether every process holds the same parameters (a checksum of each compared across them)."""
        if self.world_size == 1:
            return True
        sums = torch.stack([p.detach().double().sum() for p in model.parameters()])
        gathered = [torch.empty_like(sums) for _ in range(self.world_size)]
        dist.all_gather(gathered, sums)
        return all(torch.equal(g, sums) for g in gathered)

    def barrier(self) -> None:
        """Wait for every process: none writes to the run folder before all have checked it."""
        if self.world_size > 1:
            dist.barrier()

    def say(self, message: str) -> None:
        """One line on stderr, from the main process only."""
        if self.main:
            print(f"{PROG}: {message}", file=sys.stderr, flush=True)


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


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """One line, without the usage block (fourteen options fill a screen)."""
        _exit(2, f"{message} (see --help)")


def parse_args(argv=None) -> argparse.Namespace:
    parser = _Parser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--out", type=Path, required=True, help="folder for last.pt and metrics.jsonl")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="global batch, split across processes")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    parser.add_argument("--warmup", type=int, default=WARMUP)
    parser.add_argument("--clip", type=float, default=CLIP, help="gradient-norm clip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--save-every", type=int, default=500)
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true",
                          help="continue the run in OUT from OUT/last.pt (an empty OUT starts a new run)")
    existing.add_argument("--overwrite", action="store_true", help="replace the run in OUT with a new one")
    parser.add_argument("--allow-schedule-change", action="store_true",
                        help="let --resume change --steps, --lr, --warmup and --clip from the checkpoint's")
    parser.add_argument("--stop-after", type=int, help="leave after this many steps (a time-limited job), keeping "
                                                       "the schedule of --steps; --resume carries on")
    parser.add_argument("--device", help="default: this process's GPU, else the CPU")
    parser.add_argument("--workers", type=int, help="processes preparing the coming batches (default: 0 on a CPU, "
                                                    "whose cores train; 2-4 beside a GPU)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast on a CUDA GPU (default: fp32)")
    args = parser.parse_args(argv)
    problem = next(_argument_problems(args), None)
    if problem:
        parser.error(problem)
    return args


def _argument_problems(args: argparse.Namespace):
    """Each argument the run could not use, as a line naming it and what was expected."""
    for name in ("steps", "batch_size", "save_every", "image_size", "stop_after"):
        value = getattr(args, name)
        if value is not None and value < 1:
            yield f"--{name.replace('_', '-')} must be positive, got {value}"
    if args.warmup < 0:
        yield f"--warmup must be 0 or more, got {args.warmup}"
    for name in ("lr", "clip"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            yield f"--{name} must be a positive number, got {value}"
    if not 0 <= args.seed < 2**32:
        yield f"--seed must be in [0, 2**32), got {args.seed}"
    if args.out.exists() and not args.out.is_dir():
        yield f"--out {args.out} is a file; expected a folder, new or holding a run"
    if args.allow_schedule_change and not args.resume:
        yield "--allow-schedule-change only applies with --resume"
    if args.workers is not None and args.workers < 0:
        yield f"--workers must be 0 or more, got {args.workers}"
    if args.device is not None:
        yield from _device_problems(args.device)
    if args.amp and _device_type(args.device) != "cuda":
        yield f"--amp is bf16 autocast for a CUDA GPU and this run is on {_device_type(args.device)}; leave out --amp"


def _device_type(name: str | None) -> str:
    """The kind of device a run with --device `name` trains on."""
    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return torch.device(name).type
    except RuntimeError:
        return name


def _device_problems(name: str):
    try:
        device = torch.device(name)
    except RuntimeError:
        yield f"--device {name!r} is not a device; expected cpu, cuda, cuda:N or mps"
        return
    if device.type == "cuda" and not torch.cuda.is_available():
        yield f"--device {name}: torch sees no CUDA GPU on this machine; use --device cpu"
    elif device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        yield f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0"
    elif device.type == "mps" and not torch.backends.mps.is_available():
        yield f"--device {name}: torch sees no Apple GPU (MPS) on this machine; use --device cpu"
    elif device.type not in ("cpu", "cuda", "mps"):
        yield f"--device {name}: expected cpu, cuda, cuda:N or mps"


def build(recipe: Recipe, args, proc: Process) -> tuple[nn.Module, torch.optim.Optimizer]:
    model = recipe.initial_model(args.seed)
    if proc.world_size > 1 and proc.device.type == "cuda":
        # batch norm over the global batch, as SimCLR trains; torch has no CPU SyncBatchNorm, so
        # on CPU each process normalises by its own shard's statistics
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(proc.device)
    return model, recipe.optimizer(model, peak_lr(recipe, args))


def peak_lr(recipe: Recipe, args) -> float:
    """--lr, or the recipe's own when it is not given."""
    return args.lr or recipe.lr


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) one recipe; returns {"step", "loss", "seconds"} of the last step run, with the
    timings `_run` adds ({} when the run had already reached --steps). Raises RunRefused before writing anything when the run
    folder, checkpoint or arguments do not allow the run, RunFailed when it stops part-way."""
    recipe = get_recipe(args.recipe)
    with process_group(args.device) as proc:
        if args.batch_size % proc.world_size:
            raise RunRefused(f"--batch-size {args.batch_size} must divide evenly over {proc.world_size} processes")
        model, optimizer = build(recipe, args, proc)
        start, metrics = _prepare(args, recipe, model, optimizer, proc)
        proc.barrier()
        if start == args.steps:
            proc.say(f"{args.out} is already at step {start} of --steps {args.steps}: nothing to train")
            return {}
        return _run(args, recipe, model, optimizer, proc, start, metrics)


def _run(args, recipe: Recipe, model: nn.Module, optimizer, proc: Process, start: int, metrics: list) -> dict:
    """Steps start..end through `fit`, logging each and saving every --save-every steps and at the
    end. Returns the last step's {"step", "loss", "seconds"} with "data_seconds" (time spent waiting
    for batches) and the same two for the first step alone (worker start-up, first kernels), which a
    benchmark leaves out."""
    net, loss_fn, before_step = _replicated(recipe, model, proc)
    end = min(args.steps, start + args.stop_after) if args.stop_after else args.steps
    checkpoint, saved, last = args.out / "last.pt", start or None, {}
    feed = _Feed(step_loader(recipe, args, proc, start, end), proc)
    began, pending, first = time.perf_counter(), [], {}
    quiet = 1.0 if sys.stderr.isatty() else 30.0  # a redirected log gets a line every 30 s, not 10 a second

    def after_step(step: int, step_metrics: dict) -> None:
        nonlocal last, pending, first, saved
        pending.append({"step": step + 1, "loss": proc.reduce(step_metrics["loss"]),
                        "seconds": time.perf_counter() - began, "lr": optimizer.param_groups[0]["lr"]})
        save = (step + 1) % args.save_every == 0 or step + 1 == end
        if save or step == start or (step + 1) % LOG_EVERY == 0:
            last = {**_read_back(pending, log, _kept(checkpoint, saved)),
                    "seconds": time.perf_counter() - began, "data_seconds": feed.waited}
            pending, first = [], first or {f"first_step_{k}": last[k] for k in ("seconds", "data_seconds")}
        if save:
            if not _finite(model):  # a finite loss can still take a step to inf
                raise RunFailed(f"the weights are not finite after step {step + 1}: stopped without "
                                f"saving; {_kept(checkpoint, saved)}")
            if not proc.same_everywhere(model):
                raise RunFailed(f"the processes' weights differ after step {step + 1} (their gradients were not "
                                f"averaged): stopped without saving; {_kept(checkpoint, saved)}")
            if proc.main:
                save_checkpoint(checkpoint, model, optimizer, step + 1, **_settings(args, recipe, proc))
            saved = step + 1

    try:
        with _metrics_log(args.out / "metrics.jsonl", metrics, start) if proc.main else nullcontext() as log:
            fit(net, feed, optimizer, args.steps, loss_fn=loss_fn, warmup=args.warmup, clip=args.clip,
                device=proc.device, desc=args.recipe, progress=proc.main, before_step=before_step,
                lr=peak_lr(recipe, args), start=start, stop=end, after_step=after_step, record=False, amp=args.amp,
                bar_options={"mininterval": quiet})
    except OSError as error:  # a full disk, say: the checkpoint is written atomically, so the last one is whole
        raise RunFailed(f"cannot write {error.filename or args.out} ({error.strerror or error}): stopped; "
                        f"{_kept(checkpoint, saved)}") from error
    finally:
        feed.close()
    return {**last, **first}


class _Objective(nn.Module):
    """A model and its recipe's objective as one module, for DistributedDataParallel: its forward
    is the whole loss, so gradients are averaged even where an objective calls parts of the model
    (DINOv2's encoder and heads, early fusion's token pass) rather than its forward."""

    def __init__(self, model: nn.Module, objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, batch):
        return self.objective(self.model, batch)


def _replicated(recipe: Recipe, model: nn.Module, proc: Process):
    """What `fit` trains: the model and the recipe's objective and hook as they are on one process;
    on several, the model inside DistributedDataParallel with its objective, the hook on the model."""
    if proc.world_size == 1:
        return model, recipe.loss, recipe.before_step
    net = DistributedDataParallel(_Objective(model, recipe.loss))
    hook = recipe.before_step and (lambda _, step, total: recipe.before_step(model, step, total))
    return net, lambda net, batch: net(batch), hook


def _read_back(pending: list[dict], log, kept: str) -> dict:
    """Read the pending steps' losses on the host at once (one wait for the device) and log each;
    the first non-finite one stops the run. Returns the last step's row."""
    for row, loss in zip(pending, torch.stack([row["loss"] for row in pending]).tolist()):
        if not math.isfinite(loss):
            raise RunFailed(f"the loss is {loss} at step {row['step']} (lr {row['lr']:g}): stopped; {kept}")
        row = {"step": row["step"], "loss": loss, "seconds": row["seconds"], "lr": row["lr"]}
        if log:
            log.write(json.dumps(row) + "\n")
    if log:
        log.flush()
    return {k: row[k] for k in ("step", "loss")}


class StepBatches(Dataset):
    """Item i is this process's shard of global batch `start + i`, made by the recipe from (seed, step)
    alone, so a worker process can make it ahead of time and exactly as the main process would."""

    def __init__(self, recipe: Recipe, args, proc: Process, start: int, end: int):
        self.recipe, self.proc, self.start, self.end = recipe, proc, start, end
        self.seed, self.size = args.seed, args.batch_size
        self.world = recipe.make_world(args.seed, args.image_size)

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return self.proc.shard(self.recipe.batch(self.world, self.seed, self.start + i, self.size))


def step_loader(recipe: Recipe, args, proc: Process, start: int, end: int) -> DataLoader:
    """The shards of steps start..end in order, prepared ahead by --workers processes (none: made in
    this process when asked for), in pinned memory when they go to a GPU."""
    workers = default_workers(proc.device) if args.workers is None else args.workers
    # one pass over the steps, so workers need not persist; the loader's own generator keeps it
    # from drawing its worker seed out of torch's global stream, which training may use
    return DataLoader(StepBatches(recipe, args, proc, start, end), batch_size=None, num_workers=workers,
                      prefetch_factor=PREFETCH if workers else None, pin_memory=proc.device.type == "cuda",
                      generator=torch.Generator())


def default_workers(device: torch.device) -> int:
    """0 on a CPU, where a worker takes a core from training (measured slower on 2 cores); beside a
    GPU, 2 to 4 as the machine's cores allow."""
    if device.type == "cpu":
        return 0
    return min(4, max(2, (os.cpu_count() or 2) // 4))


class _Feed:
    """The next step's shard on the device, and the seconds the loop has waited for shards so far."""

    def __init__(self, loader: DataLoader, proc: Process):
        self.shards, self.proc, self.waited = iter(loader), proc, 0.0

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, ...]:
        began = time.perf_counter()
        shard = self.proc.to_device(next(self.shards))
        self.waited += time.perf_counter() - began
        return shard

    def close(self) -> None:
        self.shards = None  # the loader's iterator stops its workers when dropped


def _finite(model: nn.Module) -> bool:
    return all(t.isfinite().all() for t in model.state_dict().values() if t.is_floating_point())


def _settings(args, recipe: Recipe, proc: Process) -> dict:
    """What a checkpoint records of its run (plain values): the arguments, the peak lr, the processes,
    the device and threads each used, the code's commit and the shipped checkpoint the model is built on."""
    return {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "lr": peak_lr(recipe, args), "world_size": proc.world_size, "device": str(proc.device),
            "threads": torch.get_num_threads(), "commit": code_commit(), "parent": recipe.parent}


def code_commit() -> str | None:
    """The commit of the checkout this package runs from, "+changes" when it has uncommitted edits;
    None outside a git checkout."""
    folder = Path(__file__).resolve().parent
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty=+changes", "--abbrev=12"], cwd=folder,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def _kept(checkpoint: Path, saved: int | None) -> str:
    return f"{checkpoint} keeps step {saved}" if saved else "no checkpoint was written"


def _prepare(args, recipe: Recipe, model: nn.Module, optimizer, proc: Process) -> tuple[int, list]:
    """Check the run folder against the arguments and load the checkpoint when resuming; returns
    the step to start from and the metrics rows logged so far. Only once every check has passed
    does it touch the folder: it creates it, or with --overwrite removes the old checkpoint."""
    checkpoint = args.out / "last.pt"
    if args.resume and checkpoint.exists():
        metrics = _read_metrics(args.out / "metrics.jsonl", proc)
        start = _resume(checkpoint, args, recipe, model, optimizer, proc)
    else:
        _check_new_run(args, proc)
        _check_recipe_fits(recipe, model, args, proc)
        start, metrics = 0, []
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunRefused(f"--out {args.out}: cannot create the folder ({error.strerror})") from error
    if args.overwrite and proc.main:
        for path in (checkpoint, checksum_path(checkpoint)):
            path.unlink(missing_ok=True)
    return start, metrics


def _check_new_run(args, proc: Process) -> None:
    """A new run starts only in a folder that holds none, unless --overwrite says to replace it."""
    files = (args.out / "last.pt", checksum_path(args.out / "last.pt"), args.out / "metrics.jsonl")
    held = ", ".join(path.name for path in files if path.is_file() and path.stat().st_size)
    if args.resume and held:
        raise RunRefused(f"--resume: {args.out / 'last.pt'} is missing, though {args.out} holds a run ({held}); "
                         f"pass --overwrite to start it again from step 0")
    if args.resume:
        proc.say(f"no checkpoint in {args.out} yet: starting at step 0")
    elif held and not args.overwrite:
        raise RunRefused(f"--out {args.out} already holds a run ({held}): pass --resume to continue it "
                         f"or --overwrite to replace it")


def _resume(checkpoint: Path, args, recipe: Recipe, model: nn.Module, optimizer, proc: Process) -> int:
    try:
        state = read_checkpoint(checkpoint, map_location=proc.device)
    except (ValueError, OSError) as error:
        raise RunRefused(f"--resume: {error}") from error
    step = state["step"]
    if args.steps < step:
        raise RunRefused(f"--steps {args.steps} is below the step the checkpoint reached ({step}); "
                         f"pass --steps {step} or more")
    _check_settings(state.get("meta", {}), recipe, args)
    try:
        restore(state, model, optimizer, checkpoint)
    except ValueError as error:
        raise RunRefused(f"--resume: {error}") from error
    return step


def _check_settings(meta: dict, recipe: Recipe, args) -> None:
    """Refuse a resume whose settings differ from those the checkpoint was trained with."""
    settings = {**vars(args), "lr": peak_lr(recipe, args)}
    if "lr" in meta and meta["lr"] is None:  # written before the peak lr itself was recorded
        meta = {**meta, "lr": recipe.lr}
    fields = DATA_FIELDS if args.allow_schedule_change else DATA_FIELDS + SCHEDULE_FIELDS
    for field in fields:
        flag = "recipe" if field == "recipe" else f"--{field.replace('_', '-')}"
        if meta.get(field) is None:
            raise RunRefused(f"--resume: {args.out / 'last.pt'} records no {field}, so the resume cannot be checked "
                             f"against it; start a new --out")
        if meta[field] != settings[field]:
            allow = " or pass --allow-schedule-change" if field in SCHEDULE_FIELDS else ""
            raise RunRefused(f"--resume: {flag} {settings[field]} differs from the checkpoint's {flag} {meta[field]}; "
                             f"resume with {flag} {meta[field]}{allow}, or start a new --out")


def _check_recipe_fits(recipe: Recipe, model: nn.Module, args, proc: Process) -> None:
    """Score one batch on a copy of the fresh model, so an image or batch size the recipe cannot
    train on is refused in one line before anything is written (the random state is left as it was)."""
    probe = copy.deepcopy(model)
    cuda = proc.device.type == "cuda"
    devices = [torch.cuda.current_device() if proc.device.index is None else proc.device.index] if cuda else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            world = recipe.make_world(args.seed, args.image_size)
            batch = proc.to_device(proc.shard(recipe.batch(world, args.seed, 0, args.batch_size)))
            loss = as_metrics(recipe.loss(probe, batch))["loss"]
    except (ValueError, RuntimeError) as error:
        raise RunRefused(f"--image-size {args.image_size} --batch-size {args.batch_size}: recipe {args.recipe} "
                         f"cannot train on these ({(str(error).strip().splitlines() or [''])[0]})") from error
    if proc.mean(loss) == 0:
        raise RunRefused(f"--batch-size {args.batch_size}: recipe {args.recipe}'s loss is exactly 0 on a fresh model "
                         f"at this batch size, so it has nothing to learn from; use a larger batch")


def _read_metrics(path: Path, proc: Process) -> list[tuple[int, str]]:
    """The metrics log as (step, line) rows. A torn last line (a run killed mid-write) is dropped,
    with a note; any other line that is not a step's JSON object is refused."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append((int(json.loads(line)["step"]), line))
        except (json.JSONDecodeError, TypeError, KeyError, ValueError):
            if number < len(lines):
                raise RunRefused(f"{path} line {number} is not a step's JSON object: {line[:60]!r}") from None
            proc.say(f"{path}: dropped its torn last line {line[:60]!r} (a run killed mid-write)")
    return rows


@contextmanager
def _metrics_log(path: Path, rows: list[tuple[int, str]], start: int):
    """The metrics log open for appending, first cut back to the steps up to `start` (a resumed run
    rewrites later ones, so the log matches the checkpoint)."""
    write_atomically({path: "".join(line + "\n" for step, line in rows if step <= start).encode()})
    with open(path, "a") as log:
        yield log


def _exit(status: int, message: str) -> None:
    """Leave with one line on stderr, from the main process only (every process reaches the same verdict)."""
    if int(os.environ.get("RANK", 0)) == 0:
        print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def main(argv=None) -> None:
    args = parse_args(argv)
    # VP_THREADS as in the notebooks; otherwise torch's own choice (torchrun already sets one per process)
    apply_threads(torch.get_num_threads())
    try:
        last = train(args)
    except RunRefused as error:
        _exit(2, str(error))
    except RunFailed as error:
        _exit(1, str(error))
    if int(os.environ.get("RANK", 0)) == 0 and last:
        print(f"{args.recipe}: step {last['step']}, loss {last['loss']:.4f}, {last['seconds']:.0f} s "
              f"({last['data_seconds'] / last['seconds']:.0%} waiting for batches); checkpoint {args.out / 'last.pt'}")


if __name__ == "__main__":
    main()
