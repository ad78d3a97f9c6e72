"""The one training loop: a fixed number of steps (never a wall-clock budget, so results do not
depend on the machine), a warm-up and cosine schedule, gradient clipping, a progress bar and a
metrics history. Notebooks call it directly or through `run`; the command-line trainer calls it
with its processes, checkpoints and logs around it."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import torch
from torch import nn

from ..lab.checks import check_non_empty, check_positive
from ..lab.progress import progress_bar
from ..objectives.classification import classification_loss
from ..schedules import cosine


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


def as_metrics(out) -> dict:
    """A loss function's output as metrics: recipes return either the loss or a dict holding it
    under "loss" beside the terms it is made of."""
    return out if isinstance(out, dict) else {"loss": out}


def fit(model: nn.Module, data: Iterator, optimizer: torch.optim.Optimizer, steps: int,
        loss_fn: Callable = classification_loss, warmup: int = 0, clip: float | None = None,
        device: torch.device | str = "cpu", desc: str = "train", progress: bool = True, *,
        before_step: Callable[[nn.Module, int, int], None] | None = None, lr: float | None = None,
        start: int = 0, stop: int | None = None, after_step: Callable[[int, dict], None] | None = None,
        record: bool = True, amp: bool = False, bar_options: dict | None = None) -> History:
    """Train on the minibatches of `data`, one per step, for steps `start`..`stop` (default: all
    `steps`) of a `steps`-long schedule. loss_fn(model, batch) returns a tensor or a dict with
    "loss" and other metrics. Each step: the learning rate (peak `lr`, default the optimiser's
    first, times the warm-up and cosine factor), `before_step(model, step, steps)` (an EMA teacher,
    say), the loss, backward, clipping to `clip`, the optimiser's step, then
    `after_step(step, metrics)`. Returns the per-step History (empty with record=False, which
    leaves the metrics on the device for `after_step` to read when it likes)."""
    check_positive(steps, "steps")
    stop = steps if stop is None else stop
    # the peak stays with the optimiser, so a second `fit` on it schedules from the same peak
    peaks = [group.setdefault("initial_lr", group["lr"]) if lr is None else lr for group in optimizer.param_groups]
    history = History()
    model.to(device).train()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext()
    bar = progress_bar(range(start, stop), desc, disable=not progress, leave=True, initial=start, total=steps,
                       **(bar_options or {}))
    for step, batch in zip(bar, data):
        for group, peak in zip(optimizer.param_groups, peaks):
            group["lr"] = peak * cosine(step, steps, warmup)
        if before_step is not None:
            before_step(model, step, steps)
        batch = tuple(t.to(device, non_blocking=True) for t in batch)
        with autocast:
            out = loss_fn(model, batch)
        metrics = as_metrics(out)
        optimizer.zero_grad(set_to_none=True)
        metrics["loss"].backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if record:
            history.log(**{k: v.detach() for k, v in metrics.items()}, lr=optimizer.param_groups[0]["lr"])
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", refresh=False)
        if after_step is not None:
            after_step(step, metrics)
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
