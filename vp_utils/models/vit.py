"""The Vision Transformer (Dosovitskiy et al. 2020), with timm's module names so state dicts line up.

An image is cut into patches; each patch becomes a token by one linear map; a learned position
embedding says where it came from; a class token (CLS) joins them; pre-norm transformer blocks
mix the tokens; the CLS token (or the mean patch token) is classified. MAE, DINO, DINOv2, CLIP
and early fusion all reuse this one module. Optional register tokens (Darcet et al. 2024) follow
the class token: extra learned tokens that no output reads, a scratch space for global work.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..lab.checks import check_choice, check_fields, check_images, check_int, check_positive


def _check_patchable(images: torch.Tensor, patch: int, channels: int | None = None) -> torch.Tensor:
    check_int(patch, "patch", 1)
    check_images(images, channels=channels)
    height, width = images.shape[-2:]
    if height % patch or width % patch:
        raise ValueError(f"patch size {patch} must divide the image size, got {height}x{width} images")
    return images


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, patch*patch*C): patches in raster order, each flattened as
    (row, column, channel), MAE's layout, so a reconstruction loss can compare pixels per patch."""
    b, c, h, w = _check_patchable(images, patch).shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(patches: torch.Tensor, patch: int, channels: int = 3) -> torch.Tensor:
    """The inverse of `patchify` for a square grid: (B, N, patch*patch*C) -> (B, C, H, W)."""
    if not isinstance(patches, torch.Tensor) or patches.ndim != 3:
        raise ValueError(f"patches must be a tensor of shape (batch, patches, patch*patch*channels), "
                         f"got {getattr(patches, 'shape', type(patches).__name__)}")
    b, n, d = patches.shape
    side = math.isqrt(n)
    if side * side != n or d != patch * patch * channels:
        raise ValueError(f"expected a square number of patches of {patch}*{patch}*{channels} values each, "
                         f"got shape {tuple(patches.shape)}")
    x = patches.reshape(b, side, side, patch, patch, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, channels, side * patch, side * patch)


class PatchEmbed(nn.Module):
    """Patches to tokens. A conv with kernel = stride = patch is one linear map applied to every
    patch (the same as `patchify` followed by nn.Linear), only faster."""

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768,
                 bias: bool = True):
        super().__init__()
        for name, value in (("img_size", img_size), ("patch_size", patch_size), ("in_chans", in_chans),
                            ("embed_dim", embed_dim)):
            check_int(value, name, 1)
        if img_size % patch_size:
            raise ValueError(f"patch_size {patch_size} must divide img_size {img_size}")
        self.patch_size, self.in_chans = patch_size, in_chans
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def forward(self, x):
        """(B, C, H, W) -> (B, N, D) with N = (H / patch) * (W / patch), raster order."""
        _check_patchable(x, self.patch_size, self.in_chans)
        return self.proj(x).flatten(2).transpose(1, 2)


def resample_pos_embed(pos_embed: torch.Tensor, new_grid: tuple[int, int], old_grid: tuple[int, int]) -> torch.Tensor:
    """Patch position embeddings (1, old_h*old_w, D) resized bicubically to another grid, as
    timm's resample_abs_pos_embed does, so one model serves several image sizes."""
    new_grid, old_grid = tuple(new_grid), tuple(old_grid)
    if new_grid == old_grid:
        return pos_embed
    if pos_embed.ndim != 3 or pos_embed.shape[1] != old_grid[0] * old_grid[1]:
        raise ValueError(f"pos_embed must be (1, {old_grid[0]}*{old_grid[1]}, dim) for old_grid {old_grid}, "
                         f"got {tuple(pos_embed.shape)}")
    dim = pos_embed.shape[-1]
    table = pos_embed.reshape(1, *old_grid, dim).permute(0, 3, 1, 2).float()  # bicubic needs float32
    table = F.interpolate(table, size=new_grid, mode="bicubic", antialias=True)
    return table.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)


def sincos_pos_embed(grid: int, dim: int, class_token: bool = True) -> torch.Tensor:
    """MAE's fixed 2-D sine-cosine position embeddings, (1, [1+] grid*grid, dim), raster order:
    the first half of the channels encodes the column, the second half the row, each as sines
    and cosines of geometrically spaced frequencies; the class token's row is zero."""
    check_positive(grid, "grid")
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4 (sin and cos for rows and columns), got {dim}")
    frequencies = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                                indexing="ij")

    def encode(position):
        angles = position.reshape(-1, 1) * frequencies
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    table = torch.cat([encode(cols), encode(rows)], dim=1)
    if class_token:
        table = torch.cat([torch.zeros(1, dim, dtype=torch.float64), table])
    return table.float().unsqueeze(0)


