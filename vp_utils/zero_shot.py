"""Zero-shot classification: a linear classifier whose weights are written in words.

A dual encoder (CLIP) scores an image against a text by the cosine of their embeddings. Embed
one prompt per class ("a red circle", "a blue square", ...) and stack the normalised text
embeddings as the rows of a matrix W: the class scores of an image feature x are W @ x / |x|,
a linear classifier that no labelled image trained. Prompt ensembling (Radford et al. 2021,
section 3.1.4) embeds each class through several templates and averages the normalised
embeddings, so one row stands for the class rather than for one phrasing of it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_non_empty, check_positive


def class_prompts(classes: Sequence[str], template: str) -> list[str]:
    """One prompt per class: the class name put into the template's `{}`."""
    check_non_empty(list(classes), "classes")
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValueError(f"a template needs exactly one '{{}}' for the class name, got {template!r}")
    return [template.format(name) for name in classes]


@torch.no_grad()
def prompt_classifier(encode_text: Callable[[list[str]], torch.Tensor], classes: Sequence[str],
                      templates: Sequence[str]) -> torch.Tensor:
    """(n_classes, dim) weights: per class, the mean over templates of its prompts' normalised
    text embeddings, renormalised. `encode_text` maps a list of strings to (n, dim) features."""
    templates = list(check_non_empty(list(templates), "templates"))
    per_template = [F.normalize(encode_text(class_prompts(classes, t)), dim=-1) for t in templates]
    return F.normalize(torch.stack(per_template).mean(0), dim=-1)


def zero_shot_logits(image_features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(n_images, n_classes) cosine similarities: the linear classifier `weights` applied to the
    normalised image features."""
    if image_features.ndim != 2 or weights.ndim != 2 or image_features.shape[1] != weights.shape[1]:
        raise ValueError(f"need (n, dim) image features and (classes, dim) weights of the same dim, got "
                         f"{tuple(image_features.shape)} and {tuple(weights.shape)}")
    return F.normalize(image_features, dim=-1) @ weights.T


def few_shot_indices(labels, k: int, seed: int = 0) -> np.ndarray:
    """Indices of k examples of every class in `labels`, drawn without replacement (sorted by class),
    for a k-shot probe; raises if some class has fewer than k examples."""
    check_positive(k, "k")
    labels = np.asarray(check_non_empty(labels, "labels"))
    rng = np.random.default_rng(seed)
    picks = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < k:
            raise ValueError(f"class {label} has {len(members)} examples, fewer than k={k}")
        picks.append(rng.choice(members, size=k, replace=False))
    return np.concatenate(picks)
