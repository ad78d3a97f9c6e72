"""Schedules over a run's steps: the learning rate's warm-up and cosine decay, and the same half
cosine as a ramp between two values (DINO's teacher momentum)."""
from __future__ import annotations

import math

from .lab.checks import check_positive


def cosine(step: int, total: int, warmup: int = 0) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay from 1 to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def cosine_ramp(step: int, total: int, start: float, end: float) -> float:
    """A value that moves from `start` (step 0) to `end` (step `total` and after) along half a
    cosine: DINO's schedule for the teacher momentum (0.996 -> 1) and the weight decay."""
    check_positive(total, "total")
    return end + (start - end) * cosine(step, total)
