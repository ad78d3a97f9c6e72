"""Every architecture of the path, each in one readable module with timm-compatible names."""
from .resnet import BasicBlock, Bottleneck, ResNet, ResNetConfig, count_parameters, main_path_layers, resnet
from .vit import (Attention, Block, LayerScale, Mlp, PatchEmbed, VisionTransformer, ViTConfig, patchify,
                  resample_pos_embed, unpatchify, vit)
from .mae import MaskedAutoencoder

__all__ = ["Attention", "BasicBlock", "Block", "Bottleneck", "LayerScale", "Mlp", "PatchEmbed", "ResNet",
           "ResNetConfig", "ViTConfig", "VisionTransformer", "count_parameters", "main_path_layers", "patchify",
           "resample_pos_embed", "resnet", "unpatchify", "vit"]
