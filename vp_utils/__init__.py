"""vp_utils: the thin helper package of Vision Path, laid out like the course.

    data         the shapes world, captions, photos, real datasets, augmentations and crops
    models       every architecture, timm- and open_clip-compatible
    objectives   what each method trains its model to do: losses, batches, hooks
    training     the one loop, the recipes, checkpoints and the models the project ships
    analysis     probes, attention maps, retrieval, zero-shot classification, curation
    pretrained   real weights from timm and open_clip, when they can be had
    lab          notebook plumbing: setup, claims, figures, explorers, progress bars
    schedules    warm-up and cosine schedules, DINO's momentum ramp
"""
from .lab.environment import Config, setup

__all__ = ["Config", "setup"]
