"""Real pretrained weights in our models, when they can be had: `pretrained(name)` returns the model
or None with one line saying why; `load_pretrained(name)` raises `WeightsUnavailable` instead.

`from_timm(model)` and `from_open_clip(model)` build our model with the same architecture and
copy the weights, so a test can prove equality on random weights and a notebook can run ours
with real ones.

Fetch the weights the notebooks use ahead of offline work, into the Hugging Face cache
(`HF_HOME`, by default ~/.cache/huggingface):

    python -m vp_utils.pretrained fetch [NAME ...]
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from .lab.checks import check_texts
from .lab.environment import hub_online
from .models.resnet import ResNet, ResNetConfig
from .models.clip import CLIP, TextConfig, clip_vit
from .models.vit import VisionTransformer, ViTConfig

PRETRAINED = {"resnet18": "resnet18.a1_in1k", "resnet50": "resnet50.a1_in1k",
              "vit_tiny_patch16_224": "vit_tiny_patch16_224.augreg_in21k_ft_in1k",
              "vit_small_patch16_224": "vit_small_patch16_224.augreg_in21k_ft_in1k",
              "vit_base_patch16_224": "vit_base_patch16_224.augreg2_in21k_ft_in1k",
              # the MAE-pretrained encoder: no head, CLS pooling, fixed sine-cosine positions
              "vit_base_patch16_224.mae": "vit_base_patch16_224.mae",
              # self-distilled without labels: DINO (no head, CLS pooling) and DINOv2 (LayerScale, 14-px patches)
              "vit_small_patch16_224.dino": "vit_small_patch16_224.dino",
              "vit_small_patch14_dinov2": "vit_small_patch14_dinov2.lvd142m",
              # DINOv2 with four register tokens (Darcet et al. 2024)
              "vit_small_patch14_reg4_dinov2": "vit_small_patch14_reg4_dinov2.lvd142m"}
OPEN_CLIP_PRETRAINED = {"ViT-B-32": "laion2b_s34b_b79k", "ViT-B-16": "laion2b_s34b_b88k",
                        "ViT-B-32-quickgelu": "openai", "ViT-B-16-quickgelu": "openai"}
# the names the notebooks load (tests/test_fetch.py keeps the two lists equal): `fetch`'s default
NOTEBOOK_WEIGHTS = ("resnet50", "vit_small_patch16_224", "vit_base_patch16_224.mae", "vit_small_patch16_224.dino",
                    "vit_small_patch14_dinov2", "vit_small_patch14_reg4_dinov2", "ViT-B-32")
_KNOWN = {**PRETRAINED, **OPEN_CLIP_PRETRAINED}


class WeightsUnavailable(RuntimeError):
    """Pretrained weights are neither cached nor downloadable; the message is one line."""


def from_timm(model: nn.Module) -> nn.Module:
    """Our equivalent of a timm model, carrying its weights (buffers included), in eval mode."""
    if not type(model).__module__.startswith("timm."):
        raise TypeError(f"from_timm takes a timm model, got {type(model).__module__}.{type(model).__name__}")
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


def _vit_config(model: nn.Module) -> VisionTransformer:
    """timm's VisionTransformer in the variants ours has: learned positions (the class token's too,
    or only the patches'), registers, plain pre-norm blocks, the final norm before 'token' or 'avg'
    pooling."""
    embed, block = model.patch_embed, model.blocks[0]
    if (type(block).__name__, type(block.attn).__name__, type(block.mlp).__name__) != ("Block", "Attention", "Mlp"):
        raise ValueError("only timm VisionTransformers of plain Block, Attention and Mlp modules are supported")
    problems = {
        f"global_pool {model.global_pool!r} (ours: 'token' or 'avg')": model.global_pool not in ("token", "avg"),
        "a norm after pooling (fc_norm, timm's default for 'avg'; create it with fc_norm=False)":
            not isinstance(model.fc_norm, nn.Identity),
        "non-square images or patches": len(set(embed.img_size)) > 1 or len(set(embed.patch_size)) > 1,
        "padding of images to whole patches (dynamic_img_pad)": embed.dynamic_img_pad,
        "an attention width other than embed_dim": block.attn.qkv.out_features != 3 * model.embed_dim,
        "an activation other than exact GELU": getattr(block.mlp.act, "approximate", None) != "none",
        "LayerNorm eps other than 1e-6": any(m.eps != 1e-6 for m in model.modules() if isinstance(m, nn.LayerNorm)),
    }
    found = [problem for problem, present in problems.items() if present]
    if found:
        raise ValueError(f"timm VisionTransformer variant not supported: {'; '.join(found)}")
    return VisionTransformer(ViTConfig(
        img_size=embed.img_size[0], patch_size=embed.patch_size[0], in_chans=embed.proj.in_channels,
        num_classes=model.num_classes, embed_dim=model.embed_dim, depth=len(model.blocks),
        num_heads=block.attn.num_heads, mlp_ratio=block.mlp.fc1.out_features / model.embed_dim,
        qkv_bias=block.attn.qkv.bias is not None, class_token=model.cls_token is not None,
        reg_tokens=model.num_reg_tokens, class_position=not model.no_embed_class, global_pool=model.global_pool,
        init_values=None if isinstance(block.ls1, nn.Identity) else 1.0))  # any value: the weights replace it


_CONVERTERS = {"ResNet": _resnet_config, "VisionTransformer": _vit_config}

# open_clip's names -> ours, for the parts that differ (the blocks are nn.MultiheadAttention there)
_OPEN_CLIP_NAMES = [
    (r"^visual\.transformer\.resblocks\.", "visual.blocks."), (r"^transformer\.resblocks\.", "text.blocks."),
    (r"\.ln_1\.", ".norm1."), (r"\.ln_2\.", ".norm2."), (r"\.attn\.in_proj_(weight|bias)$", r".attn.qkv.\1"),
    (r"\.attn\.out_proj\.", ".attn.proj."), (r"\.mlp\.c_fc\.", ".mlp.fc1."), (r"\.mlp\.c_proj\.", ".mlp.fc2."),
    (r"^visual\.conv1\.", "visual.patch_embed.proj."), (r"^visual\.class_embedding$", "visual.cls_token"),
    (r"^visual\.positional_embedding$", "visual.pos_embed"), (r"^visual\.ln_pre\.", "visual.norm_pre."),
    (r"^visual\.ln_post\.", "visual.norm."), (r"^visual\.proj$", "visual_projection.weight"),
    (r"^(token_embedding|positional_embedding|ln_final)", r"text.\1"), (r"^text_projection$", "text_projection.weight"),
]


def from_open_clip(model: nn.Module) -> CLIP:
    """Our CLIP equivalent of an open_clip CLIP with a ViT image tower (GELU or QuickGELU), in eval mode."""
    visual = getattr(model, "visual", None)
    if type(model).__name__ != "CLIP" or type(visual).__name__ != "VisionTransformer":
        raise TypeError(f"from_open_clip takes an open_clip CLIP with a ViT image tower, got {type(model).__name__}")
    problems = {
        "attentional pooling": visual.attn_pool is not None,
        f"image pooling {visual.pool_type!r} (ours: 'tok')": visual.pool_type != "tok",
        "a norm after pooling": visual.final_ln_after_pool,
        f"text pooling {model.text_pool_type!r} (ours: 'argmax')": model.text_pool_type != "argmax",
        "LayerScale": any(type(m).__name__ == "LayerScale" for m in model.modules()),
    }
    found = [problem for problem, present in problems.items() if present]
    if found:
        raise ValueError(f"open_clip CLIP variant not supported: {'; '.join(found)}")
    image_block, text_block = visual.transformer.resblocks[0], model.transformer.resblocks[0]
    act = "quick_gelu" if type(text_block.mlp.gelu).__name__ == "QuickGELU" else "gelu"
    width = visual.conv1.out_channels
    image = ViTConfig(img_size=visual.image_size[0], patch_size=visual.patch_size[0], embed_dim=width,
                      depth=len(visual.transformer.resblocks), num_heads=image_block.attn.num_heads,
                      mlp_ratio=image_block.mlp.c_fc.out_features / width)
    text_width = model.token_embedding.embedding_dim
    text = TextConfig(vocab_size=model.token_embedding.num_embeddings, context_length=model.positional_embedding.shape[0],
                      width=text_width, heads=text_block.attn.num_heads, layers=len(model.transformer.resblocks),
                      mlp_ratio=text_block.mlp.c_fc.out_features / text_width, act=act)
    ours = clip_vit(image, text, embed_dim=visual.proj.shape[1])
    ours.load_state_dict(_open_clip_state(model.state_dict()))
    return ours.eval()


def _open_clip_state(state: dict) -> dict:
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in _OPEN_CLIP_NAMES:
            key = re.sub(pattern, replacement, key)
        if key in ("visual_projection.weight", "text_projection.weight"):
            value = value.T  # open_clip multiplies x @ proj; a Linear computes x @ weight.T
        elif key in ("visual.cls_token", "visual.pos_embed"):
            value = value.reshape(1, -1, value.shape[-1])
        renamed[key] = value
    return renamed


def load_pretrained(name: str) -> nn.Module:
    """Our model with real pretrained weights, from the local cache or the hub: a timm name from
    PRETRAINED or an open_clip name from OPEN_CLIP_PRETRAINED.

    Raises WeightsUnavailable (one clear line, within ~2 s) when neither works.
    """
    try:
        reference = _reference(_known(name))
    except WeightsUnavailable as error:
        raise WeightsUnavailable(f"{error}; continuing without them") from None
    if name in OPEN_CLIP_PRETRAINED:
        return from_open_clip(reference)
    model = from_timm(reference)
    model.pretrained_cfg = reference.pretrained_cfg
    return model


def pretrained(name: str) -> nn.Module | None:
    """`load_pretrained(name)`, or None with one printed line saying why when the
    weights are neither cached nor reachable: a notebook's optional section then skips itself."""
    try:
        return load_pretrained(name)
    except WeightsUnavailable as missing:
        print(missing)
        return None


