"""Language-model objectives: predict each next token from the ones before it."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def next_token_loss(logits: torch.Tensor, ids: torch.Tensor, learn: torch.Tensor | None = None,
                    pad: int = 0) -> torch.Tensor:
    """Cross-entropy of logits[:, t] against ids[:, t + 1], over the positions that count:
    never padding, and only where `learn` (B, L) is True when given (e.g. the answer, not the
    question, as LLaVA trains)."""
    if logits.ndim != 3 or logits.shape[:2] != ids.shape:
        raise ValueError(f"logits must be (batch, length, vocab) matching ids {tuple(ids.shape)}, "
                         f"got {tuple(logits.shape)}")
    targets = ids[:, 1:]
    counts = targets != pad
    if learn is not None:
        counts &= learn[:, 1:]
    if not counts.any():
        raise ValueError("no target token to learn: every position is padding or excluded")
    return F.cross_entropy(logits[:, :-1][counts], targets[counts])
