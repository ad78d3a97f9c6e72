"""Every architecture of the path, each in one readable module with timm-compatible names."""
from .resnet import BasicBlock, Bottleneck, ResNet, ResNetConfig, count_parameters, main_path_layers, resnet

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "ResNetConfig", "count_parameters", "main_path_layers", "resnet"]
