"""Masked autoencoders (He et al. 2021): hide most patches, encode the rest, paint the hidden ones back.

Each image loses a random 75% of its patches. The encoder, our VisionTransformer, sees only the
visible quarter, which is what makes pre-training cheap. A small decoder puts a learned mask
token in every hidden slot, adds its own position embeddings, mixes everything with a few
blocks and predicts each patch's pixels; the loss (`vp_utils.objectives.mae_loss`) counts the hidden
patches only. Module names
follow the MAE reference code (`decoder_embed`, `mask_token`, `decoder_pos_embed`, ...).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..lab.checks import check_images, check_int
from .vit import Block, VisionTransformer, patchify, sincos_pos_embed, unpatchify


def random_masking(tokens: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None,
                   noise: torch.Tensor | None = None):
    """Keep a random (1 - mask_ratio) of each sample's tokens, a different subset per sample.

    Sorting one uniform noise value per token gives a random permutation; the first tokens of it
    are kept. `noise` (B, N) may be given instead of drawn: a data-parallel run draws it for the
    whole global batch, so each sample is masked as it would be in one process. Returns (visible (B, keep, D), mask (B, N) with 1 = hidden and 0 = visible, in the
    original order, ids_restore (B, N)): the permutation that puts shuffled tokens back in place.
    """
    _check_ratio(mask_ratio)
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 3:
        raise ValueError(f"tokens must have shape (batch, tokens, dim), got {getattr(tokens, 'shape', tokens)}")
    b, n, d = tokens.shape
    keep = visible_count(n, mask_ratio)
    if noise is None:
        noise = torch.rand(b, n, generator=generator, device=tokens.device)
    elif noise.shape != (b, n):
        raise ValueError(f"noise must have shape (batch, tokens) = {(b, n)}, got {tuple(noise.shape)}")
    ids_shuffle = noise.argsort(dim=1)  # small noise first: those tokens stay
    ids_restore = ids_shuffle.argsort(dim=1)  # the inverse permutation
    visible = tokens.gather(1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
    mask = torch.ones(b, n, device=tokens.device)
    mask[:, :keep] = 0
    return visible, mask.gather(1, ids_restore), ids_restore


def visible_count(num_patches: int, mask_ratio: float) -> int:
    """How many of `num_patches` stay visible, MAE's int(N * (1 - ratio)); at least one."""
    _check_ratio(mask_ratio)
    keep = int(num_patches * (1 - mask_ratio))
    if keep < 1:
        raise ValueError(f"mask_ratio {mask_ratio} hides all {num_patches} patches; at least one must stay visible")
    return keep