def _known(name: str) -> str:
    if name not in _KNOWN:
        raise ValueError(f"no pretrained weights known for {name!r}; choose from "
                         f"{sorted(PRETRAINED) + sorted(OPEN_CLIP_PRETRAINED)}")
    return name


def _reference(name: str) -> nn.Module:
    """The timm or open_clip model with its pretrained weights, from the cache or the hub."""
    start = time.perf_counter()
    hub_online()  # probes once and switches the hub offline when unreachable
    silenced = logging.root.manager.disable
    logging.disable(logging.ERROR)  # open_clip logs each failed download too: the one line below says it
    try:
        return _reference_with_weights(name)
    except Exception as error:  # hub errors come in many types; all mean the same here
        seconds = time.perf_counter() - start
        raise WeightsUnavailable(f"{name}: pretrained weights not cached and the hub is unreachable "
                                 f"({type(error).__name__}, {seconds:.1f} s)") from None
    finally:
        logging.disable(silenced)


def _reference_with_weights(name: str) -> nn.Module:
    if name in OPEN_CLIP_PRETRAINED:
        import open_clip
        return open_clip.create_model(name, pretrained=OPEN_CLIP_PRETRAINED[name])
    import timm
    return timm.create_model(PRETRAINED[name], pretrained=True)


def fetch(names: Sequence[str] = NOTEBOOK_WEIGHTS) -> int:
    """Download pretrained weights into the Hugging Face cache, where `load_pretrained` finds them
    offline later. Prints one line per name: its size and folder, or why it could not be had.
    Returns how many could not."""
    names = [_known(name) for name in check_texts(names, "names")]
    failed = 0
    for name in names:
        try:
            _reference(name)
        except WeightsUnavailable as error:
            print(f"{error}; not fetched")
            failed += 1
            continue
        folder = hub_folder(name)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())
        print(f"{name}: {size / 1e6:.0f} MB in {folder}")
    return failed


def hub_folder(name: str) -> Path:
    """Where the Hugging Face cache keeps `name`'s weights (under HF_HOME, or HF_HUB_CACHE when set)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    return Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=hub_repo(name), repo_type="model")


def hub_repo(name: str) -> str:
    """The Hugging Face repository that `name`'s weights come from."""
    if name in OPEN_CLIP_PRETRAINED:
        import open_clip
        return open_clip.get_pretrained_cfg(name, OPEN_CLIP_PRETRAINED[name])["hf_hub"].strip("/")
    import timm
    return timm.models.get_pretrained_cfg(PRETRAINED[name]).hf_hub_id


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vp_utils.pretrained",
                                     description="Pretrained weights for the notebooks, ahead of offline use.")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("fetch", help="download into the Hugging Face cache (HF_HOME)")
    others = sorted(set(_KNOWN) - set(NOTEBOOK_WEIGHTS))
    command.add_argument("names", nargs="*", default=list(NOTEBOOK_WEIGHTS), metavar="NAME",
                         help=f"default: the notebooks' {', '.join(NOTEBOOK_WEIGHTS)}; also {', '.join(others)}")
    args = parser.parse_args(argv)
    try:
        return 1 if fetch(args.names) else 0
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    sys.exit(main())
