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

from ..lab.checks import (check_callable, check_finite, check_int, check_non_empty, check_seed, check_tensor, check_texts,
                     show)


def class_prompts(classes: Sequence[str], template: str) -> list[str]:
    """One prompt per class: the class name put into the template's `{}`."""
    classes = check_texts(classes, "classes")
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValueError(f"a template needs exactly one '{{}}' for the class name, got {template!r}")
    try:
        return [template.format(name) for name in classes]
    except (IndexError, KeyError, ValueError) as error:
        raise ValueError(f"template {template!r} must have no braces but its one '{{}}' ({error!r})") from None


@torch.no_grad()
def prompt_classifier(encode_text: Callable[[list[str]], torch.Tensor], classes: Sequence[str],
                      templates: Sequence[str]) -> torch.Tensor:
    """(n_classes, dim) weights: per class, the mean over templates of its prompts' normalised
    text embeddings, renormalised. `encode_text` maps a list of strings to (n, dim) features."""
    check_callable(encode_text, "encode_text")
    classes, templates = check_texts(classes, "classes"), check_texts(templates, "templates")

    def embed(template):
        features = encode_text(class_prompts(classes, template))
        if not isinstance(features, torch.Tensor) or features.shape[:1] != (len(classes),) or features.ndim != 2:
            raise ValueError(f"encode_text must return ({len(classes)}, dim) features for {len(classes)} prompts, "
                             f"got {show(features)}")
        return F.normalize(features, dim=-1)
    return F.normalize(torch.stack([embed(t) for t in templates]).mean(0), dim=-1)


def zero_shot_logits(image_features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(n_images, n_classes) cosine similarities: the linear classifier `weights` applied to the
    normalised image features."""
    check_tensor(image_features, "image_features", ("n", "dim"))
    check_tensor(weights, "weights", ("classes", "dim"))
    if image_features.shape[1] != weights.shape[1]:
        raise ValueError(f"image_features and weights must have the same dim, got {tuple(image_features.shape)} "
                         f"and {tuple(weights.shape)}")
    if len(weights) == 0:
        raise ValueError("weights has no classes: every image would be given class 0")
    check_finite(image_features, "image_features")
    check_finite(weights, "weights")
    return F.normalize(image_features, dim=-1) @ weights.T


def few_shot_indices(labels, k: int, seed: int = 0) -> np.ndarray:
    """Indices of k examples of every class in `labels`, drawn without replacement (sorted by class),
    for a k-shot probe; raises if some class has fewer than k examples."""
    check_int(k, "k", 1)
    labels = np.asarray(check_non_empty(labels, "labels"))
    if labels.ndim != 1:
        raise ValueError(f"labels must be one label per example (1-d), got shape {labels.shape}")
    rng = np.random.default_rng(check_seed(seed))
    picks = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < k:
            raise ValueError(f"class {label} has {len(members)} examples, fewer than k={k}")
        picks.append(rng.choice(members, size=k, replace=False))
    return np.concatenate(picks)
