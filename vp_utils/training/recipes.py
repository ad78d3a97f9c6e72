"""The recipes: for each method, the model it trains, its world, its objective and its usual
optimiser settings. `run` trains one live in a notebook; `python -m vp_utils.training.trainer`
trains the same for longer, on one process or many, and `shipped_model` loads what it trained.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
from torch import nn

from .. import objectives as obj
from ..data.captions import ANSWERS, caption_vocabulary
from ..data.shapes import COLOURS, SHAPES, ShapesWorld
from ..lab.checks import check_choice
from ..models.clip import CLIP, tiny_clip
from ..models.dino import DINO, DINOHead
from ..models.fusion import EarlyFusion, FlamingoReader, FusionConfig, LateFusion, PixelPatches
from ..models.heads import Embedder, projection_head
from ..models.mae import MaskedAutoencoder
from ..models.resnet import resnet
from ..models.vit import vit
from .checkpoint import SHIPPED, load_shipped, read_checkpoint, restore, shipped_record
from .loop import History, decay_groups, fit


@dataclass(frozen=True)
class Recipe:
    """How one method trains: model, global batches, objective and its usual optimiser settings."""
    build: Callable[[], nn.Module]
    batch: Callable[[ShapesWorld, int, int, int], tuple[torch.Tensor, ...]]  # (world, seed, step, size)
    loss: Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor | dict]
    world: dict = field(default_factory=dict)
    before_step: Callable[[nn.Module, int, int], None] | None = None  # (model, step, total), e.g. an EMA teacher
    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    exempt_from_decay: tuple[str, ...] | None = None  # None: decay every parameter; else `decay_groups`
    momentum: float | None = None  # SGD with this Nesterov momentum, the ResNets' usual optimiser; None: AdamW
    parent: str | None = None  # the shipped checkpoint that `build` loads into part of the model

    def initial_model(self, seed: int) -> nn.Module:
        """The model with its initial weights, drawn at `seed` (so every process starts from the same)."""
        torch.manual_seed(seed)
        return self.build()

    def make_world(self, seed: int, image_size: int = 32) -> ShapesWorld:
        return ShapesWorld(image_size=image_size, seed=seed, **self.world)

    def optimizer(self, model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
        """AdamW (or SGD, when the recipe sets a momentum) over the trainable parameters at this
        recipe's settings (peak `lr`, default its own)."""
        params = ([p for p in model.parameters() if p.requires_grad] if self.exempt_from_decay is None
                  else decay_groups(model, self.weight_decay, self.exempt_from_decay))
        if self.momentum is not None:
            return torch.optim.SGD(params, lr=lr or self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
                                   nesterov=True)
        return torch.optim.AdamW(params, lr=lr or self.lr, weight_decay=self.weight_decay, betas=self.betas)

    def batches(self, seed: int, size: int, image_size: int = 32, start: int = 0):
        """Global batches start, start + 1, ... of this recipe's world, each a pure function of (seed, step)."""
        world, step = self.make_world(seed, image_size), start
        while True:
            yield self.batch(world, seed, step, size)
            step += 1


def _mae_model(mask_ratio: float = 0.75, depth: int = 4, decoder_heads: int = 4) -> MaskedAutoencoder:
    """The micro ViT (`depth` blocks) and a decoder of 2 blocks at width 64, hiding `mask_ratio` of the patches."""
    return MaskedAutoencoder(vit("vit_micro", num_classes=0, depth=depth), decoder_dim=64, decoder_depth=2,
                             decoder_heads=decoder_heads, mask_ratio=mask_ratio)


def _vit_model(**pooling) -> nn.Module:
    """Notebook 02's ViT: 4 blocks of width 32, 4 heads, 4-pixel patches, naming one of 5 shapes from
    its class token; `global_pool="avg", class_token=False` is the twin that averages the patch tokens."""
    return vit("vit_micro", num_classes=5, embed_dim=32, **pooling)


def _resnet14_model() -> nn.Module:
    """Notebook 02's CNN: notebook 01's CIFAR-style ResNet-14 at width 8, naming one of 5 shapes."""
    return resnet("resnet14", num_classes=5, width=8)


