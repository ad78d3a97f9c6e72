"""CLIP (Radford et al. 2021): an image encoder and a text encoder that meet in one space.

Each tower ends in a linear projection to `embed_dim`; both outputs are L2-normalised, so an
image-text score is a cosine similarity, multiplied by a learned logit scale (the inverse
temperature, started at 1/0.07 and capped at 100) before the symmetric InfoNCE loss
(`vp_utils.objectives.clip_loss`). `encode_image` and `encode_text` behave as open_clip's do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..lab.checks import check_fields, check_int, check_positive, check_tensor
from .resnet import resnet
from .vit import Block, VisionTransformer, ViTConfig, causal_mask, run_blocks, vit

MAX_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class TextConfig:
    vocab_size: int = 49408
    context_length: int = 77
    width: int = 512
    heads: int = 8
    layers: int = 12
    mlp_ratio: float = 4.0
    act: str = "gelu"  # "quick_gelu" for OpenAI's weights


class TextTransformer(nn.Module):
    """Token and position embeddings, causal pre-norm blocks, a final norm, and the features at
    the end-of-text token: the one position that has read the whole text."""

    def __init__(self, config: TextConfig):
        super().__init__()
        check_fields(config, vocab_size=1, context_length=1, width=1, heads=1, layers=0)
        if config.width % config.heads:
            raise ValueError(f"width {config.width} must be divisible by heads {config.heads}")
        self.config, self.num_features = config, config.width
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, config.width))
        self.blocks = nn.Sequential(*[Block(config.width, config.heads, config.mlp_ratio, act=config.act,
                                            norm_eps=1e-5) for _ in range(config.layers)])
        self.ln_final = nn.LayerNorm(config.width)
        self.register_buffer("mask", causal_mask(config.context_length), persistent=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)

    def forward_tokens(self, ids: torch.Tensor, return_attention: bool = False):
        """Every position's features (B, L, width), each having seen only the tokens before it."""
        length = check_token_ids(ids, self.config.context_length).shape[1]
        x = self.token_embedding(ids) + self.positional_embedding[:length]
        x, attentions = run_blocks(self.blocks, x, self.mask[:length, :length], return_attention)
        x = self.ln_final(x)
        return (x, attentions) if return_attention else x

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, width) features at each text's end-of-text token (its highest id, open_clip's rule)."""
        return self.forward_tokens(ids)[torch.arange(len(ids)), ids.argmax(dim=-1)]


def check_token_ids(ids: torch.Tensor, context_length: int) -> torch.Tensor:
    """`ids` must be a (batch, length) tensor of token ids (long) no longer than the context."""
    if check_tensor(ids, "ids").ndim != 2 or ids.dtype != torch.long:
        raise ValueError(f"ids must be a (batch, length) tensor of token ids, got {tuple(ids.shape)} {ids.dtype}")
    if ids.shape[1] > context_length:
        raise ValueError(f"ids has {ids.shape[1]} tokens, more than the context length {context_length}")
    return ids


class CLIP(nn.Module):
    """A dual encoder. `visual` is any of our image models (a VisionTransformer or a ResNet):
    its pooled features (`forward_head(..., pre_logits=True)`) are projected."""

    def __init__(self, visual: nn.Module, text: TextTransformer, embed_dim: int = 512,
                 init_logit_scale: float = 1 / 0.07):
        super().__init__()
        if not hasattr(visual, "forward_head") or not hasattr(visual, "num_features"):
            raise TypeError(f"visual must be one of our image models, got {type(visual).__name__}")
        if not isinstance(text, TextTransformer):
            raise TypeError(f"text must be a TextTransformer, got {type(text).__name__}")
        check_int(embed_dim, "embed_dim", 1)
        check_positive(init_logit_scale, "init_logit_scale")
        self.visual, self.text = visual, text
        self.visual_projection = nn.Linear(visual.num_features, embed_dim, bias=False)
        self.text_projection = nn.Linear(text.num_features, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_logit_scale)))
        for projection in (self.visual_projection, self.text_projection):
            nn.init.normal_(projection.weight, std=projection.in_features ** -0.5)

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        pooled = self.visual.forward_head(self.visual.forward_features(images), pre_logits=True)
        features = self.visual_projection(pooled)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, ids: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        features = self.text_projection(self.text(ids))
        return F.normalize(features, dim=-1) if normalize else features

    def scale(self) -> torch.Tensor:
        """exp(logit_scale), capped at 100 as in CLIP so the softmax cannot become a hard max."""
        return self.logit_scale.clamp(max=math.log(MAX_LOGIT_SCALE)).exp()

    def forward(self, images: torch.Tensor, ids: torch.Tensor):
        """(normalised image features, normalised text features, scale): open_clip's triple."""
        return self.encode_image(images, normalize=True), self.encode_text(ids, normalize=True), self.scale()

    @torch.no_grad()
    def similarity(self, images: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """(n_images, n_texts) cosine similarities."""
        return self.encode_image(images, normalize=True) @ self.encode_text(ids, normalize=True).T


def clip_vit(image: ViTConfig, text: TextConfig, embed_dim: int) -> CLIP:
    """A CLIP with a ViT image tower in CLIP's variant: LayerNorm before the blocks, no patch bias,
    torch's LayerNorm eps, no classifier head."""
    image = ViTConfig(**{**image.__dict__, "num_classes": 0, "pre_norm": True, "patch_bias": False,
                         "norm_eps": 1e-5, "act": text.act})
    return CLIP(VisionTransformer(image), TextTransformer(text), embed_dim)


def tiny_clip(vocab_size: int, context_length: int = 24, tower: str = "resnet", embed_dim: int = 64) -> CLIP:
    """The shapes-world CLIP of notebooks 08-10: a 2-block, 64-wide text transformer and a small image
    tower, either a ResNet-8 of width 16 ("resnet", CLIP's convolutional option) or a 4-block,
    64-wide ViT on 4-pixel patches ("vit")."""
    if tower not in ("resnet", "vit"):
        raise ValueError(f"unknown tower {tower!r}; choose 'resnet' or 'vit'")
    visual = resnet("resnet8", num_classes=0, width=16) if tower == "resnet" else \
        vit("vit_micro", num_classes=0, embed_dim=64, num_heads=4, depth=4)
    text = TextTransformer(TextConfig(vocab_size=vocab_size, context_length=context_length, width=64, heads=4, layers=2))
    return CLIP(visual, text, embed_dim)