class Attention(nn.Module):
    """Multi-head self-attention: softmax(Q K^T / sqrt(d)) V in each head, heads concatenated."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True):
        super().__init__()
        if dim % check_int(num_heads, "num_heads", 1):
            raise ValueError(f"embed_dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, return_attention: bool = False, mask: torch.Tensor | None = None):
        """(B, N, D) -> (B, N, D); with return_attention also the weights (B, heads, N, N).
        `mask` (N, N), or broadcastable to (B, heads, N, N), says which keys each query may see:
        boolean with True = allowed (see `causal_mask`), or a float added to the scores."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if return_attention:  # spelled out, to hand back the weights that the fused kernel never stores
            scores = (q * self.scale) @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
            weights = scores.softmax(dim=-1)
            x = weights @ v
        else:
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = self.proj(x.transpose(1, 2).reshape(b, n, d))
        return (x, weights) if return_attention else x


def causal_mask(n: int, device=None) -> torch.Tensor:
    """(n, n) boolean mask letting token i attend to tokens 0..i only: text read left to right."""
    check_int(n, "n", 0)
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x), the GELU approximation OpenAI's CLIP was trained with."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"gelu": nn.GELU, "quick_gelu": QuickGELU}


class Mlp(nn.Module):
    """The per-token feed-forward network: expand, GELU, project back."""

    def __init__(self, dim: int, hidden_dim: int, act: str = "gelu"):
        super().__init__()
        check_choice(act, ACTIVATIONS, "act")
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = ACTIVATIONS[act]()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """A learned per-channel scale on a residual branch, started small (CaiT; DINOv2 uses it)
    so that each block starts close to the identity and deep ViTs train stably."""

    def __init__(self, dim: int, init_values: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x):
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 init_values: float | None = None, act: str = "gelu", norm_eps: float = 1e-6):
        super().__init__()
        check_positive(mlp_ratio, "mlp_ratio")
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.ls1 = nn.Identity() if init_values is None else LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act)
        self.ls2 = nn.Identity() if init_values is None else LayerScale(dim, init_values)

    def forward(self, x, return_attention: bool = False, mask: torch.Tensor | None = None):
        if return_attention:
            attended, weights = self.attn(self.norm1(x), return_attention=True, mask=mask)
        else:
            attended = self.attn(self.norm1(x), mask=mask)
        x = x + self.ls1(attended)
        x = x + self.ls2(self.mlp(self.norm2(x)))
        return (x, weights) if return_attention else x


def run_blocks(blocks, tokens: torch.Tensor, mask: torch.Tensor | None = None, return_attention: bool = False):
    """Tokens through a stack of Blocks; returns (tokens, every block's attention weights if asked,
    else an empty list: the fused attention kernel is faster and stores none)."""
    attentions = []
    for block in blocks:
        if return_attention:
            tokens, weights = block(tokens, return_attention=True, mask=mask)
            attentions.append(weights)
        else:
            tokens = block(tokens, mask=mask)
    return tokens, attentions


@dataclass(frozen=True)
class ViTConfig:
    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000  # 0: no head, forward returns pooled features
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    class_token: bool = True
    reg_tokens: int = 0  # register tokens after the class token (timm's vit_*_reg4_dinov2: 4)
    class_position: bool = True  # the class token has a learned position; False: only patches do (timm: no_embed_class)
    global_pool: str = "token"  # or "avg": mean of the patch tokens
    init_values: float | None = None  # LayerScale's start; None: no LayerScale
    pre_norm: bool = False  # a LayerNorm before the blocks (CLIP's ln_pre)
    patch_bias: bool = True  # CLIP's patch embedding has no bias
    act: str = "gelu"  # or "quick_gelu" (OpenAI CLIP)
    norm_eps: float = 1e-6  # timm's; CLIP's LayerNorms use torch's default 1e-5