def _simclr_model() -> Embedder:
    """Notebook 05's network: a ResNet-8 of width 16 and an MLP head."""
    encoder = resnet("resnet8", num_classes=0, width=16)
    return Embedder(encoder, projection_head(encoder.num_features, 128, 64))


def _clip_model(tower: str = "resnet") -> CLIP:
    """Notebook 08's CLIP: a ResNet-8 image tower (as CLIP's RN50, in miniature), a causal text tower;
    tower="vit" is notebook 10's comparison (4 blocks, 64 wide, 4-pixel patches)."""
    vocabulary = caption_vocabulary()
    return tiny_clip(len(vocabulary), vocabulary.context_length, tower=tower)


def _dino_head() -> DINOHead:
    """256 prototypes behind a head with batch norm: without it a fresh ViT's near-identical
    outputs are flattened by centering."""
    return DINOHead(64, 256, hidden_dim=256, bottleneck_dim=64, use_bn=True)


def _dino_backbone(num_classes: int = 0, **options) -> nn.Module:
    """Notebook 06's ViT: width 64, 4 blocks and 4 heads; DINOv2 adds LayerScale through `options`."""
    return vit("vit_micro", embed_dim=64, num_heads=4, depth=4, num_classes=num_classes, **options)


def _dino_model() -> DINO:
    """Notebook 06's setting: its ViT and the DINO head."""
    return DINO(_dino_backbone(), _dino_head())


def _dino_supervised_model() -> nn.Module:
    """Notebook 06's supervised reference: DINO's ViT with a linear head naming what a scene holds."""
    return _dino_backbone(num_classes=len(SHAPES) + len(COLOURS))


def _dinov2_model(layer_scale: float | None = 1.0) -> DINO:
    """The DINO setting plus what DINOv2 adds to the model: LayerScale in every block (starting at 1,
    where DINOv2's long runs start at 1e-5; notebook 07 says why; None leaves it out) and a separate
    iBOT head for the patch tokens."""
    backbone = _dino_backbone(init_values=layer_scale)
    return DINO(backbone, _dino_head(), patch_head=_dino_head())


def _shipped_clip() -> CLIP:
    clip = _clip_model()
    load_shipped("clip", clip)
    return clip


def _fusion_model(encoder: str = "clip", pool_image: bool = False) -> EarlyFusion:
    """Notebook 11's early fusion: the shipped CLIP's ResNet-8 (notebook 08), frozen as in LLaVA, its
    8x8 feature map as 64 image tokens; a 4-block, 64-wide transformer. Its controls: the 64 tokens
    pooled into one (`pool_image`), or no encoder, 4x4-pixel patches as the tokens (`encoder="pixels"`)."""
    vocabulary = caption_vocabulary()
    visual = _shipped_clip().visual if check_choice(encoder, ("clip", "pixels"), "encoder") == "clip" else PixelPatches(4)
    config = FusionConfig(vocab_size=len(vocabulary), num_answers=len(ANSWERS),
                          context_length=vocabulary.context_length, pool_image=pool_image)
    return EarlyFusion(visual, config)


def _shipped_fusion() -> EarlyFusion:
    """The shipped early fusion (notebook 11); tuned further, it is the captioner."""
    fusion = _fusion_model()
    load_shipped("fusion", fusion)
    return fusion


def _flamingo_model() -> FlamingoReader:
    """Notebook 11's Flamingo bridges: the shipped early fusion, frozen and reading text alone, with a
    gated cross-attention layer to learn in front of each of its blocks."""
    return FlamingoReader(_shipped_fusion())


def _late_fusion_model() -> LateFusion:
    """Notebook 11's baseline: the shipped CLIP encodes image and question apart, an MLP answers."""
    return LateFusion(_shipped_clip(), len(ANSWERS))


