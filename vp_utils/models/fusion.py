"""Early fusion: one transformer over image tokens and text tokens (the LLaVA recipe, in miniature).

A vision encoder turns the image into tokens; a small MLP projector maps them into the language
model's token space; they go first in one sequence, followed by the text. Image tokens attend
to each other in both directions; text tokens attend to every image token and to the text
before them (a prefix-LM mask), so the same model can answer a question (a classifier on the
last question token) or write text token by token (a language-model head).

Late fusion, the baseline, never lets the tokens meet: CLIP encodes image and question apart,
and an MLP combines the two vectors. Flamingo's alternative, gated cross-attention from text
to image inserted into a language model, is `GatedCrossAttention`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..lab.checks import check_fields, check_images, check_int, show
from .clip import CLIP, check_token_ids
from .vit import Block, VisionTransformer, run_blocks, sincos_pos_embed


def vision_tokens(visual: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B, N, D) tokens from one of our image models: a ViT's patch tokens, or a ResNet's last
    feature map read cell by cell (raster order)."""
    features = visual.forward_features(images)
    if isinstance(visual, VisionTransformer):
        return features[:, visual.num_prefix_tokens:]
    return features.flatten(2).transpose(1, 2)


class PixelPatches(nn.Module):
    """No image encoder at all: each patch_size x patch_size square's raw pixels are one token's
    input, laid out as a feature map (channels = 3 * patch_size**2) that `vision_tokens` reads
    cell by cell. Early fusion in Fuyu's sense, where the transformer itself reads the patches."""

    def __init__(self, patch_size: int = 4):
        super().__init__()
        self.patch_size = check_int(patch_size, "patch_size", 1)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        if images.shape[-1] % self.patch_size or images.shape[-2] % self.patch_size:
            raise ValueError(f"patch_size {self.patch_size} must divide the image size {tuple(images.shape[-2:])}")
        return F.pixel_unshuffle(images, self.patch_size)


def prefix_lm_mask(n_image: int, n_text: int, device=None) -> torch.Tensor:
    """(T, T) boolean mask, True = may attend, for T = n_image + n_text: image tokens see all
    image tokens only; text token i sees every image token and text tokens 0..i."""
    total = check_int(n_image, "n_image", 0) + check_int(n_text, "n_text", 0)
    allowed = torch.zeros(total, total, dtype=torch.bool, device=device)
    allowed[:, :n_image] = True
    allowed[n_image:, n_image:] = torch.ones(n_text, n_text, dtype=torch.bool, device=device).tril()
    return allowed


@dataclass(frozen=True)
class FusionConfig:
    vocab_size: int
    num_answers: int
    image_size: int = 32
    context_length: int = 24
    dim: int = 64
    depth: int = 4
    heads: int = 4
    pool_image: bool = False  # one image token, the mean of the encoder's: what late fusion's vector keeps


