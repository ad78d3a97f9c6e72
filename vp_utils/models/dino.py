"""DINO (Caron et al. 2021): self-distillation with no labels. A student ViT learns to match the
output distribution of a teacher ViT whose weights are an exponential moving average (EMA) of
the student's own; the teacher sees the global crops, the student every crop.

Module names follow the official code (facebookresearch/dino: `DINOHead` with `mlp`, `last_layer`;
`MultiCropWrapper` with `backbone` and `head`).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..lab.checks import check_int, check_non_empty


class DINOHead(nn.Module):
    """Projection head: an MLP (GELU) down to a bottleneck, L2-normalised, then a weight-normalised
    linear layer to `out_dim` logits ("prototypes"). With norm_last_layer the weight norms are
    frozen at 1, so each logit is a cosine similarity, which the paper found steadier. With use_bn
    a BatchNorm follows each hidden linear layer: it removes what all images of a batch share, so
    the outputs differ between images from the first step (an option of the official head)."""

    def __init__(self, in_dim: int, out_dim: int = 65536, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 nlayers: int = 3, norm_last_layer: bool = True, use_bn: bool = False):
        super().__init__()
        for value, name in ((in_dim, "in_dim"), (out_dim, "out_dim"), (hidden_dim, "hidden_dim"),
                            (bottleneck_dim, "bottleneck_dim"), (nlayers, "nlayers")):
            check_int(value, name, 1)
        widths = [in_dim] + [hidden_dim] * (nlayers - 1) + [bottleneck_dim]
        layers = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < nlayers - 1:
                layers += [nn.BatchNorm1d(b), nn.GELU()] if use_bn else [nn.GELU()]
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        magnitude = self.last_layer.parametrizations.weight.original0  # g, one norm per output row
        magnitude.data.fill_(1.0)
        magnitude.requires_grad = not norm_last_layer

    def forward(self, x):
        """(..., in_dim) -> (..., out_dim) logits; leading dims (patches too) are one batch."""
        z = F.normalize(self.mlp(x.reshape(-1, x.shape[-1])), dim=-1)
        return self.last_layer(z).reshape(*x.shape[:-1], -1)


class MultiCropWrapper(nn.Module):
    """Backbone then head over a list of crops of different sizes: the crops of one size run
    through the backbone together (one pass per resolution), their CLS features are joined and
    the head runs once. Returns one (B, out_dim) tensor per crop, in the input order.
    With a patch_head (iBOT, DINOv2) it also carries a learned mask token for hidden patches."""

    def __init__(self, backbone: nn.Module, head: nn.Module, patch_head: nn.Module | None = None):
        super().__init__()
        self.backbone, self.head, self.patch_head = backbone, head, patch_head
        if patch_head is not None:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, backbone.num_features))

    def encode(self, images, mask=None):
        """The backbone's output tokens (B, 1+N, D), CLS first. Where mask (B, N) is 1, the patch's
        embedding is swapped for the mask token before the blocks (its position embedding stays,
        so the model knows where the hidden patch was). DINOv2 takes both losses from this one pass."""
        if self.patch_head is None:
            raise ValueError("this wrapper has no patch_head")
        tokens = self.backbone.embed_patches(images)
        if mask is not None:
            if mask.shape != tokens.shape[:2]:
                raise ValueError(f"mask must be (batch, patches) = {tuple(tokens.shape[:2])}, got {tuple(mask.shape)}")
            hidden = mask[..., None].to(tokens.dtype)
            tokens = tokens + hidden * (self.mask_token - self.backbone.patch_embed(images))
        return self.backbone.forward_tokens(self.backbone.add_class_token(tokens))

    def patch_logits(self, images, mask=None):
        """iBOT's view: the patch head on every output patch token, (B, N, K), patches hidden
        where mask is 1 (see `encode`)."""
        return self.patch_head(self.encode(images, mask)[:, self.backbone.num_prefix_tokens:])

    def forward(self, crops):
        check_non_empty(crops, "crops")
        features, start = [], 0
        while start < len(crops):  # consecutive crops of one size go together
            end = start
            while end < len(crops) and crops[end].shape[-2:] == crops[start].shape[-2:]:
                end += 1
            tokens = self.backbone.forward_features(torch.cat(crops[start:end]))
            features.append(self.backbone.forward_head(tokens, pre_logits=True))
            start = end
        return list(self.head(torch.cat(features)).chunk(len(crops)))


class DINO(nn.Module):
    """A student MultiCropWrapper, its EMA teacher (a frozen copy that never gets gradients) and the
    teacher's running center; with a patch_head, DINOv2's iBOT branch too. Train the student's parameters; between optimiser steps
    `vp_utils.objectives.update_teacher` moves the teacher towards the student (`teacher_step` does
    it before each step, which brings in the step before)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, patch_head: nn.Module | None = None):
        super().__init__()
        self.student = MultiCropWrapper(backbone, head, patch_head)
        self.teacher = copy.deepcopy(self.student)  # student and teacher start equal
        self.teacher.requires_grad_(False)
        self.register_buffer("center", torch.zeros(1, _out_dim(head)))

    def forward(self, crops, n_global: int = 2):
        """Student logits for every crop and teacher logits for the first n_global (global) crops."""
        if not 1 <= check_int(n_global, "n_global") <= len(crops):
            raise ValueError(f"n_global must be between 1 and the {len(crops)} crops, got {n_global}")
        with torch.no_grad():
            teacher = self.teacher(crops[:n_global])
        return self.student(crops), teacher

    def forward_masked(self, images, mask):
        """iBOT: student patch logits for images with the masked patches hidden, and the teacher's
        for the same images unmasked (no gradient); (B, N, K) each."""
        with torch.no_grad():
            teacher = self.teacher.patch_logits(images)
        return self.student.patch_logits(images, mask), teacher


def _out_dim(head: nn.Module) -> int:
    last = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not last:
        raise ValueError("the head must end in an nn.Linear layer")
    return last[-1].out_features