PLAIN = dict(background="plain", length=50_000)
RECIPES = {
    "vit": Recipe(build=_vit_model, batch=obj.shape_batch, loss=obj.classification_loss, lr=1e-3, betas=(0.9, 0.99),
                  exempt_from_decay=("pos_embed", "cls_token"), world=dict(PLAIN, objects=(1, 1))),
    "mae": Recipe(build=_mae_model, batch=obj.mae_batch, loss=obj.mae_objective, lr=1.5e-3,
                  world=dict(PLAIN, objects=(1, 3))),
    "simclr": Recipe(build=_simclr_model, batch=obj.simclr_batch, loss=obj.simclr_objective, lr=2e-3,
                     betas=(0.9, 0.999), weight_decay=1e-4, world=dict(PLAIN, objects=(1, 1))),
    "clip": Recipe(build=_clip_model, batch=obj.clip_batch, loss=obj.clip_objective, lr=2e-3, betas=(0.9, 0.98),
                   weight_decay=0.1, world=dict(PLAIN, objects=(1, 2), held_out=(("red", "circle"), ("blue", "square"),
                                                                                ("green", "triangle")))),
    "fusion": Recipe(build=_fusion_model, batch=obj.fusion_batch, loss=obj.vqa_loss, lr=1e-3, parent="clip",
                     world=dict(PLAIN, objects=(2, 3))),
    "dino": Recipe(build=_dino_model, batch=obj.dino_batch, loss=obj.dino_objective, before_step=obj.teacher_step,
                   lr=5e-4, betas=(0.9, 0.999), weight_decay=0.04, world=dict(PLAIN, objects=(1, 3))),
    "dino_supervised": Recipe(build=_dino_supervised_model, batch=obj.contents_batch, loss=obj.multilabel_loss,
                              lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05, world=dict(PLAIN, objects=(1, 3))),
    "dinov2": Recipe(build=_dinov2_model, batch=obj.dinov2_batch, loss=obj.dinov2_objective,
                     before_step=obj.teacher_step, lr=5e-4, betas=(0.9, 0.999), weight_decay=0.04,
                     world=dict(PLAIN, objects=(1, 3))),
}
# Notebook 07's dense probe: DINOv2's recipe and DINO's, trained on the chequered floor whose depth the row
# does not give away
FLOOR = dict(PLAIN, background="floor", objects=(1, 3))
RECIPES["dinov2_floor"] = replace(RECIPES["dinov2"], world=FLOOR)
RECIPES["dino_floor"] = replace(RECIPES["dino"], world=FLOOR)
# iBOT's ablation: the same recipe with the iBOT term switched off
RECIPES["dinov2_floor_no_ibot"] = replace(RECIPES["dinov2_floor"], loss=partial(obj.dinov2_objective, ibot_weight=0))
# ... KoLeo's and the masking's (both shipped), LayerScale's (07's exercise 2)
RECIPES["dinov2_floor_no_koleo"] = replace(RECIPES["dinov2_floor"], loss=partial(obj.dinov2_objective, koleo_weight=0))
RECIPES["dinov2_floor_no_layerscale"] = replace(RECIPES["dinov2_floor"], build=partial(_dinov2_model, layer_scale=None))
RECIPES["dinov2_floor_mask_all"] = replace(RECIPES["dinov2_floor"], batch=partial(obj.dinov2_batch, mask_share=1.0))
# ... and iBOT at twice its weight (exercise 2 too)
RECIPES["dinov2_floor_ibot2"] = replace(RECIPES["dinov2_floor"], loss=partial(obj.dinov2_objective, ibot_weight=2))
# DINO's recipe with DINOv2's masked crops: its model (the patch head idle) and DINO's class-token loss
RECIPES["dino_floor_masked"] = replace(RECIPES["dinov2_floor"], build=partial(_dinov2_model, layer_scale=None),
                                       loss=partial(obj.dinov2_objective, ibot_weight=0, koleo_weight=0))
# ... and its control: the same model and loss code with nothing masked (that code runs the student head's batch
# norm over the global and the local crops apart, where DINO's runs it over all crops at once)
RECIPES["dino_floor_unmasked"] = replace(RECIPES["dino_floor_masked"], batch=partial(obj.dinov2_batch, mask_share=0.0))
# Early fusion's controls and baseline, each on early fusion's batches and budget (data/checkpoints/fusion.json)
RECIPES["fusion_pooled"] = replace(RECIPES["fusion"], build=partial(_fusion_model, pool_image=True))
RECIPES["fusion_pixels"] = replace(RECIPES["fusion"], build=partial(_fusion_model, encoder="pixels"), parent=None)
RECIPES["late_fusion"] = replace(RECIPES["fusion"], build=_late_fusion_model, loss=obj.late_fusion_loss)
RECIPES["flamingo"] = replace(RECIPES["fusion"], build=_flamingo_model, loss=obj.answer_loss, parent="fusion")
# Captioning: the shipped early fusion's language model tuned to write each scene's list of objects
RECIPES["fusion_caption"] = replace(RECIPES["fusion"], build=_shipped_fusion, batch=obj.caption_batch,
                                    loss=obj.caption_loss, parent="fusion")
