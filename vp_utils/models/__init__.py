"""Every architecture of the path, each in one readable module with timm-compatible names:
ResNet (01), ViT (02), MAE (03), projection heads (04, 05), DINO's student and teacher (06, 07),
CLIP (08-10) and early fusion (11)."""
from .clip import CLIP, TextConfig, TextTransformer, clip_vit, tiny_clip
from .dino import DINO, DINOHead, MultiCropWrapper
from .fusion import (EarlyFusion, FlamingoReader, FusionConfig, GatedCrossAttention, LateFusion, PixelPatches,
                     last_token, prefix_lm_mask, vision_tokens)
from .heads import Embedder, projection_head
from .mae import MaskedAutoencoder, random_masking, reconstruct, visible_count
from .resnet import BasicBlock, Bottleneck, ResNet, ResNetConfig, layer_responses, main_path_layers, resnet
from .size import count_parameters
from .vit import (Attention, Block, LayerScale, Mlp, PatchEmbed, QuickGELU, ViTConfig, VisionTransformer, causal_mask,
                  patchify, resample_pos_embed, run_blocks, sincos_pos_embed, unpatchify, vit)

__all__ = ["Attention", "BasicBlock", "Block", "Bottleneck", "CLIP", "DINO", "DINOHead", "EarlyFusion", "Embedder",
           "FlamingoReader", "FusionConfig", "GatedCrossAttention", "LateFusion", "LayerScale", "MaskedAutoencoder",
           "Mlp", "MultiCropWrapper", "PatchEmbed", "PixelPatches", "QuickGELU", "ResNet", "ResNetConfig",
           "TextConfig", "TextTransformer", "ViTConfig", "VisionTransformer", "causal_mask", "clip_vit",
           "count_parameters", "last_token", "layer_responses", "main_path_layers", "patchify", "prefix_lm_mask",
           "projection_head", "random_masking", "reconstruct", "resample_pos_embed", "resnet", "run_blocks",
           "sincos_pos_embed", "tiny_clip", "unpatchify", "visible_count", "vision_tokens", "vit"]
