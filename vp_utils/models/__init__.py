"""Every architecture of the path, each in one readable module with timm-compatible names."""
from .resnet import (BasicBlock, Bottleneck, ResNet, ResNetConfig, count_parameters, layer_responses, main_path_layers,
                     resnet)
from .vit import (Attention, Block, LayerScale, Mlp, PatchEmbed, QuickGELU, VisionTransformer, ViTConfig, causal_mask,
                  patchify, resample_pos_embed, unpatchify, vit)
from .mae import MaskedAutoencoder
from .clip import CLIP, TextConfig, TextTransformer, clip_vit

__all__ = ["Attention", "BasicBlock", "Block", "Bottleneck", "CLIP", "LayerScale", "MaskedAutoencoder", "Mlp",
           "PatchEmbed", "QuickGELU", "ResNet", "ResNetConfig", "TextConfig", "TextTransformer", "ViTConfig",
           "VisionTransformer", "causal_mask", "clip_vit", "count_parameters", "layer_responses",
           "main_path_layers", "patchify", "resample_pos_embed", "resnet", "unpatchify", "vit"]
