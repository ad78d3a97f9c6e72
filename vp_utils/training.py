"""One small fit loop: a fixed number of steps (never a wall-clock budget, so results do not
depend on the machine), a progress bar, a cosine schedule and a metrics history."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_non_empty, check_positive
from .progress import progress_bar


class History(dict):
    """metric name -> list of values, one per logged step."""

    def log(self, **metrics: float) -> None:
        for name, value in metrics.items():
            self.setdefault(name, []).append(float(value))

    def final(self, name: str, fraction: float = 0.1) -> float:
        """Mean over the last `fraction` of the run: one noisy minibatch is no verdict."""
        values = check_non_empty(self[name], f"history[{name!r}]")
        tail = values[-max(1, int(len(values) * fraction)):]
        return sum(tail) / len(tail)


def batches(*tensors: torch.Tensor, batch_size: int, seed: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless shuffled minibatches of aligned tensors (a new permutation every epoch)."""
    n = len(check_non_empty(tensors[0], "tensors[0]"))
    if any(len(t) != n for t in tensors):
        raise ValueError(f"tensors must be equally long, got lengths {[len(t) for t in tensors]}")
    check_positive(batch_size, "batch_size")
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, max(n - batch_size, 0) + 1, batch_size):  # drop the ragged last batch
            pick = order[start:start + batch_size]
            yield tuple(t[pick] for t in tensors)


def classification_loss(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    """Cross-entropy and accuracy for an (images, labels) batch."""
    images, labels = batch
    logits = model(images)
    return {"loss": F.cross_entropy(logits, labels), "accuracy": (logits.argmax(1) == labels).float().mean()}


def cosine(step: int, total: int, warmup: int = 0) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay from 1 to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def fit(model: nn.Module, data: Iterator, optimizer: torch.optim.Optimizer, steps: int,
        loss_fn: Callable = classification_loss, warmup: int = 0, clip: float | None = None,
        device: torch.device | str = "cpu", desc: str = "train", progress: bool = True) -> History:
    """Train for `steps` minibatches from `data`; loss_fn(model, batch) returns a tensor or a
    dict with "loss" and other metrics. Returns the per-step History."""
    check_positive(steps, "steps")
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine(s, steps, warmup))
    history = History()
    model.to(device).train()
    bar = progress_bar(range(steps), desc, disable=not progress, leave=True)
    for _, batch in zip(bar, data):
        batch = tuple(t.to(device, non_blocking=True) for t in batch)
        out = loss_fn(model, batch)
        metrics = out if isinstance(out, dict) else {"loss": out}
        optimizer.zero_grad(set_to_none=True)
        metrics["loss"].backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        schedule.step()
        history.log(**{k: v.detach() for k, v in metrics.items()}, lr=schedule.get_last_lr()[0])
        bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", refresh=False)
    bar.close()
    return history


def fit_together(runs: dict[str, tuple], steps: int, workers: int | None = None, **fit_options) -> dict[str, History]:
    """`fit` every run in `runs`, `workers` of them at a time (default: torch's thread count), each
    on one thread of its own. A run is (model, data, optimizer), or (model, data, optimizer,
    options) where `options` is a dict of `fit` keywords that override the shared `fit_options`
    for that run (its own `loss_fn`, say). Runs share nothing, and one thread per run makes each
    repeat bit for bit whatever `workers` is: on two cores, two small nets train side by side in
    about the time of one, where two threads on one small net gain little."""
    workers = workers or torch.get_num_threads()
    check_positive(workers, "workers")
    for name, run in runs.items():
        if not isinstance(run, tuple) or len(run) not in (3, 4) or (len(run) == 4 and not isinstance(run[3], dict)):
            raise ValueError(f"run {name!r} must be (model, data, optimizer) or (model, data, optimizer, options dict)")
    threads = torch.get_num_threads()

    def one(name):
        torch.set_num_threads(1)  # the thread count is per thread: set it where the run executes
        model, data, optimizer, *own = runs[name]
        return fit(model, data, optimizer, steps, desc=str(name), **(fit_options | (own[0] if own else {})))

    try:
        with ThreadPoolExecutor(workers) as pool:
            return dict(zip(runs, pool.map(one, runs)))
    finally:
        torch.set_num_threads(threads)


def decay_groups(model: nn.Module, weight_decay: float, exempt: tuple[str, ...] = ("pos_embed", "cls_token")) -> list[dict]:
    """AdamW parameter groups as timm makes them: weight decay on weight matrices and kernels, none
    on biases and norms (every parameter of one dimension) nor on the tables named in `exempt` (a
    ViT's position embeddings and class token), whose pull towards zero would erase what they hold."""
    decayed, kept = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (kept if parameter.ndim < 2 or name.rsplit(".", 1)[-1] in exempt else decayed).append(parameter)
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": kept, "weight_decay": 0.0}]


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """teacher <- momentum * teacher + (1 - momentum) * student, parameter by parameter
    (momentum 1 freezes the teacher; 0 copies the student)."""
    if not 0 <= momentum <= 1:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    teacher_params, student_params = list(teacher.parameters()), list(student.parameters())
    if len(teacher_params) != len(student_params) or any(t.shape != s.shape for t, s in zip(teacher_params, student_params)):
        raise ValueError("teacher and student must have the same architecture")
    for t, s in zip(teacher_params, student_params):
        t.mul_(momentum).add_(s.detach(), alpha=1 - momentum)


def cosine_ramp(step: int, total: int, start: float, end: float) -> float:
    """A value that moves from `start` (step 0) to `end` (step `total` and after) along half a
    cosine: DINO's schedule for the teacher momentum (0.996 -> 1) and the weight decay."""
    check_positive(total, "total")
    return end + (start - end) * cosine(step, total)