class VisionTransformer(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        check_fields(config, depth=0, num_heads=1, num_classes=0, reg_tokens=0)
        check_choice(config.global_pool, ("token", "avg"), "global_pool")
        if config.global_pool == "token" and not config.class_token:
            raise ValueError("global_pool='token' needs class_token=True; use global_pool='avg' without one")
        self.config = config
        dim = self.num_features = config.embed_dim
        self.num_prefix_tokens = int(config.class_token) + config.reg_tokens
        self.patch_embed = PatchEmbed(config.img_size, config.patch_size, config.in_chans, dim, config.patch_bias)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if config.class_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, config.reg_tokens, dim)) if config.reg_tokens else None
        # one learned position per patch, and the prefix's first unless class_position is off
        # (as in timm's vit_*_patch16_224; its DINOv2 with registers gives the prefix none)
        self.prefix_positions = self.num_prefix_tokens if config.class_position else 0
        self.pos_embed = nn.Parameter(torch.zeros(1, self.prefix_positions + self.patch_embed.num_patches, dim))
        self.norm_pre = nn.LayerNorm(dim, eps=config.norm_eps) if config.pre_norm else nn.Identity()
        self.blocks = nn.Sequential(*[
            Block(dim, config.num_heads, config.mlp_ratio, config.qkv_bias, config.init_values, config.act,
                  config.norm_eps)
            for _ in range(config.depth)])
        self.norm = nn.LayerNorm(dim, eps=config.norm_eps)
        self.head = nn.Linear(dim, config.num_classes) if config.num_classes > 0 else nn.Identity()
        self._init_weights()

    def embed_patches(self, x):
        """Patch tokens plus their position embeddings, (B, N, D), resized to the input's grid.
        MAE drops some of these before the class token joins."""
        tokens = self.patch_embed(x)
        grid = (x.shape[-2] // self.config.patch_size, x.shape[-1] // self.config.patch_size)
        positions = self.pos_embed[:, self.prefix_positions:]
        return tokens + resample_pos_embed(positions, grid, self.patch_embed.grid_size)

    def add_class_token(self, tokens):
        """(B, N, D) -> (B, P+N, D): the P prefix tokens in front, CLS first, then any registers,
        with their own positions unless class_position is off."""
        prefix = [t for t in (self.cls_token, self.reg_token) if t is not None]
        if not prefix:
            return tokens
        prefix = torch.cat(prefix, dim=1)
        if self.prefix_positions:
            prefix = prefix + self.pos_embed[:, :self.prefix_positions]
        return torch.cat([prefix.expand(len(tokens), -1, -1), tokens], dim=1)

    def forward_tokens(self, tokens, return_attention: bool = False, mask: torch.Tensor | None = None):
        """The blocks and the norms over any token sequence (B, T, D), `mask` as in `Attention`;
        with return_attention also every block's attention weights, a list of (B, heads, T, T)."""
        tokens, attentions = run_blocks(self.blocks, self.norm_pre(tokens), mask, return_attention)
        tokens = self.norm(tokens)
        return (tokens, attentions) if return_attention else tokens

    def forward_features(self, x, return_attention: bool = False):
        """Images -> normalised tokens (B, P+N, D), CLS first, registers next (and the attention weights)."""
        return self.forward_tokens(self.add_class_token(self.embed_patches(x)), return_attention)

    def forward_head(self, tokens, pre_logits: bool = False):
        if self.config.global_pool == "token":
            pooled = tokens[:, 0]
        else:
            pooled = tokens[:, self.num_prefix_tokens:].mean(dim=1)
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def _init_weights(self):
        """timm's scheme: small truncated-normal linears and positions, near-zero CLS and registers."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for token in (self.cls_token, self.reg_token):
            if token is not None:
                nn.init.normal_(token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


VIT_CONFIGS = {
    # the shapes-world default: 32x32 images in 8x8 patches of 4 px (64 tokens + CLS), ~0.8 M parameters
    "vit_micro": ViTConfig(img_size=32, patch_size=4, num_classes=10, embed_dim=128, depth=4, num_heads=4),
    "vit_tiny_patch16_224": ViTConfig(embed_dim=192, num_heads=3),
    "vit_small_patch16_224": ViTConfig(embed_dim=384, num_heads=6),
    "vit_base_patch16_224": ViTConfig(),
}


def vit(name: str = "vit_micro", **overrides) -> VisionTransformer:
    """Build by name, any ViTConfig field overridden: vit("vit_micro", num_classes=25) for the
    shapes world, vit("vit_small_patch16_224", img_size=32, patch_size=4) for a wider one."""
    check_choice(name, VIT_CONFIGS, "ViT")
    return VisionTransformer(replace(VIT_CONFIGS[name], **overrides))
