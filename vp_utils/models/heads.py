"""Projection heads for self-supervised learning, and an encoder wearing one.

SimCLR trains the loss on z = g(h), a small head g on top of the encoder's pooled features h,
and then throws g away: h keeps what the loss would teach g to discard (colour, orientation).
"""
from __future__ import annotations

from torch import nn

from ..lab.checks import check_choice, check_int

HEADS = ("none", "linear", "mlp")


def projection_head(dim_in: int, hidden: int = 128, dim_out: int = 64, kind: str = "mlp") -> nn.Module:
    """SimCLR's head choices (Fig. 8): "mlp" = Linear-BN-ReLU-Linear, "linear", or "none" (identity)."""
    check_choice(kind, HEADS, "head kind")
    for name, value in (("dim_in", dim_in), ("hidden", hidden), ("dim_out", dim_out)):
        check_int(value, name, 1)
    if kind == "none":
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(dim_in, dim_out)
    return nn.Sequential(nn.Linear(dim_in, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, dim_out))


class Embedder(nn.Module):
    """An encoder with timm's `forward_features`/`forward_head(pre_logits=True)` plus a projection
    head: `features(x)` is h (what probes read), `forward(x)` is z (what the loss sees)."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def features(self, x):
        return self.encoder.forward_head(self.encoder.forward_features(x), pre_logits=True)

    def forward(self, x):
        return self.head(self.features(x))
