"""The long training recipes, in the form the command-line trainer runs them.

A recipe says how to build its model, how to make the inputs of global batch number `step`
(data *and* every random draw, such as MAE's masking noise), and how to score a shard of
them. Because a batch is a pure function of (seed, step), a run on N processes, each taking
its slice of the same global batch, computes what one process would, and a resumed run
continues exactly where the checkpoint left off.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache, partial

import numpy as np
import torch
from torch import nn

from .augment import SHAPES_WORLD_VIEWS, simclr_augment, two_views
from .checks import check_choice
from .data import ANSWERS, ShapesWorld, caption, questions, standardise, words
from .losses import (clip_loss, dino_loss, ibot_patch_loss, koleo_loss, nt_xent, sinkhorn_knopp, teacher_targets,
                     update_center)
from .models.clip import CLIP, tiny_clip
from .models.dino import DINO, DINOHead, random_patch_mask
from .models.fusion import EarlyFusion, FusionConfig, question_answer_ids, vqa_loss
from .models.heads import Embedder, projection_head
from .models.mae import MaskedAutoencoder
from .models.resnet import resnet
from .models.vit import vit
from .multicrop import multicrop, permute_channels
from .tokenizer import Vocabulary
from .training import cosine_ramp


@dataclass(frozen=True)
class Recipe:
    """How one method trains: model, global batches, loss and its usual optimiser settings."""
    build: Callable[[], nn.Module]
    batch: Callable[[ShapesWorld, int, int, int], tuple[torch.Tensor, ...]]  # (world, seed, step, size)
    loss: Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor]
    world: dict = field(default_factory=dict)
    before_step: Callable[[nn.Module, int, int], None] | None = None  # (model, step, total), e.g. an EMA teacher
    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    exempt_from_decay: tuple[str, ...] | None = None  # None: decay every parameter; else `training.decay_groups`

    def make_world(self, seed: int, image_size: int = 32) -> ShapesWorld:
        return ShapesWorld(image_size=image_size, seed=seed, **self.world)


def scene_indices(step: int, size: int, world_length: int) -> np.ndarray:
    """The scenes of global batch `step`: consecutive indices, wrapping around the world."""
    return (np.arange(size) + step * size) % world_length


def step_generator(seed: int, step: int) -> torch.Generator:
    """One random stream per (seed, step), the same on every process."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def _mae_model() -> MaskedAutoencoder:
    return MaskedAutoencoder(vit("vit_micro", num_classes=0), decoder_dim=64, decoder_depth=2, decoder_heads=4)


def _mae_batch(world: ShapesWorld, seed: int, step: int, size: int):
    images = _world_images(world, step, size)
    return images, torch.rand(size, _patches(world), generator=step_generator(seed, step))


def _mae_loss(model: nn.Module, shard) -> torch.Tensor:
    images, noise = shard
    return model(images, noise=noise)[0]