class MaskedAutoencoder(nn.Module):
    """A VisionTransformer encoder that sees the visible patches only, and a light decoder.

    The encoder's position embeddings are replaced by MAE's fixed sine-cosine table (frozen), as
    in the paper; the decoder has its own, also fixed. `norm_pix_loss` says what the decoder is
    trained to predict: per-patch normalised pixels rather than plain ones (`mae_loss` reads it).
    """

    def __init__(self, encoder: VisionTransformer, decoder_dim: int = 64, decoder_depth: int = 2,
                 decoder_heads: int = 4, mask_ratio: float = 0.75, norm_pix_loss: bool = False):
        super().__init__()
        if not isinstance(encoder, VisionTransformer):
            raise TypeError(f"encoder must be a VisionTransformer, got {type(encoder).__name__}")
        _check_ratio(mask_ratio)
        check_int(decoder_depth, "decoder_depth", 0)
        if check_int(decoder_dim, "decoder_dim", 1) % 4 or decoder_dim % check_int(decoder_heads, "decoder_heads", 1):
            raise ValueError(f"decoder_dim {decoder_dim} must be divisible by 4 (its sine-cosine positions) "
                             f"and by decoder_heads {decoder_heads}")
        grid = encoder.patch_embed.grid_size[0]
        self.encoder, self.mask_ratio, self.norm_pix_loss = encoder, mask_ratio, norm_pix_loss
        self.patch_size = encoder.config.patch_size
        prefix = encoder.num_prefix_tokens
        with torch.no_grad():
            encoder.pos_embed.copy_(sincos_pos_embed(grid, encoder.num_features, class_token=prefix == 1))
        encoder.pos_embed.requires_grad_(False)

        self.decoder_embed = nn.Linear(encoder.num_features, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos_embed", sincos_pos_embed(grid, decoder_dim, class_token=prefix == 1))
        self.decoder_blocks = nn.Sequential(*[Block(decoder_dim, decoder_heads) for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, self.patch_size ** 2 * encoder.config.in_chans)
        self._init_decoder()

    def _init_decoder(self):
        """MAE's init: a small normal mask token, Xavier-uniform linears, zero biases."""
        nn.init.normal_(self.mask_token, std=0.02)
        for module in [self.decoder_embed, self.decoder_pred, *self.decoder_blocks.modules()]:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward_encoder(self, images: torch.Tensor, mask_ratio: float | None = None,
                        generator: torch.Generator | None = None, noise: torch.Tensor | None = None):
        """Embed all patches, drop the hidden ones, run the encoder on what is left (plus CLS).
        Returns (latent (B, prefix + keep, D), mask (B, N), ids_restore (B, N))."""
        check_images(images, channels=self.encoder.config.in_chans)
        size = self.encoder.config.img_size
        if images.shape[-2:] != (size, size):
            raise ValueError(f"this MAE was built for {size}x{size} images in patches of {self.patch_size}, "
                             f"got {images.shape[-2]}x{images.shape[-1]}; resize them first")
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        visible, mask, ids_restore = random_masking(self.encoder.embed_patches(images), ratio, generator, noise)
        latent = self.encoder.forward_tokens(self.encoder.add_class_token(visible))
        return latent, mask, ids_restore

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Fill the hidden slots with the mask token, unshuffle, add positions, decode.
        Returns one prediction per patch, (B, N, patch*patch*C), in raster order."""
        prefix = self.encoder.num_prefix_tokens
        x = self.decoder_embed(latent)
        b, n = ids_restore.shape
        hidden = self.mask_token.expand(b, n - (x.shape[1] - prefix), -1)
        patches = torch.cat([x[:, prefix:], hidden], dim=1)  # still in shuffled order
        patches = patches.gather(1, ids_restore[..., None].expand(-1, -1, x.shape[-1]))
        x = torch.cat([x[:, :prefix], patches], dim=1) + self.decoder_pos_embed
        x = self.decoder_norm(self.decoder_blocks(x))
        return self.decoder_pred(x[:, prefix:])

    def forward(self, images: torch.Tensor, mask_ratio: float | None = None,
                generator: torch.Generator | None = None, noise: torch.Tensor | None = None):
        """(pred (B, N, patch*patch*C), mask (B, N)) for a batch of images: the decoder's pixels for
        every patch, and which patches the encoder did not see (1 = hidden). The loss that trains
        it is `vp_utils.objectives.mae_loss`."""
        latent, mask, ids_restore = self.forward_encoder(images, mask_ratio, generator, noise)
        return self.forward_decoder(latent, ids_restore), mask


@torch.no_grad()
def reconstruct(model: MaskedAutoencoder, images: torch.Tensor, mask_ratio: float | None = None,
                seed: int = 0, hidden_value: float = 0.0) -> dict[str, np.ndarray]:
    """The four pictures of the MAE demo for each image, as (B, H, W, C) arrays in [0, 1]:
    "original", "masked" (hidden patches painted `hidden_value`), "reconstruction" (the decoder's
    raw output everywhere; on visible patches it is untrained, as the loss ignores them) and
    "pasted" (the visible patches put back over it). Also "mask": (B, N), 1 = hidden.
    Needs a plain-pixel model."""
    if model.norm_pix_loss:
        raise ValueError("this model predicts per-patch normalised pixels; drawing them needs each hidden patch's "
                         "true mean and variance, which would leak the answer. Use a norm_pix_loss=False model")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    pred, mask = model(images.to(device), mask_ratio, generator)
    model.train(was_training)
    p, channels = model.patch_size, images.shape[1]
    patches, hidden, pred = patchify(images.cpu(), p), mask.cpu()[..., None], pred.cpu()
    pictures = {"original": patches, "masked": patches * (1 - hidden) + hidden_value * hidden,
                "reconstruction": pred, "pasted": patches * (1 - hidden) + pred * hidden}
    arrays = {name: unpatchify(x, p, channels).clamp(0, 1).permute(0, 2, 3, 1).numpy()
              for name, x in pictures.items()}
    return {**arrays, "mask": mask.cpu().numpy()}


def _check_ratio(mask_ratio) -> None:
    if not isinstance(mask_ratio, (int, float)) or isinstance(mask_ratio, bool) or math.isnan(mask_ratio) \
            or not 0 <= mask_ratio < 1:
        raise ValueError(f"mask_ratio must be a number in [0, 1), got {mask_ratio!r}")
