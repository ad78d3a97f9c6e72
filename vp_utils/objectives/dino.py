"""Self-distillation without labels (DINO, iBOT, DINOv2): a student learns to predict the output
distribution of a teacher that is an average of its own past weights.

Nothing here stops the trivial solution (every image -> the same output) by itself: centering
keeps one output dimension from winning, sharpening (a low teacher temperature) keeps the output
from going uniform, and only the two together avoid collapse (Caron et al. 2021, Sec. 5.3).
DINOv2 swaps the running center for Sinkhorn-Knopp and adds the iBOT patch loss and KoLeo.
"""
from __future__ import annotations

import math

from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F

from torch import nn

from ..data.batching import patch_count, step_generator, step_images
from ..data.multicrop import multicrop, permute_channels
from ..data.shapes import ShapesWorld, standardise
from ..lab.checks import check_int, check_non_empty, check_pair, check_positive
from ..models.dino import DINO
from ..schedules import cosine_ramp
from .distributed import is_distributed, world_size


def teacher_targets(logits: torch.Tensor, center: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's target distribution: center (subtract the running mean output), then sharpen
    (softmax at a low temperature). (B, K) logits -> (B, K) probabilities."""
    check_positive(temperature, "teacher temperature")
    _check_logits(logits, "teacher logits")
    if center.shape[-1] != logits.shape[-1]:
        raise ValueError(f"center has {center.shape[-1]} dimensions, the logits {logits.shape[-1]}")
    return F.softmax((logits - center) / temperature, dim=-1)


@torch.no_grad()
def update_center(center: torch.Tensor, teacher_logits: torch.Tensor, momentum: float = 0.9) -> torch.Tensor:
    """The running mean of the teacher's logits over batches (an EMA), shape (1, K). Under torchrun the
    batch mean is taken over every process's shard (equal shards), as one process on the whole batch."""
    if not 0 <= momentum < 1:
        raise ValueError(f"center momentum must be in [0, 1), got {momentum}")
    _check_logits(teacher_logits, "teacher logits")
    batch = teacher_logits.mean(dim=0, keepdim=True)
    if is_distributed():
        dist.all_reduce(batch)
        batch = batch / world_size()
    return center * momentum + batch * (1 - momentum)


def dino_loss(student_logits: Sequence[torch.Tensor], teacher_probs: Sequence[torch.Tensor],
              student_temperature: float = 0.1) -> torch.Tensor:
    """Cross-entropy H(teacher, student) averaged over every (teacher view, student view) pair of
    *different* views. One tensor (B, K) per crop: the teacher sees the global crops only, the
    student every crop, global crops first, so student view i is teacher view i for i < n_global
    and those same-view pairs are skipped (predicting yourself teaches nothing)."""
    check_non_empty(student_logits, "student_logits")
    check_non_empty(teacher_probs, "teacher_probs")
    check_positive(student_temperature, "student temperature")
    if len(teacher_probs) > len(student_logits):
        raise ValueError(f"the teacher has {len(teacher_probs)} views, more than the student's {len(student_logits)}")
    shapes = {tuple(t.shape) for t in (*student_logits, *teacher_probs)}
    if len(shapes) != 1:
        raise ValueError(f"every view must have one shape (batch, K), got {sorted(shapes)}")
    log_probs = [F.log_softmax(s / student_temperature, dim=-1) for s in student_logits]
    terms = [-(q * log_probs[v]).sum(dim=-1).mean()
             for t, q in enumerate(teacher_probs) for v in range(len(log_probs)) if v != t]
    if not terms:
        raise ValueError("dino_loss needs at least two views: one teacher view and another student view")
    return torch.stack(terms).mean()


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy (nats) of the rows of a (B, K) probability matrix: log K when uniform,
    0 when one-hot. Cross-entropy minus this is the KL divergence, which makes collapse visible."""
    return -(probs * probs.clamp_min(1e-12).log()).sum(dim=-1).mean()


def ibot_patch_loss(student_patch_logits: torch.Tensor, teacher_patch_probs: torch.Tensor, mask: torch.Tensor,
                    student_temperature: float = 0.1) -> torch.Tensor:
    """iBOT's masked-image-modelling loss (Zhou et al. 2022): the student sees an image with some
    patches masked and predicts, at each *masked* position, the teacher's distribution for that
    patch of the unmasked image. (B, N, K) logits and probs, mask (B, N) with 1 = masked; the
    cross-entropy is averaged over each image's masked patches, then over images that have any."""
    if student_patch_logits.ndim != 3 or student_patch_logits.shape != teacher_patch_probs.shape:
        raise ValueError(f"student logits and teacher probs must both be (batch, patches, K), got "
                         f"{tuple(student_patch_logits.shape)} and {tuple(teacher_patch_probs.shape)}")
    if mask.shape != student_patch_logits.shape[:2]:
        raise ValueError(f"mask must be (batch, patches) = {tuple(student_patch_logits.shape[:2])}, got {tuple(mask.shape)}")
    check_positive(student_temperature, "student temperature")
    mask = mask.float()
    per_patch = -(teacher_patch_probs * F.log_softmax(student_patch_logits / student_temperature, dim=-1)).sum(-1)
    counts = mask.sum(dim=1)
    if not (counts > 0).any():
        raise ValueError("the mask hides no patch: there is nothing to predict")
    per_image = (per_patch * mask).sum(dim=1) / counts.clamp_min(1)
    return per_image[counts > 0].mean()


def koleo_loss(features: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """The Kozachenko-Leonenko regulariser of DINOv2 (Sablayrolles et al. 2019): minus the mean
    log distance from each L2-normalised feature to its nearest neighbour in the batch. Lowering
    it pushes close features apart, so they spread evenly over the sphere."""
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must be (batch >= 2, dim), got {tuple(features.shape)}")
    x = F.normalize(features, dim=-1, eps=eps)
    similarity = x @ x.T
    similarity.fill_diagonal_(-2.0)  # never one's own neighbour
    nearest = similarity.argmax(dim=1)
    distances = (x - x[nearest]).norm(dim=-1)
    return -(distances + eps).log().mean()


@torch.no_grad()
def sinkhorn_knopp(logits: torch.Tensor, temperature: float = 0.04, iterations: int = 3) -> torch.Tensor:
    """Teacher targets by Sinkhorn-Knopp (SwAV; DINOv2's replacement for centering): alternately
    normalise the columns (prototypes) and the rows (images) of exp(logits / T) so that every
    prototype gets an equal share of the batch. Returns (B, K) rows that sum to 1."""
    check_positive(temperature, "temperature")
    check_positive(iterations, "iterations")
    _check_logits(logits, "logits")
    q = torch.exp((logits - logits.max()) / temperature).T  # (K, B); the shift cancels in the normalising
    batch, prototypes = q.shape[1], q.shape[0]
    q /= q.sum()
    for _ in range(iterations):
        q /= q.sum(dim=1, keepdim=True) * prototypes  # each prototype: mass 1/K
        q /= q.sum(dim=0, keepdim=True) * batch  # each image: mass 1/B
    return (q * batch).T


def _check_logits(logits, name: str) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ValueError(f"{name} must be a tensor of shape (batch, K), got "
                         f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
    return logits


def block_patch_mask(batch: int, grid: int, ratio: tuple[float, float] = (0.1, 0.5), share: float = 0.5,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, grid * grid) masks, 1 = hidden, as DINOv2 draws them: `share` of the images are
    masked, each in rectangular blocks (BEiT's masking), so that a hidden patch's neighbours are
    often hidden too and copying them is no answer. The masked images' target shares spread evenly
    over `ratio` (DINOv2: half the global crops, 10-50% of their patches); the rest stay whole."""
    check_int(batch, "batch", 1)
    check_int(grid, "grid", 1)
    lo, hi = check_pair(ratio, "ratio")
    if not 0 <= lo <= hi <= 1:
        raise ValueError(f"ratio must be (lo, hi) with 0 <= lo <= hi <= 1, got {ratio}")
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share}")
    masked = round(batch * share)
    edges = torch.linspace(lo, hi, masked + 1)
    targets = edges[:-1] + (edges[1:] - edges[:-1]) * torch.rand(masked, generator=generator)
    masks = torch.zeros(batch, grid, grid)
    for row, target in zip(torch.randperm(batch, generator=generator)[:masked], targets):
        _mask_blocks(masks[row], int(target * grid * grid), generator)
    return masks.flatten(1)


def _mask_blocks(mask: torch.Tensor, target: int, generator: torch.Generator | None, tries: int = 10) -> None:
    """Hide rectangles of `mask` (in place) of at least 4 patches and aspect ratio 0.3-3.3 until
    `target` patches are hidden, or `tries` placements in a row add nothing (as BEiT does)."""
    grid, failures = mask.shape[0], 0
    while mask.sum() < target and failures < tries:
        left = target - int(mask.sum())
        u = torch.rand(4, generator=generator).tolist()
        area = min(4, left) + (left - min(4, left)) * u[0]
        aspect = math.exp(math.log(0.3) + 2 * math.log(1 / 0.3) * u[1])
        h, w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        top, side = int(u[2] * (grid - h + 1)), int(u[3] * (grid - w + 1))
        block = mask[top:top + h, side:side + w]
        new = h * w - int(block.sum())
        if 0 < h < grid and 0 < w < grid and 0 < new <= left:
            block.fill_(1)
            failures = 0
        else:
            failures += 1


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


def update_teacher(dino: DINO, momentum: float) -> None:
    """The teacher takes in the student's latest weights (an EMA with this momentum)."""
    ema_update(dino.teacher, dino.student, momentum)


def teacher_step(model: DINO, step: int, total: int, momentum: tuple[float, float] = (0.97, 1.0)) -> None:
    """The hook before each optimiser step: the teacher takes in the student's last update, its
    momentum rising along a half cosine from momentum[0] to momentum[1] over the run."""
    update_teacher(model, cosine_ramp(step, total, *momentum))


def dino_views(images: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    """Two global crops at the images' size and two local ones at half of it, each with its colour
    channels in a random order, so that colour alone cannot tell one scene's crops from another's."""
    size = images.shape[-1]
    return permute_channels(multicrop(images, size, size // 2, generator=generator), generator)


def distill(dino: DINO, student: list[torch.Tensor], teacher: list[torch.Tensor], centering: bool = True,
            teacher_temp: float = 0.04, student_temp: float = 0.1) -> dict[str, torch.Tensor]:
    """DINO's loss on the class tokens' head outputs: the teacher's centered (unless `centering` is
    off) and sharpened at `teacher_temp`, the running center updated. Returns the loss with what
    tells collapse apart: the targets' entropy, the KL left, and how many output dimensions are used."""
    center = dino.center if centering else torch.zeros_like(dino.center)
    targets = [teacher_targets(t, center, teacher_temp) for t in teacher]
    if centering:
        dino.center = update_center(dino.center, torch.cat(teacher), momentum=0.9)
    loss = dino_loss(student, targets, student_temp)
    targets = torch.cat(targets)
    h = entropy(targets)
    return {"loss": loss, "teacher entropy": h, "KL": loss.detach() - h,
            "dimensions in use": entropy(targets.mean(dim=0, keepdim=True)).exp()}


def dino_objective(model: DINO, crops, **switches) -> dict[str, torch.Tensor]:
    """The training step's loss on a batch of crops (global ones first); `switches` are `distill`'s
    ablations (centering=False, teacher_temp=...)."""
    return distill(model, *model(list(crops)), **switches)


def dino_batch(world: ShapesWorld, seed: int, step: int, size: int) -> tuple[torch.Tensor, ...]:
    """Global batch `step`: `dino_views` of its standardised scenes."""
    return tuple(dino_views(standardise(step_images(world, step, size)), step_generator(seed, step)))


def dinov2_batch(world: ShapesWorld, seed: int, step: int, size: int, mask_share: float = 0.5) -> tuple[torch.Tensor, ...]:
    """DINO's crops, then iBOT masks for the global crops: `mask_share` of them (DINOv2: half) hide
    10-50% of their patches in blocks."""
    crops = dino_batch(world, seed, step, size)
    grid = math.isqrt(patch_count(world))
    return (*crops, block_patch_mask(2 * size, grid, share=mask_share, generator=step_generator(seed + 1, step)))


def dinov2_objective(model: DINO, batch, ibot_weight: float = 1.0, koleo_weight: float = 0.1) -> dict[str, torch.Tensor]:
    """DINOv2's loss from one student pass over the masked global crops: DINO's on the class token
    (with the local crops), `ibot_weight` x iBOT's at the masked patches (teacher targets by
    Sinkhorn-Knopp over those patches), and `koleo_weight` x KoLeo on each global crop's class
    tokens. A weight of 0 is that term's ablation."""
    *crops, mask = batch
    globals_, mask = torch.cat(crops[:2]), mask.to(crops[0].device)
    first = model.student.backbone.num_prefix_tokens  # the patch tokens follow the class token
    with torch.no_grad():
        teacher = model.teacher.encode(globals_)
        teacher_patches = model.teacher.patch_head(teacher[:, first:])
    student = model.student.encode(globals_, mask)
    student_cls = list(model.student.head(student[:, 0]).chunk(2)) + model.student(list(crops[2:]))
    parts = distill(model, student_cls, model.teacher.head(teacher[:, 0]).chunk(2))
    hidden = mask.bool()
    ibot = student.new_zeros(())  # a batch with nothing hidden (mask_share=0) has no iBOT term
    if hidden.any():
        targets = torch.zeros_like(teacher_patches)
        targets[hidden] = sinkhorn_knopp(teacher_patches[hidden], temperature=0.04)
        ibot = ibot_patch_loss(model.student.patch_head(student[:, first:]), targets, mask, 0.1)
    koleo = sum(koleo_loss(c) for c in student[:, 0].chunk(2)) / 2
    return {"loss": parts["loss"] + ibot_weight * ibot + koleo_weight * koleo, "DINO": parts["loss"].detach(),
            "iBOT": ibot.detach(), "KoLeo": koleo.detach()}
