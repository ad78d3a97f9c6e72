"""Self-distillation without labels (DINO, iBOT, DINOv2): a student learns to predict the output
distribution of a teacher that is an average of its own past weights.

Nothing here stops the trivial solution (every image -> the same output) by itself: centering
keeps one output dimension from winning, sharpening (a low teacher temperature) keeps the output
from going uniform, and only the two together avoid collapse (Caron et al. 2021, Sec. 5.3).
DINOv2 swaps the running center for Sinkhorn-Knopp and adds the iBOT patch loss and KoLeo.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..checks import check_non_empty, check_positive


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
    """The running mean of the teacher's logits over batches (an EMA), shape (1, K)."""
    if not 0 <= momentum < 1:
        raise ValueError(f"center momentum must be in [0, 1), got {momentum}")
    _check_logits(teacher_logits, "teacher logits")
    return center * momentum + teacher_logits.mean(dim=0, keepdim=True) * (1 - momentum)


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