class EarlyFusion(nn.Module):
    """[projected image tokens ; text tokens] through one transformer, with modality and position
    embeddings. The vision encoder is frozen unless `train_visual` (LLaVA's first stage trains
    only the projector)."""

    def __init__(self, visual: nn.Module, config: FusionConfig, train_visual: bool = False):
        super().__init__()
        check_fields(config, vocab_size=1, num_answers=1, image_size=1, context_length=1, dim=1, depth=0, heads=1)
        if config.dim % 4 or config.dim % config.heads:
            raise ValueError(f"dim {config.dim} must be divisible by 4 (sine-cosine image positions) "
                             f"and by heads {config.heads}")
        if not hasattr(visual, "forward_features"):
            raise TypeError(f"visual must be one of our image models, got {show(visual)}")
        self.config, self.visual, self.train_visual = config, visual, train_visual
        visual.requires_grad_(train_visual).eval()  # batch norm cannot probe one image in training mode
        try:
            with torch.no_grad():
                probe = self.seen_tokens(torch.zeros(1, 3, config.image_size, config.image_size))
        except ValueError as error:
            raise ValueError(f"image_size {config.image_size} does not suit the visual encoder: {error}") from None
        self.num_image_tokens, vision_dim = probe.shape[1:]
        dim = config.dim
        self.projector = nn.Sequential(nn.Linear(vision_dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.token_embedding = nn.Embedding(config.vocab_size, dim)
        nn.init.normal_(self.token_embedding.weight, std=0.02)  # as GPT-2: word, position and image start on one scale
        grid = int(self.num_image_tokens ** 0.5)
        # image positions start as MAE's 2-D sine-cosine code (learnable from there), so which patch
        # is where can be read from the first step; a 0.02-scale random start would hide it
        square = grid * grid == self.num_image_tokens
        self.image_pos = nn.Parameter(sincos_pos_embed(grid, dim, class_token=False) if square
                                      else 0.02 * torch.randn(1, self.num_image_tokens, dim))
        self.text_pos = nn.Parameter(0.02 * torch.randn(1, config.context_length, dim))
        self.modality = nn.Parameter(0.02 * torch.randn(2, dim))  # row 0: image, row 1: text
        self.blocks = nn.Sequential(*[Block(dim, config.heads, norm_eps=1e-5) for _ in range(config.depth)])
        self.norm = nn.LayerNorm(dim)
        self.answer_head = nn.Linear(dim, config.num_answers)
        self.lm_head = nn.Linear(dim, config.vocab_size, bias=False)
        self.lm_head.weight = self.token_embedding.weight  # tied, as in GPT-2: reading and writing share words

    def train(self, mode: bool = True):
        super().train(mode)
        self.visual.train(mode and self.train_visual)  # a frozen encoder keeps its batch-norm statistics
        return self

    def seen_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, N, D): the encoder's tokens, or with `pool_image` their mean as the only one (the
        control that keeps the model and removes where things are and which goes with which)."""
        seen = vision_tokens(self.visual, images)
        return seen.mean(dim=1, keepdim=True) if self.config.pool_image else seen

    def embed(self, images: torch.Tensor, ids: torch.Tensor, seen: torch.Tensor | None = None) -> torch.Tensor:
        """[image ; text] tokens; `seen` is `seen_tokens(images)` when already at hand (generation
        adds words to a fixed image, so it encodes the image once)."""
        check_images(images)
        check_token_ids(ids, self.config.context_length)
        if len(ids) != len(images):
            raise ValueError(f"need one text per image, got {len(images)} images and {len(ids)} texts")
        if seen is None:
            with torch.set_grad_enabled(self.train_visual and torch.is_grad_enabled()):
                seen = self.seen_tokens(images)
        image = self.projector(seen) + self.image_pos + self.modality[0]
        text = self.token_embedding(ids) + self.text_pos[:, :ids.shape[1]] + self.modality[1]
        return torch.cat([image, text], dim=1)

    def forward_tokens(self, images: torch.Tensor, ids: torch.Tensor, return_attention: bool = False,
                       seen: torch.Tensor | None = None):
        """Every position's output (B, N_image + L, dim), and each block's attention if asked."""
        tokens = self.embed(images, ids, seen)
        mask = prefix_lm_mask(self.num_image_tokens, ids.shape[1], tokens.device)
        tokens, attentions = run_blocks(self.blocks, tokens, mask, return_attention)
        tokens = self.norm(tokens)
        return (tokens, attentions) if return_attention else tokens

    def answer_logits(self, images: torch.Tensor, ids: torch.Tensor, at: torch.Tensor | None = None,
                      seen: torch.Tensor | None = None) -> torch.Tensor:
        """(B, num_answers), read at position `at` of each row (default: its last non-padding token).
        Give the question as a prompt (start-of-text and the question, no end-of-text), so that the
        position read has seen the image and the whole question, and nothing after it. `seen` as in
        `embed`: many questions about one image need it encoded once."""
        tokens = self.forward_tokens(images, ids, seen=seen)[:, self.num_image_tokens:]
        return self.answer_head(tokens[torch.arange(len(ids)), last_token(ids) if at is None else at])

    def lm_logits(self, images: torch.Tensor, ids: torch.Tensor, seen: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, vocab): at each text position, scores for the next token."""
        return self.lm_head(self.forward_tokens(images, ids, seen=seen)[:, self.num_image_tokens:])

    @torch.no_grad()
    def generate(self, images: torch.Tensor, prompt: torch.Tensor, end: int, max_new_tokens: int = 8,
                 seen: torch.Tensor | None = None) -> torch.Tensor:
        """Greedy decoding: append the most likely next token until `end` or the budget; returns
        the prompt and what was written, padded with zeros after `end`. The image is encoded once
        (or `seen`, as in `embed`, is used), not again for every word."""
        check_int(max_new_tokens, "max_new_tokens", 0)
        ids, done = prompt.clone(), torch.zeros(len(prompt), dtype=torch.bool, device=prompt.device)
        seen = self.seen_tokens(check_images(images)) if seen is None else seen
        for _ in range(min(max_new_tokens, self.config.context_length - prompt.shape[1])):
            following = self.lm_logits(images, ids, seen)[:, -1].argmax(dim=-1)
            following = following.masked_fill(done, 0)
            ids = torch.cat([ids, following[:, None]], dim=1)
            done |= following == end
            if done.all():
                break
        return ids


