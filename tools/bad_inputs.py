"""Bad inputs against the public API that notebooks use, each called and its outcome classified.

    clear    a ValueError or TypeError (or the protocol's own error, as IndexError for world[10])
             whose message is one line and names the argument
    unclear  any other exception, or a message that spans lines or does not name the argument
    silent   no error at all

Run `python tools/bad_inputs.py`: it prints the counts and every case that is not clear, and
exits 1 if there is one. tests/test_bad_input.py runs the same table in CI.
"""
from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import vp_utils  # noqa: E402
from vp_utils.analysis import (accuracy, caption_gallery, chance_recall, class_prompts, dense_probe,  # noqa: E402
                               enlarged_features, few_shot_indices, knn_accuracy, linear_probe, mask_iou, mean_iou,
                               modality_gap, patch_labels, predict, prompt_classifier, recall_at_k, retrieval_report,
                               zero_shot_logits)
from vp_utils.data import Question, ShapesWorld, Vocabulary, caption, describe, questions, relation  # noqa: E402
from vp_utils.lab import environment as env, show  # noqa: E402
from vp_utils.models import (CLIP, DINO, Attention, DINOHead, EarlyFusion, FusionConfig,  # noqa: E402
                             GatedCrossAttention, LateFusion, MaskedAutoencoder, PatchEmbed, ResNet, ResNetConfig,
                             TextConfig, TextTransformer, ViTConfig, causal_mask, clip_vit, patchify, prefix_lm_mask,
                             projection_head, random_masking, resample_pos_embed, resnet, tiny_clip, unpatchify, vit)
from vp_utils.objectives import block_patch_mask, question_answer_ids  # noqa: E402

STANDARD = (ValueError, TypeError)


@dataclass(frozen=True)
class Case:
    call: str  # the call as a user would write it
    run: Callable[[], object]
    name: str  # the argument (or environment variable) the message must name
    errors: tuple[type[Exception], ...] = STANDARD


def bad(fn, name: str, *args, **kwargs) -> Case:
    """fn(*args, **kwargs) must fail with a message naming `name`."""
    shown = ", ".join([*map(show, args), *(f"{key}={show(value)}" for key, value in kwargs.items())])
    label = getattr(fn, "__qualname__", type(fn).__name__)
    return Case(f"{label}({shown})", partial(fn, *args, **kwargs), name)


def bad_env(variable: str, value: str) -> Case:
    """`setup()` under VARIABLE=value must fail naming the variable."""
    return Case(f"{variable}={value} setup()", partial(_setup_with, {variable: value}), variable)


