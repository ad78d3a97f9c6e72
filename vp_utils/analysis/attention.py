"""Reading a ViT's attention: where information flows (rollout) and how far each head looks.

Both take the weights that `VisionTransformer.forward_features(x, return_attention=True)` returns:
one (B, heads, T, T) tensor per block, rows are queries and sum to 1, prefix tokens (CLS) first.
"""
from __future__ import annotations

import torch

from ..lab.checks import check_non_empty


def _check_attention(attn, name: str = "attention") -> torch.Tensor:
    if not isinstance(attn, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(attn).__name__}")
    if attn.ndim != 4 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError(f"{name} must have shape (batch, heads, tokens, tokens), got {tuple(attn.shape)}")
    return attn


def attention_rollout(attentions, discard_ratio: float = 0.0) -> torch.Tensor:
    """How much each input token flows into each output token through all layers (Abnar &
    Zuidema 2020): per layer, average the heads, add the identity for the residual path,
    renormalise the rows, then multiply the layers together. Returns (B, T, T); row 0 is what
    the CLS token ends up made of. `discard_ratio` zeroes the weakest weights of each layer
    first (a common de-noising, e.g. Gildenblat's vit-explain)."""
    check_non_empty(attentions, "attentions")
    if not 0 <= discard_ratio < 1:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    shape = _check_attention(attentions[0], "attentions[0]").shape
    if any(a.shape != shape for a in attentions):
        raise ValueError(f"every layer's attention must have one shape, got {[tuple(a.shape) for a in attentions]}")
    batch, tokens = shape[0], shape[-1]
    identity = torch.eye(tokens, dtype=attentions[0].dtype, device=attentions[0].device)
    rollout = identity.expand(batch, tokens, tokens)
    for attn in attentions:
        mixed = _discard_weakest(attn.mean(dim=1), discard_ratio) + identity
        rollout = (mixed / mixed.sum(dim=-1, keepdim=True)) @ rollout
    return rollout


def cls_attention_map(attn, grid) -> torch.Tensor:
    """What the CLS token (query 0) reads from each patch, laid out on the (rows, cols) grid:
    (..., T, T) -> (..., rows, cols). Takes one layer's weights (B, heads, T, T) or a rollout
    (B, T, T); the prefix tokens' own columns are dropped, so a map need not sum to 1."""
    if not isinstance(attn, torch.Tensor) or attn.ndim < 2 or attn.shape[-1] != attn.shape[-2]:
        got = tuple(attn.shape) if isinstance(attn, torch.Tensor) else type(attn).__name__
        raise ValueError(f"attention must be a tensor of shape (..., tokens, tokens), got {got}")
    rows, cols = (grid, grid) if isinstance(grid, int) else grid
    prefix = attn.shape[-1] - rows * cols
    if prefix < 1:
        raise ValueError(f"attention over {attn.shape[-1]} tokens has no CLS token in front of a {rows}x{cols} grid")
    return attn[..., 0, prefix:].reshape(*attn.shape[:-2], rows, cols)


def _discard_weakest(attn: torch.Tensor, ratio: float) -> torch.Tensor:
    count = int(attn[0].numel() * ratio)
    if count == 0:
        return attn
    flat = attn.flatten(1)
    threshold = flat.kthvalue(count, dim=1, keepdim=True).values
    return flat.masked_fill(flat <= threshold, 0).view_as(attn)


def patch_distances(grid, patch_size: int = 1) -> torch.Tensor:
    """(N, N) Euclidean distances between the centres of a (rows, cols) grid's patches, raster
    order, in patches (patch_size=1) or in pixels."""
    rows, cols = (grid, grid) if isinstance(grid, int) else grid
    centres = torch.cartesian_prod(torch.arange(rows), torch.arange(cols)).double()
    return torch.cdist(centres, centres) * patch_size


def mean_attention_distance(attn, grid, patch_size: int = 1) -> torch.Tensor:
    """Per head, how far a patch looks: the attention-weighted distance from each query patch to
    the patches it attends to, averaged over queries and images (the ViT paper's Fig. 7).
    Prefix tokens (CLS) have no place on the grid, so each row is renormalised over the patches:
    a head that mostly reads CLS is not thereby called local. Returns (heads,)."""
    _check_attention(attn)
    rows, cols = (grid, grid) if isinstance(grid, int) else grid
    patches = rows * cols
    prefix = attn.shape[-1] - patches
    if prefix < 0:
        raise ValueError(f"attention over {attn.shape[-1]} tokens cannot hold a {rows}x{cols} grid of patches")
    weights = attn[..., prefix:, prefix:].double()
    weights = weights / weights.sum(dim=-1, keepdim=True)
    distances = patch_distances((rows, cols), patch_size).to(weights.device)
    return (weights * distances).sum(dim=-1).mean(dim=(0, 2)).to(attn.dtype)  # over images and queries


def keep_mass(maps: torch.Tensor, fraction: float = 0.6) -> torch.Tensor:
    """DINO's way to turn an attention map into a mask: keep the highest-weighted cells until they
    hold `fraction` of the map's total mass. (..., rows, cols) -> boolean (..., rows, cols).
    A peaked map keeps few cells; a flat one keeps about `fraction` of them."""
    if not isinstance(maps, torch.Tensor) or maps.ndim < 2:
        raise ValueError(f"maps must be a tensor of shape (..., rows, cols), got {getattr(maps, 'shape', type(maps).__name__)}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    flat = maps.flatten(-2)
    values, order = flat.sort(dim=-1, descending=True)
    mass = values.cumsum(dim=-1) / values.sum(dim=-1, keepdim=True)
    kept_sorted = (mass - values / values.sum(dim=-1, keepdim=True)) < fraction  # mass before this cell < fraction
    kept = torch.zeros_like(kept_sorted).scatter(-1, order, kept_sorted)
    return kept.view_as(maps)
