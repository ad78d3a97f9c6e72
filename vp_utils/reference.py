"""Reference models (timm, open_clip) to ours, and real pretrained weights when they can be had.

`from_timm(model)` builds our model with the same architecture and copies the weights, so a
test can prove equality on random weights and a notebook can run ours with real ones.
"""
from __future__ import annotations

import time

from torch import nn

from .env import hub_online
from .models.resnet import ResNet, ResNetConfig

PRETRAINED = {"resnet18": "resnet18.a1_in1k", "resnet50": "resnet50.a1_in1k"}


class WeightsUnavailable(RuntimeError):
    """Pretrained weights are neither cached nor downloadable; the message is one line."""


def from_timm(model: nn.Module) -> nn.Module:
    """Our equivalent of a timm model, carrying its weights (buffers included), in eval mode."""
    converter = _CONVERTERS.get(type(model).__name__)
    if converter is None:
        raise TypeError(f"no converter for {type(model).__name__}; supported: {sorted(_CONVERTERS)}")
    ours = converter(model)
    missing, unexpected = ours.load_state_dict(model.state_dict(), strict=False)
    if missing or unexpected:
        raise ValueError(f"{type(model).__name__} variant not supported: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    return ours.eval()


def _resnet_config(model: nn.Module) -> ResNet:
    first = model.layer1[0]
    block = "bottleneck" if hasattr(first, "conv3") else "basic"
    if model.conv1.__class__.__name__ != "Conv2d" or model.conv1.kernel_size != (7, 7):
        raise ValueError("only timm ResNets with the plain 7x7 stem are supported (not the -c/-d variants)")
    if getattr(first, "se", None) is not None:
        raise ValueError("squeeze-and-excitation ResNets are not supported")
    layers = tuple(len(getattr(model, f"layer{i}")) for i in range(1, 5))
    widths = tuple(getattr(model, f"layer{i}")[0].conv1.out_channels for i in range(1, 5))
    return ResNet(ResNetConfig(block, layers, widths, "imagenet", model.num_classes, model.conv1.in_channels))


_CONVERTERS = {"ResNet": _resnet_config}


def load_pretrained(name: str) -> nn.Module:
    """Our model with real pretrained weights, from the local cache or the hub.

    Raises WeightsUnavailable (one clear line, within ~2 s) when neither works.
    """
    if name not in PRETRAINED:
        raise ValueError(f"no pretrained weights known for {name!r}; choose from {sorted(PRETRAINED)}")
    import timm

    start = time.perf_counter()
    hub_online()  # probes once and switches the hub offline when unreachable
    try:
        reference = timm.create_model(PRETRAINED[name], pretrained=True)
    except Exception as error:  # hub errors come in many types; all mean the same here
        seconds = time.perf_counter() - start
        raise WeightsUnavailable(f"{name}: pretrained weights not cached and the hub is unreachable "
                                 f"({type(error).__name__}, {seconds:.1f} s); continuing without them") from None
    model = from_timm(reference)
    model.pretrained_cfg = reference.pretrained_cfg
    return model