# Notebook 03's mask-ratio study: its MAE (2 encoder blocks, one decoder head) at four ratios, the same steps and
# scenes for each
MASK_RATIOS = (0.25, 0.5, 0.75, 0.9)
RECIPES |= {f"mae_{round(100 * r)}": replace(RECIPES["mae"], build=partial(_mae_model, r, depth=2, decoder_heads=1))
            for r in MASK_RATIOS}
RECIPES["vit_avg"] = replace(RECIPES["vit"], build=partial(_vit_model, global_pool="avg", class_token=False))
# Notebook 02's data-size comparison: the ViT and a ResNet-14 (SGD, as ResNets train) on the first N scenes of one
# world, the same steps for every N, so that the sets differ in data only
DATA_SIZES = (500, 4_000, 20_000)
RESNET14 = Recipe(build=_resnet14_model, batch=obj.shape_batch, loss=obj.classification_loss, lr=0.05, momentum=0.9,
                  weight_decay=5e-4)
RECIPES |= {f"{name}_{n}": replace(recipe, world=dict(PLAIN, objects=(1, 1), length=n))
            for n in DATA_SIZES for name, recipe in (("vit", RECIPES["vit"]), ("resnet14", RESNET14))}
# Same data and loss; the optimiser tuned for the ViT tower by a short sweep of four settings (600 steps each),
# and trained with --warmup 200 (data/checkpoints/clip_vit.json)
RECIPES["clip_vit"] = replace(RECIPES["clip"], build=partial(_clip_model, tower="vit"), lr=1e-3, weight_decay=0.05)


def get_recipe(name: str) -> Recipe:
    check_choice(name, RECIPES, "recipe")
    return RECIPES[name]


BATCH_SIZE, WARMUP, CLIP = 64, 50, 3.0  # the trainer's defaults too


def run(recipe: str | Recipe, steps: int, batch_size: int = BATCH_SIZE, seed: int = 0, *, lr: float | None = None,
        warmup: int = WARMUP, clip: float = CLIP, image_size: int = 32, model: nn.Module | None = None,
        **fit_options) -> tuple[nn.Module, History]:
    """Train a recipe from its initial weights (drawn at `seed`), or `model` when given, for `steps`
    global batches in this process: what the command-line trainer runs with the same arguments, step
    for step, without its checkpoints and logs. Returns (model, History)."""
    name, recipe = (recipe, get_recipe(recipe)) if isinstance(recipe, str) else ("recipe", recipe)
    model = recipe.initial_model(seed) if model is None else model
    history = fit(model, recipe.batches(seed, batch_size, image_size), recipe.optimizer(model, lr), steps,
                  loss_fn=recipe.loss, warmup=warmup, clip=clip, before_step=recipe.before_step,
                  **{"desc": name, **fit_options})
    return model, history


def run_model(run: str | Path) -> tuple[nn.Module, dict]:
    """The model a trainer run trained: `run` is its folder (its last.pt is read) or a checkpoint
    file. Built from the recipe the checkpoint records, loaded after its SHA-256 is checked, in eval
    mode; returns (model, the run's settings). The learner's own runs load as the shipped ones do."""
    path = Path(run) / "last.pt" if Path(run).is_dir() else Path(run)
    state = read_checkpoint(path)
    model = get_recipe(state["meta"]["recipe"]).build()
    restore(state, model, source=path)
    return model.eval(), state["meta"]


def shipped_model(name: str, shipped=SHIPPED) -> tuple[nn.Module, dict]:
    """Build the model of the recipe that trained shipped checkpoint `name`, load it (hash checked)
    and put it in eval mode; returns (model, record)."""
    model = get_recipe(shipped_record(name, shipped)["recipe"]).build()
    return model.eval(), load_shipped(name, model, shipped)