def _patches(world: ShapesWorld) -> int:
    """Patch tokens per image for vit_micro's 4-pixel patches."""
    return (world.image_size // 4) ** 2


def _world_images(world: ShapesWorld, step: int, size: int) -> torch.Tensor:
    return world.render(scene_indices(step, size, len(world))).torch_images()


def _vit_model() -> nn.Module:
    """Notebook 02's ViT: 4 blocks of width 32, 4 heads, 4-pixel patches, naming one of 5 shapes."""
    return vit("vit_micro", num_classes=5, embed_dim=32)


def _vit_batch(world: ShapesWorld, seed: int, step: int, size: int):
    scenes = world.render(scene_indices(step, size, len(world)))
    return standardise(scenes.torch_images()), torch.from_numpy(scenes.targets("shape")).long()


def _vit_loss(model: nn.Module, shard) -> torch.Tensor:
    images, shapes = shard
    return nn.functional.cross_entropy(model(images), shapes)


def _simclr_model() -> Embedder:
    """Notebook 05's network: a ResNet-8 of width 16 and an MLP head."""
    encoder = resnet("resnet8", num_classes=0, width=16)
    return Embedder(encoder, projection_head(encoder.num_features, 128, 64))


def _simclr_batch(world: ShapesWorld, seed: int, step: int, size: int):
    """Two augmented views of each scene; the augmentations draw from torch's global generator,
    so it is seeded from (seed, step) here and restored afterwards."""
    images = _world_images(world, step, size)
    with torch.random.fork_rng():
        torch.manual_seed(seed * 1_000_003 + step)
        return two_views(images, simclr_augment(world.image_size, **SHAPES_WORLD_VIEWS))


def _simclr_loss(model: nn.Module, shard) -> torch.Tensor:
    first, second = shard
    z = model(torch.cat([first, second]))  # one forward for both views: DDP expects one per step
    return nt_xent(*z.chunk(2), temperature=0.2)


@cache
def caption_vocabulary() -> Vocabulary:
    """Reads captions and questions alike; built on first use, so other recipes skip loading BPE."""
    return Vocabulary([" ".join(words())], context_length=24)


def _clip_model(tower: str = "resnet") -> CLIP:
    """Notebook 08's CLIP: a ResNet-8 image tower (as CLIP's RN50, in miniature), a causal text tower;
    tower="vit" is notebook 10's comparison (4 blocks, 64 wide, 4-pixel patches)."""
    vocabulary = caption_vocabulary()
    return tiny_clip(len(vocabulary), vocabulary.context_length, tower=tower)


def _clip_batch(world: ShapesWorld, seed: int, step: int, size: int):
    scenes = world.render(scene_indices(step, size, len(world)))
    return scenes.torch_images(), caption_vocabulary()([caption(scenes, i, seed=seed) for i in range(len(scenes))])


def _clip_loss(model: nn.Module, shard) -> torch.Tensor:
    images, texts, scale = model(*shard)
    return clip_loss(images, texts, temperature=1 / scale)


def _dino_model() -> DINO:
    """Notebook 06's setting: a ViT of width 64, a head with batch norm (without it a fresh ViT's
    near-identical outputs are flattened by centering), 256 prototypes."""
    backbone = vit("vit_micro", embed_dim=64, num_heads=4, depth=4, num_classes=0)
    return DINO(backbone, DINOHead(64, 256, hidden_dim=256, bottleneck_dim=64, use_bn=True))


def _dino_batch(world: ShapesWorld, seed: int, step: int, size: int):
    """Two 32-px global and two 16-px local crops of standardised scenes, each with its colour
    channels in a random order (`permute_channels`)."""
    images, generator = standardise(_world_images(world, step, size)), step_generator(seed, step)
    crops = multicrop(images, world.image_size, world.image_size // 2, generator=generator)
    return tuple(permute_channels(crops, generator))


def _dino_teacher_step(model: nn.Module, step: int, total: int) -> None:
    """The teacher takes in the student's last update, its momentum rising from 0.97 to 1."""
    getattr(model, "module", model).update_teacher(cosine_ramp(step, total, 0.97, 1.0))


def _dino_loss(model: nn.Module, shard) -> torch.Tensor:
    return _cls_distillation(getattr(model, "module", model), *model(list(shard)))


def _cls_distillation(dino: DINO, student, teacher) -> torch.Tensor:
    """DINO's loss: teacher targets centered and sharpened (0.04), the running center updated."""
    targets = [teacher_targets(t, dino.center, 0.04) for t in teacher]
    dino.center = update_center(dino.center, torch.cat(teacher), momentum=0.9)
    return dino_loss(student, targets, 0.1)


def _dinov2_model() -> DINO:
    """The DINO setting plus what DINOv2 adds to the model: LayerScale in every block and a separate
    iBOT head for the patch tokens. DINOv2 starts LayerScale at 1e-5 for runs of many epochs; here
    it starts at 1: after 700 steps from 0.1 the scales had hardly moved and the patch tokens that
    left the blocks were still almost exactly the patch embeddings that went in."""
    backbone = vit("vit_micro", embed_dim=64, num_heads=4, depth=4, num_classes=0, init_values=1.0)
    def head():
        return DINOHead(64, 256, hidden_dim=256, bottleneck_dim=64, use_bn=True)
    return DINO(backbone, head(), patch_head=head())


def _dinov2_batch(world: ShapesWorld, seed: int, step: int, size: int):
    """DINO's crops, then an iBOT mask for each global crop (10-50% of its patches hidden)."""
    crops = _dino_batch(world, seed, step, size)
    return (*crops, random_patch_mask(2 * size, _patches(world), generator=step_generator(seed + 1, step)))


def _dinov2_loss(model: nn.Module, shard) -> torch.Tensor:
    """One pass of the student over the masked global crops gives both of DINOv2's losses, as in
    DINOv2: DINO's on the class token (with the local crops), iBOT's at the masked patches (teacher
    targets by Sinkhorn-Knopp over those patches); plus 0.1 x KoLeo on each crop's class tokens."""
    dino = getattr(model, "module", model)
    *crops, mask = shard
    globals_, mask = torch.cat(crops[:2]), mask.to(crops[0].device)
    with torch.no_grad():
        teacher = dino.teacher.encode(globals_)
        teacher_patches = dino.teacher.patch_head(teacher[:, 1:])
    student = dino.student.encode(globals_, mask)
    student_cls = list(dino.student.head(student[:, 0]).chunk(2)) + dino.student(list(crops[2:]))
    loss = _cls_distillation(dino, student_cls, dino.teacher.head(teacher[:, 0]).chunk(2))
    hidden = mask.bool()
    targets = torch.zeros_like(teacher_patches)
    targets[hidden] = sinkhorn_knopp(teacher_patches[hidden], temperature=0.04)
    loss = loss + ibot_patch_loss(dino.student.patch_head(student[:, 1:]), targets, mask, 0.1)
    return loss + 0.1 * sum(koleo_loss(c) for c in student[:, 0].chunk(2)) / 2


def _fusion_model() -> EarlyFusion:
    """Notebook 11's early fusion: the shipped CLIP's ResNet-8 (notebook 08), frozen as in LLaVA, its
    8x8 feature map as 64 image tokens; a 4-block, 64-wide transformer. (Fine-tuning the tower
    trained 2x slower and scored no better in 1,500 steps.)"""
    from .checkpoint import load_shipped  # the CLIP weights are only read when this recipe is built

    vocabulary, clip = caption_vocabulary(), _clip_model()
    load_shipped("clip", clip)
    config = FusionConfig(vocab_size=len(vocabulary), num_answers=len(ANSWERS),
                          context_length=vocabulary.context_length)
    return EarlyFusion(clip.visual, config)


def fusion_questions(scenes, step: int, seed: int = 0) -> list:
    """One question per scene, its type turning with the scene index and the step: every batch
    holds each type about equally, and a scene seen again is asked something else."""
    chosen = []
    for i, index in enumerate(scenes.index):
        available = questions(scenes, i, seed=seed + step)
        chosen.append(available[(int(index) + step) % len(available)])
    return chosen


def _fusion_batch(world: ShapesWorld, seed: int, step: int, size: int):
    scenes = world.render(scene_indices(step, size, len(world)))
    chosen = fusion_questions(scenes, step, seed)
    return (scenes.torch_images(), *question_answer_ids(caption_vocabulary(), chosen, ANSWERS))


def _fusion_loss(model: nn.Module, shard) -> torch.Tensor:
    return vqa_loss(getattr(model, "module", model), shard)["loss"]


RECIPES = {
    "vit": Recipe(build=_vit_model, batch=_vit_batch, loss=_vit_loss, lr=1e-3, betas=(0.9, 0.99),
                  exempt_from_decay=("pos_embed", "cls_token"),
                  world=dict(background="plain", objects=(1, 1), length=50_000)),
    "mae": Recipe(build=_mae_model, batch=_mae_batch, loss=_mae_loss, lr=1.5e-3,
                  world=dict(background="plain", objects=(1, 3), length=50_000)),
    "simclr": Recipe(build=_simclr_model, batch=_simclr_batch, loss=_simclr_loss, lr=2e-3, betas=(0.9, 0.999),
                     weight_decay=1e-4, world=dict(background="plain", objects=(1, 1), length=50_000)),
    "clip": Recipe(build=_clip_model, batch=_clip_batch, loss=_clip_loss, lr=2e-3, betas=(0.9, 0.98),
                   weight_decay=0.1, world=dict(background="plain", objects=(1, 2), length=50_000,
                                                held_out=(("red", "circle"), ("blue", "square"), ("green", "triangle")))),
    "fusion": Recipe(build=_fusion_model, batch=_fusion_batch, loss=_fusion_loss, lr=1e-3,
                     world=dict(background="plain", objects=(2, 3), length=50_000)),
    "dino": Recipe(build=_dino_model, batch=_dino_batch, loss=_dino_loss, before_step=_dino_teacher_step, lr=5e-4,
                   betas=(0.9, 0.999), weight_decay=0.04, world=dict(background="plain", objects=(1, 3), length=50_000)),
    "dinov2": Recipe(build=_dinov2_model, batch=_dinov2_batch, loss=_dinov2_loss, before_step=_dino_teacher_step,
                     lr=5e-4, betas=(0.9, 0.999), weight_decay=0.04,
                     world=dict(background="plain", objects=(1, 3), length=50_000)),
}
RECIPES["clip_vit"] = replace(RECIPES["clip"], build=partial(_clip_model, tower="vit"))  # same data, loss and optimiser


def get_recipe(name: str) -> Recipe:
    check_choice(name, RECIPES, "recipe")
    return RECIPES[name]
