"""ResNets (He et al. 2015) and their plain twins, with timm's module names so state dicts line up.

Two families share one class:
- ImageNet style (ResNet-18/34/50): 7x7 stride-2 stem + max-pool, four stages, widths 64..512.
- CIFAR style (ResNet-20/56/110, 6n+2 layers): 3x3 stem, three stages of n BasicBlocks.
`residual=False` removes every shortcut and leaves the same convolutions: the paper's plain net.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..lab.checks import check_fields, check_images, check_int


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1):
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, bias=False)
    return conv, nn.BatchNorm2d(out_ch)


def _projection(in_ch: int, out_ch: int, stride: int, residual: bool) -> nn.Module | None:
    """The 1x1 conv that reshapes a shortcut when a block changes width or resolution."""
    if not residual or (stride == 1 and in_ch == out_ch):
        return None
    return nn.Sequential(*_conv_bn(in_ch, out_ch, 1, stride))


class BasicBlock(nn.Module):
    """Two 3x3 convs; out = relu(F(x) + x)."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1, residual: bool = True):
        super().__init__()
        self.residual = residual
        self.conv1, self.bn1 = _conv_bn(in_ch, width, 3, stride)
        self.conv2, self.bn2 = _conv_bn(width, width, 3)
        self.downsample = _projection(in_ch, width, stride, residual)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._shortcut(x) if self.residual else out)

    def _shortcut(self, x):
        return x if self.downsample is None else self.downsample(x)


class Bottleneck(BasicBlock):
    """1x1 reduce, 3x3 (carries the stride, as in timm's "v1.5"), 1x1 expand by 4."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1, residual: bool = True):
        nn.Module.__init__(self)
        self.residual = residual
        self.conv1, self.bn1 = _conv_bn(in_ch, width, 1)
        self.conv2, self.bn2 = _conv_bn(width, width, 3, stride)
        self.conv3, self.bn3 = _conv_bn(width, width * 4, 1)
        self.downsample = _projection(in_ch, width * 4, stride, residual)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self._shortcut(x) if self.residual else out)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


@dataclass(frozen=True)
class ResNetConfig:
    block: str = "basic"
    layers: tuple[int, ...] = (2, 2, 2, 2)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stem: str = "imagenet"  # or "cifar"
    num_classes: int = 1000
    in_chans: int = 3
    residual: bool = True
    zero_init_last: bool = True  # timm's default, see _init_weights


class ResNet(nn.Module):
    def __init__(self, config: ResNetConfig):
        super().__init__()
        if config.block not in BLOCKS:
            raise ValueError(f"unknown block {config.block!r}; choose from {sorted(BLOCKS)}")
        if config.stem not in ("imagenet", "cifar"):
            raise ValueError(f"unknown stem {config.stem!r}; choose 'imagenet' or 'cifar'")
        if len(config.layers) != len(config.widths) or not config.layers:
            raise ValueError(f"layers {config.layers} and widths {config.widths} must be equally long and non-empty")
        for depth, width in zip(config.layers, config.widths):
            check_int(depth, "layers", 1)
            check_int(width, "widths", 1)
        check_fields(config, num_classes=0, in_chans=1)
        self.config = config
        block = BLOCKS[config.block]
        imagenet = config.stem == "imagenet"
        self.conv1, self.bn1 = _conv_bn(config.in_chans, config.widths[0], 7 if imagenet else 3, 2 if imagenet else 1)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if imagenet else nn.Identity()
        in_ch = config.widths[0]
        for i, (depth, width) in enumerate(zip(config.layers, config.widths)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(depth):
                blocks.append(block(in_ch, width, stride if j == 0 else 1, config.residual))
                in_ch = width * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_features = in_ch
        self.fc = nn.Linear(in_ch, config.num_classes) if config.num_classes > 0 else nn.Identity()  # 0: features
        self._init_weights()

    @property
    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.config.layers))]

    def forward_features(self, x, return_stages: bool = False):
        """The last stage's feature map (and, with return_stages, every stage's)."""
        check_images(x, channels=self.config.in_chans)
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return (x, maps) if return_stages else x

    def forward_head(self, features, pre_logits: bool = False):
        pooled = features.mean(dim=(2, 3))
        return pooled if pre_logits else self.fc(pooled)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if self.config.residual and self.config.zero_init_last:
            # each residual branch starts at zero, so a deep ResNet starts as a shallow one and
            # grows into its depth (Goyal et al. 2017). A plain net cannot: it would cut the signal.
            for stage in self.stages:
                for block in stage:
                    nn.init.zeros_((block.bn3 if isinstance(block, Bottleneck) else block.bn2).weight)


def resnet(name: str, num_classes: int = 1000, width: int = 16, residual: bool = True, in_chans: int = 3,
           zero_init_last: bool = True) -> ResNet:
    """Build by name: resnet18/34/50 (ImageNet style) or resnet20/32/44/56/110 (CIFAR style,
    first-stage `width`). plainNN gives the shortcut-free twin, e.g. plain56."""
    plain = name.startswith("plain")
    depth_text = name.removeprefix("plain").removeprefix("resnet")
    if not depth_text.isdigit():
        raise ValueError(f"unknown ResNet name {name!r}; try resnet18, resnet50, resnet20 or plain56")
    check_int(width, "width", 1)
    depth, residual = int(depth_text), residual and not plain
    if depth in IMAGENET_LAYERS:
        block, layers = IMAGENET_LAYERS[depth]
        config = ResNetConfig(block, layers, (64, 128, 256, 512), "imagenet", num_classes, in_chans, residual,
                              zero_init_last)
    elif (depth - 2) % 6 == 0 and depth >= 8:
        n = (depth - 2) // 6
        config = ResNetConfig("basic", (n, n, n), (width, 2 * width, 4 * width), "cifar", num_classes, in_chans,
                              residual, zero_init_last)
    else:
        raise ValueError(f"no ResNet of depth {depth} (name {name!r}): use 18/34/50/101/152 "
                         f"or 6n+2 (20, 32, 44, 56, 110)")
    return ResNet(config)


IMAGENET_LAYERS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
                   101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}


def main_path_layers(model: ResNet) -> list[tuple[str, nn.Conv2d]]:
    """(name, conv) for every conv on the main path, input to output: where gradients are read."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and "downsample" not in name]


@torch.no_grad()
def layer_responses(model: ResNet, images: torch.Tensor) -> list[float]:
    """Standard deviation of each 3x3 layer's response, main path in order, for `images` in eval
    mode: the output of its batch norm, before the ReLU and before any shortcut is added (the
    ResNet paper's Fig. 7). Residual branches that stay small mean each block is close to the
    identity."""
    norms = [bn for name, bn in model.named_modules()
             if isinstance(bn, nn.BatchNorm2d) and name.startswith("layer") and "downsample" not in name]
    stds = []
    hooks = [bn.register_forward_hook(lambda _m, _in, out: stds.append(out.std().item())) for bn in norms]
    try:
        model.eval()(images)
    finally:
        for hook in hooks:
            hook.remove()
    return stds