def _setup_with(variables: dict[str, str]):
    saved, threads = dict(os.environ), torch.get_num_threads()
    os.environ.update({"VP_OFFLINE": "1", **variables})  # never probe the network from here
    try:
        return vp_utils.setup(quiet=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        torch.set_num_threads(threads)


def outcome(case: Case) -> tuple[str, str]:
    """("clear" | "unclear" | "silent", what happened)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.run()
    except Exception as error:  # noqa: BLE001 - classifying every failure is the point
        message = str(error)
        said = f"{type(error).__name__}: {message}"
        named = re.search(rf"(?<!\w){re.escape(case.name)}(?!\w)", message)
        clear = isinstance(error, case.errors) and named and "\n" not in message.strip()
        return ("clear" if clear else "unclear"), said
    return "silent", "no error"


# ---------------------------------------------------------------- what the cases run on

torch.manual_seed(0)
WORLD = ShapesWorld(length=10)
SCENES = WORLD.scenes(4)
ONE_OBJECT = ShapesWorld(objects=(1, 1), length=4).scenes(1)
IMAGES = torch.rand(2, 3, 32, 32)
VIT = vit("vit_micro").eval()
RESNET = resnet("resnet20", num_classes=10).eval()
MAE = MaskedAutoencoder(vit("vit_micro"))
CLIP_MODEL = tiny_clip(30).eval()
TEXT = CLIP_MODEL.text
IDS = torch.randint(1, 30, (2, 6))
FUSION = EarlyFusion(resnet("resnet8", num_classes=0), FusionConfig(vocab_size=30, num_answers=5))
HEAD = DINOHead(64, out_dim=16, hidden_dim=32, bottleneck_dim=8)
FEATURES, WEIGHTS = torch.randn(4, 8), F.normalize(torch.randn(3, 8), dim=1)
NAN_FEATURES = FEATURES.clone().index_fill_(1, torch.tensor([0]), float("nan"))
SIMILARITY, MATCHES = torch.randn(4, 4), torch.eye(4, dtype=torch.bool)
NAN_SIMILARITY = SIMILARITY.clone().fill_diagonal_(float("nan"))
LABELS = np.array([0, 0, 1, 1, 2, 2])
X, Y = torch.randn(6, 8), torch.tensor([0, 1, 0, 1, 0, 1])
MASKS = torch.rand(2, 32, 32) > 0.5
QUESTION = Question("existence", "is there a red circle?", "yes")


def encode_text(texts):
    return torch.randn(len(texts), 8)


def flat_text(texts):  # a broken encoder: one number per text
    return torch.randn(len(texts))


CASES = [
    # Vocabulary: the tokenizer of 08-11
    bad(Vocabulary, "corpus", "a red circle"),
    bad(Vocabulary, "corpus", ["a red circle", 3]),
    # ShapesWorld: the scenes every notebook trains on
    bad(ShapesWorld, "seed", seed=1.5),
    bad(ShapesWorld, "seed", seed="1"),
    bad(ShapesWorld, "seed", seed=True),
    bad(ShapesWorld, "seed", seed=-1),
    bad(ShapesWorld, "seed", seed=2**64),
    bad(ShapesWorld, "length", length=2.5),
    bad(ShapesWorld, "length", length="10"),
    bad(ShapesWorld, "length", length=0),
    bad(ShapesWorld, "length", length=-5),
    bad(ShapesWorld, "objects", objects=2),
    bad(ShapesWorld, "objects", objects=(0, 3)),
    bad(ShapesWorld, "objects", objects=(3, 1)),
    bad(ShapesWorld, "objects", objects=(1, 4)),
    bad(ShapesWorld, "objects", objects=(1.5, 2)),
    bad(ShapesWorld, "objects", objects=(1, 2, 3)),
    bad(ShapesWorld, "objects", objects="12"),
    bad(ShapesWorld, "image_size", image_size=15),
    bad(ShapesWorld, "image_size", image_size=32.0),
    bad(ShapesWorld, "image_size", image_size="32"),
    bad(ShapesWorld, "background", background="grass"),
    bad(ShapesWorld, "target", target="position"),
    bad(ShapesWorld, "split", split="test"),
    bad(ShapesWorld, "held_out", held_out=("red", "circle")),
    bad(ShapesWorld, "held_out", held_out=[("red",)]),
    bad(ShapesWorld, "held_out", held_out=[("circle", "red")]),
    bad(ShapesWorld, "held_out", held_out=[("pink", "circle")]),
    bad(ShapesWorld, "held_out", split="held_out"),
    bad(WORLD.tensors, "n", 50),
    bad(WORLD.tensors, "n", 0),
    bad(WORLD.tensors, "n", -5),
    bad(WORLD.tensors, "n", 2.5),
    bad(WORLD.tensors, "start", 5, start=-1),
    bad(WORLD.tensors, "start", 5, start=8),
    bad(WORLD.tensors, "target", 5, target="position"),
    bad(WORLD.scenes, "n", "5"),
    bad(WORLD.render, "indices", []),
    bad(WORLD.render, "indices", [-1]),
    bad(WORLD.render, "indices", [1.5]),
    bad(WORLD.render, "indices", "abc"),
    Case("world[10] (length 10)", lambda: WORLD[10], "scene", (IndexError,)),
    bad(WORLD.__getitem__, "index", 1.5),
    bad(SCENES.targets, "target", "position"),
    # words about scenes
    bad(caption, "template", SCENES, 0, template="poem"),
    bad(caption, "template", ONE_OBJECT, 0, template="relation"),
    bad(caption, "i", SCENES, 99),
    bad(caption, "i", SCENES, 1.5),
    bad(caption, "seed", SCENES, 0, seed="x"),
    bad(caption, "scenes", "scenes", 0),
    bad(questions, "i", SCENES, 99),
    bad(questions, "seed", SCENES, 0, seed=1.5),
    bad(questions, "scenes", [SCENES], 0),
    bad(describe, "obj", {"shape": "circle"}),
    bad(relation, "a", {"x": 0.1}, {"x": 0.5, "y": 0.5}),
    # zero-shot classification
    bad(class_prompts, "classes", "circle", "a {}"),
    bad(class_prompts, "classes", [], "a {}"),
    bad(class_prompts, "classes", ["circle", 3], "a {}"),
    bad(class_prompts, "template", ["circle"], "a photo"),
    bad(class_prompts, "template", ["circle"], "{} and {}"),
    bad(class_prompts, "template", ["circle"], "a {} {name}"),
    bad(class_prompts, "template", ["circle"], None),
    bad(prompt_classifier, "classes", encode_text, "circle", ["a {}"]),
    bad(prompt_classifier, "templates", encode_text, ["circle"], "a {}"),
    bad(prompt_classifier, "templates", encode_text, ["circle"], []),
    bad(prompt_classifier, "encode_text", flat_text, ["circle", "square"], ["a {}"]),
    bad(prompt_classifier, "encode_text", "encoder", ["circle"], ["a {}"]),
    bad(zero_shot_logits, "weights", FEATURES, torch.empty(0, 8)),
    bad(zero_shot_logits, "image_features", NAN_FEATURES, WEIGHTS),
    bad(zero_shot_logits, "weights", FEATURES, WEIGHTS * float("nan")),
    bad(zero_shot_logits, "image_features", torch.randn(4, 16), WEIGHTS),
    bad(zero_shot_logits, "image_features", FEATURES.numpy(), WEIGHTS),
    bad(zero_shot_logits, "image_features", FEATURES[0], WEIGHTS),
    bad(few_shot_indices, "k", LABELS, 0),
    bad(few_shot_indices, "k", LABELS, 1.5),
    bad(few_shot_indices, "k", LABELS, 5),
    bad(few_shot_indices, "labels", [], 1),
    bad(few_shot_indices, "labels", LABELS.reshape(2, 3), 1),
    bad(few_shot_indices, "seed", LABELS, 1, seed=-1),
    # retrieval
    bad(recall_at_k, "similarity", NAN_SIMILARITY, MATCHES, 1),
    bad(recall_at_k, "k", SIMILARITY, MATCHES, 0),
    bad(recall_at_k, "k", SIMILARITY, MATCHES, 1.0),
    bad(recall_at_k, "k", SIMILARITY, MATCHES, 100),
    bad(recall_at_k, "matches", SIMILARITY, MATCHES[:3], 1),
    bad(recall_at_k, "matches", SIMILARITY, MATCHES.float(), 1),
    bad(recall_at_k, "matches", SIMILARITY, torch.zeros(4, 4, dtype=torch.bool), 1),
    bad(recall_at_k, "similarity", SIMILARITY.numpy(), MATCHES, 1),
    bad(recall_at_k, "similarity", SIMILARITY[0], MATCHES, 1),
    bad(chance_recall, "k", MATCHES, 0),
    bad(caption_gallery, "captions", "a red circle"),
    bad(caption_gallery, "captions", []),
    bad(caption_gallery, "captions", ["a red circle", 3]),
    bad(retrieval_report, "ks", SIMILARITY, MATCHES, ks=5),
    bad(retrieval_report, "ks", SIMILARITY, MATCHES, ks=()),
    bad(modality_gap, "text_features", FEATURES, torch.randn(4, 16)),
    bad(modality_gap, "image_features", torch.empty(0, 8), FEATURES),
    bad(modality_gap, "image_features", NAN_FEATURES, FEATURES),
    # evaluation
    bad(predict, "x", VIT, []),
    bad(predict, "x", VIT, IMAGES.numpy()),
    bad(predict, "batch_size", VIT, IMAGES, batch_size=0),
    bad(predict, "batch_size", VIT, IMAGES, batch_size=2.5),
    bad(predict, "fn", "vit", IMAGES),
    bad(enlarged_features, "images", VIT, IMAGES[:, :1], 32, (0.5,) * 3, (0.5,) * 3),
    bad(enlarged_features, "size", VIT, IMAGES, 0, (0.5,) * 3, (0.5,) * 3),
    bad(enlarged_features, "size", VIT, IMAGES, 32.5, (0.5,) * 3, (0.5,) * 3),
    bad(accuracy, "y", RESNET, IMAGES, torch.tensor([0, 1, 2])),
    bad(accuracy, "model", "resnet", IMAGES, torch.tensor([0, 1])),
    bad(linear_probe, "train_y", X, Y[:4], X, Y),
    bad(linear_probe, "train_x", [], [], X, Y),
    bad(linear_probe, "test_x", X, Y, torch.randn(6, 5), Y),
    bad(linear_probe, "train_x", X * float("nan"), Y, X, Y),
    bad(linear_probe, "max_iter", X, Y, X, Y, max_iter=0),
    bad(knn_accuracy, "k", X, Y, X, Y, k=0),
    bad(knn_accuracy, "k", X, Y, X, Y, k=2.5),
    bad(knn_accuracy, "test_x", X, Y, torch.randn(6, 5), Y),
    bad(knn_accuracy, "test_y", X, Y, X, Y[:2]),
    bad(mask_iou, "target", MASKS, MASKS[:1]),
    bad(mask_iou, "predicted", MASKS[:, :3, :3], MASKS),
    bad(mean_iou, "target", MASKS.long(), MASKS[:1].long(), 2),
    bad(mean_iou, "num_classes", MASKS.long(), MASKS.long(), 0),
    bad(mean_iou, "num_classes", MASKS.long(), MASKS.long(), 2.5),
    bad(mean_iou, "target", MASKS.long(), MASKS.long() + 5, 2),
    bad(patch_labels, "grid", MASKS, 5),
    bad(patch_labels, "grid", MASKS, 0),
    bad(patch_labels, "maps", MASKS[0], 4),
    bad(patch_labels, "mode", MASKS, 4, mode="median"),
    bad(dense_probe, "train_x", X, Y, X),
    bad(dense_probe, "task", X[None], Y[None], X[None], task="segment"),
    # the environment every notebook starts with
    bad_env("VP_SEED", "-1"),
    bad_env("VP_SEED", str(2**40)),
    bad_env("VP_SEED", "abc"),
    bad_env("VP_SEED", "1.5"),
    bad_env("VP_THREADS", "100000"),
    bad_env("VP_THREADS", "0"),
    bad_env("VP_THREADS", "two"),
    bad_env("VP_SCALE", "huge"),
    bad_env("VP_OFFLINE", "yes"),
    bad(vp_utils.setup, "seed", seed="abc"),
    bad(vp_utils.setup, "seed", seed=1.5),
    bad(vp_utils.setup, "seed", seed=-3),
    bad(env.seed_everything, "seed", 2**40),
    bad(env.reachable, "address", "huggingface.co", 1.0),
    bad(env.reachable, "timeout", ("127.0.0.1", 9), -1),
    # ViT
    bad(PatchEmbed, "patch_size", img_size=32, patch_size=5),
    bad(PatchEmbed, "patch_size", img_size=30, patch_size=2.5),
    bad(PatchEmbed, "patch_size", patch_size=0),
    bad(vit, "patch_size", "vit_micro", patch_size=5),
    bad(vit, "img_size", "vit_micro", img_size=30),
    bad(vit, "ViT", "vit_giant"),
    bad(vit, "depth", "vit_micro", depth=-1),
    bad(vit, "num_heads", "vit_micro", num_heads=0),
    bad(vit, "num_heads", "vit_micro", embed_dim=100, num_heads=3),
    bad(vit, "embed_dim", "vit_micro", embed_dim=0),
    bad(vit, "mlp_ratio", "vit_micro", mlp_ratio=0),
    bad(vit, "num_classes", "vit_micro", num_classes=-1),
    bad(vit, "in_chans", "vit_micro", in_chans=0),
    bad(vit, "global_pool", "vit_micro", global_pool="max"),
    bad(vit, "global_pool", "vit_micro", class_token=False),
    bad(vit, "act", "vit_micro", act="relu"),
    bad(vit, "typo", "vit_micro", typo=1),
    bad(VIT, "images", IMAGES[:, :1]),
    bad(VIT, "images", torch.rand(2, 3, 30, 30)),
    bad(VIT, "images", IMAGES[0]),
    bad(VIT, "images", (IMAGES * 255).byte()),
    bad(VIT, "images", IMAGES.numpy()),
    bad(patchify, "patch", IMAGES, 5),
    bad(patchify, "patch", IMAGES, 0),
    bad(unpatchify, "patches", patchify(IMAGES, 4), 4, channels=1),
    bad(resample_pos_embed, "pos_embed", torch.randn(1, 64, 16), (8, 8), (7, 7)),
    bad(Attention, "num_heads", 64, num_heads=0),
    bad(causal_mask, "n", -1),
    # ResNet
    bad(resnet, "name", "resnet19"),
    bad(resnet, "name", "vgg16"),
    bad(resnet, "width", "resnet20", width=0),
    bad(resnet, "num_classes", "resnet20", num_classes=-1),
    bad(resnet, "in_chans", "resnet20", in_chans=0),
    bad(RESNET, "images", IMAGES[:, :1]),
    bad(RESNET, "images", IMAGES[0, 0]),
    bad(ResNet, "layers", ResNetConfig(layers=(2, 2), widths=(16,))),
    bad(ResNet, "layers", ResNetConfig(layers=(0, 2, 2), widths=(16, 32, 64))),
    bad(ResNet, "block", ResNetConfig(block="dense")),
    # MAE
    bad(MaskedAutoencoder, "mask_ratio", vit("vit_micro"), mask_ratio=1.0),
    bad(MaskedAutoencoder, "mask_ratio", vit("vit_micro"), mask_ratio=-0.1),
    bad(MaskedAutoencoder, "encoder", "vit"),
    bad(MaskedAutoencoder, "decoder_dim", vit("vit_micro"), decoder_dim=30),
    bad(MaskedAutoencoder, "decoder_heads", vit("vit_micro"), decoder_heads=3),
    bad(MaskedAutoencoder, "decoder_depth", vit("vit_micro"), decoder_depth=-1),
    bad(MAE, "images", torch.rand(2, 3, 28, 28)),
    bad(MAE, "images", IMAGES[:, :1]),
    bad(MAE, "mask_ratio", IMAGES, mask_ratio=1.0),
    bad(MAE, "noise", IMAGES, noise=torch.rand(2, 10)),
    bad(random_masking, "tokens", torch.randn(2, 8), 0.5),
    bad(random_masking, "mask_ratio", torch.randn(2, 64, 8), 0.99),
    # CLIP
    bad(TextTransformer, "context_length", TextConfig(context_length=0, width=64, heads=4, layers=1)),
    bad(TextTransformer, "heads", TextConfig(width=64, heads=3, layers=1)),
    bad(TextTransformer, "vocab_size", TextConfig(vocab_size=0, width=64, heads=4, layers=1)),
    bad(TEXT, "ids", IDS.float()),
    bad(TEXT, "ids", torch.randint(1, 30, (2, 40))),
    bad(CLIP, "visual", "resnet", TEXT),
    bad(CLIP, "text", RESNET, "text"),
    bad(CLIP, "embed_dim", RESNET, TEXT, embed_dim=0),
    bad(CLIP, "init_logit_scale", RESNET, TEXT, init_logit_scale=0),
    bad(CLIP_MODEL.encode_image, "images", IMAGES[:, :1]),
    bad(tiny_clip, "vocab_size", 0),
    bad(tiny_clip, "tower", 30, tower="mlp"),
    bad(tiny_clip, "context_length", 30, context_length=0),
    bad(tiny_clip, "embed_dim", 30, embed_dim=-1),
    bad(clip_vit, "patch_size", ViTConfig(img_size=30, patch_size=4), TextConfig(layers=1), 64),
    # early fusion
    bad(EarlyFusion, "vocab_size", RESNET, FusionConfig(vocab_size=0, num_answers=3)),
    bad(EarlyFusion, "num_answers", RESNET, FusionConfig(vocab_size=30, num_answers=0)),
    bad(EarlyFusion, "dim", RESNET, FusionConfig(vocab_size=30, num_answers=3, dim=30)),
    bad(EarlyFusion, "image_size", VIT, FusionConfig(vocab_size=30, num_answers=3, image_size=30)),
    bad(FUSION.answer_logits, "ids", IMAGES, IDS.float()),
    bad(FUSION.answer_logits, "ids", IMAGES, torch.randint(1, 30, (2, 40))),
    bad(FUSION.answer_logits, "images", IMAGES[:1], IDS),
    bad(FUSION.generate, "max_new_tokens", IMAGES, IDS, 29, max_new_tokens=-1),
    bad(LateFusion, "clip", "clip", 3),
    bad(LateFusion, "num_answers", CLIP_MODEL, 0),
    bad(GatedCrossAttention, "dim", 30, heads=4),
    bad(GatedCrossAttention, "heads", 64, heads=0),
    bad(prefix_lm_mask, "n_image", -1, 3),
    bad(question_answer_ids, "questions", encode_text, [], ["yes", "no"]),
    bad(question_answer_ids, "answers", encode_text, [QUESTION], ["no"]),
    # DINO and projection heads
    bad(DINOHead, "in_dim", 0),
    bad(DINOHead, "nlayers", 64, nlayers=0),
    bad(DINOHead, "out_dim", 64, out_dim=2.5),
    bad(DINO(VIT, HEAD), "n_global", [IMAGES, IMAGES], n_global=0),
    bad(DINO(VIT, HEAD), "n_global", [IMAGES, IMAGES], n_global=3),
    bad(block_patch_mask, "ratio", 4, 8, ratio=(0.5, 0.1)),
    bad(block_patch_mask, "ratio", 4, 8, ratio=0.5),
    bad(block_patch_mask, "batch", -1, 8),
    bad(block_patch_mask, "share", 4, 8, share=1.5),
    bad(projection_head, "kind", 64, kind="deep"),
    bad(projection_head, "dim_in", 0),
    bad(projection_head, "dim_in", 64.5),
]


def main() -> int:
    results = [(case, *outcome(case)) for case in CASES]
    counts = {kind: sum(result == kind for _, result, _ in results) for kind in ("clear", "unclear", "silent")}
    for case, result, said in results:
        if result != "clear":
            print(f"{result:8s} {case.call}  ->  {said.splitlines()[0] if said else said}")
    print(f"{len(CASES)} bad inputs tried: {counts['clear']} clear errors, {counts['unclear']} unclear, "
          f"{counts['silent']} silent")
    return 0 if counts["clear"] == len(CASES) else 1


if __name__ == "__main__":
    sys.exit(main())