def last_token(ids: torch.Tensor) -> torch.Tensor:
    """Each row's last non-padding position."""
    return (ids != 0).sum(dim=1) - 1


class LateFusion(nn.Module):
    """A frozen CLIP encodes image and question separately; an MLP reads [image, text, image*text]."""

    def __init__(self, clip: CLIP, num_answers: int, hidden: int = 256):
        super().__init__()
        if not isinstance(clip, CLIP):
            raise TypeError(f"clip must be a CLIP, got {show(clip)}")
        check_int(num_answers, "num_answers", 1)
        check_int(hidden, "hidden", 1)
        self.clip = clip.requires_grad_(False).eval()
        dim = clip.visual_projection.out_features
        self.mlp = nn.Sequential(nn.Linear(3 * dim, hidden), nn.GELU(), nn.Linear(hidden, num_answers))

    def train(self, mode: bool = True):
        super().train(mode)
        self.clip.eval()
        return self

    @torch.no_grad()
    def features(self, images: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The MLP's input, [image, text, image * text]: fixed, so it can be computed once."""
        image, text = self.clip.encode_image(images, normalize=True), self.clip.encode_text(ids, normalize=True)
        return torch.cat([image, text, image * text], dim=-1)

    def forward(self, images: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(images, ids))


class GatedCrossAttention(nn.Module):
    """Flamingo's bridge: text tokens attend to image tokens, and the result is added through a
    tanh gate that starts at 0, so inserting it leaves a pre-trained language model unchanged."""

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        if check_int(dim, "dim", 1) % check_int(heads, "heads", 1):
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.query, self.key_value, self.out = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        b, length, dim = text.shape
        split = lambda x: x.reshape(b, -1, self.heads, dim // self.heads).transpose(1, 2)  # noqa: E731
        q = split(self.query(self.norm(text)))
        k, v = (split(t) for t in self.key_value(image).chunk(2, dim=-1))
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, length, dim)
        return text + torch.tanh(self.gate) * self.out(attended)


class FlamingoReader(nn.Module):
    """Flamingo's way in, in miniature: a frozen model reads the text alone, and a trainable gated
    cross-attention layer in front of each of its blocks lets the words look at the image tokens.
    The frozen reader is a trained `EarlyFusion` run without image tokens in its sequence, so with
    every gate at its start (0) it answers blind, from the question alone."""

    def __init__(self, fusion: EarlyFusion, heads: int = 4):
        super().__init__()
        if not isinstance(fusion, EarlyFusion):
            raise TypeError(f"fusion must be an EarlyFusion, got {show(fusion)}")
        self.fusion = fusion.requires_grad_(False).eval()
        self.bridges = nn.ModuleList(GatedCrossAttention(fusion.config.dim, heads) for _ in fusion.blocks)

    def train(self, mode: bool = True):
        super().train(mode)
        self.fusion.eval()
        return self

    def answer_logits(self, images: torch.Tensor, ids: torch.Tensor, at: torch.Tensor | None = None,
                      seen: torch.Tensor | None = None) -> torch.Tensor:
        """(B, num_answers), read at position `at` of each row (default: its last non-padding token);
        `seen` as in `EarlyFusion.embed`."""
        fusion = self.fusion
        tokens = fusion.embed(images, ids, seen)
        image, text = tokens[:, :fusion.num_image_tokens], tokens[:, fusion.num_image_tokens:]
        mask = prefix_lm_mask(0, ids.shape[1], ids.device)
        for bridge, block in zip(self.bridges, fusion.blocks):
            text = block(bridge(text, image), mask=mask)
        text = fusion.norm(text)
        return fusion.answer_head(text[torch.arange(len(ids)), last_token(ids) if at is None else at])
