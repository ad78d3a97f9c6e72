"""Cross-modal retrieval: rank a gallery by similarity, and count how often a right answer is near the top.

A query is answered correctly at K when any item it matches is among its K most similar
gallery items (Recall@K). Which items match is given as a boolean matrix, so several right
answers are allowed: in the shapes world many scenes share one caption, and a scene ranked
under the caption "a red circle" is right for every red-circle scene. `caption_gallery`
builds that matrix by merging identical captions into one gallery text.

The two modalities need not fill the same region of the sphere: `modality_gap` measures how far
apart the centroids of the normalised image and text embeddings sit (Liang et al. 2022).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..lab.checks import check_finite, check_int, check_non_empty, check_tensor, check_texts, show

DIRECTIONS = ("image→text", "text→image")


def caption_gallery(captions) -> tuple[list[str], torch.Tensor]:
    """The distinct captions of a set of images, sorted, and matches (n_images, n_texts): True
    where text j is image i's caption. Identical captions become one text that matches every
    image it describes, so an image is never scored wrong for picking its twin's caption."""
    captions = check_texts(captions, "captions")
    texts = sorted(set(captions))
    index = {text: j for j, text in enumerate(texts)}
    matches = torch.zeros(len(captions), len(texts), dtype=torch.bool)
    matches[torch.arange(len(captions)), torch.tensor([index[c] for c in captions])] = True
    return texts, matches


def _check(similarity: torch.Tensor, matches: torch.Tensor, k: int) -> None:
    check_tensor(similarity, "similarity", ("queries", "gallery"))
    if not isinstance(matches, torch.Tensor) or matches.dtype != torch.bool or matches.shape != similarity.shape:
        raise ValueError(f"matches must be a boolean tensor shaped like similarity {tuple(similarity.shape)}, got "
                         f"{getattr(matches, 'dtype', type(matches).__name__)} {tuple(getattr(matches, 'shape', ()))}")
    check_int(k, "k", 1)
    if k > similarity.shape[1]:
        raise ValueError(f"k={k} exceeds the gallery's {similarity.shape[1]} items")
    if not matches.any(dim=1).all():
        raise ValueError(f"matches: {int((~matches.any(dim=1)).sum())} queries have no matching gallery item, "
                         f"so their recall is undefined")


def recall_at_k(similarity: torch.Tensor, matches: torch.Tensor, k: int) -> float:
    """Fraction of queries (rows) with a matching gallery item (column) among their k most similar.
    For the other direction pass similarity.T and matches.T."""
    _check(similarity, matches, k)
    check_finite(similarity, "similarity")  # topk ranks NaN first
    top = similarity.topk(k, dim=1).indices
    return matches.gather(1, top).any(dim=1).float().mean().item()


def chance_recall(matches: torch.Tensor, k: int) -> float:
    """Expected Recall@k of a random ranking: a query with m matches among n items misses them all
    with probability C(n - m, k) / C(n, k)."""
    _check(torch.zeros(matches.shape), matches, k)
    n = matches.shape[1]
    misses = [math.comb(n - m, k) / math.comb(n, k) for m in matches.sum(dim=1).tolist()]
    return 1 - sum(misses) / len(misses)


def retrieval_report(similarity: torch.Tensor, matches: torch.Tensor, ks=(1, 5)) -> dict[str, dict[int, tuple]]:
    """{direction: {k: (recall, chance)}} for image→text (rows are images) and text→image."""
    if not isinstance(ks, (tuple, list)):
        raise TypeError(f"ks must be a tuple of cut-offs such as (1, 5), got {show(ks)}")
    check_non_empty(ks, "ks")
    report = {}
    for direction, (s, m) in zip(DIRECTIONS, ((similarity, matches), (similarity.T, matches.T))):
        report[direction] = {k: (recall_at_k(s, m, k), chance_recall(m, k)) for k in ks}
    return report


def format_report(report: dict) -> str:
    """One line per direction: 'image→text  R@1 0.68 (chance 0.01)  R@5 ...'."""
    return "\n".join(f"{direction:11s} " + "  ".join(f"R@{k} {recall:.3f} (chance {chance:.3f})"
                                                   for k, (recall, chance) in row.items())
                     for direction, row in report.items())


def modality_gap(image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
    """The vector from the text centroid to the image centroid of the L2-normalised embeddings
    (Liang et al. 2022); its norm is the gap, between 0 (same centre) and 2 (opposite poles)."""
    for name, x in (("image_features", image_features), ("text_features", text_features)):
        if len(check_tensor(x, name, ("n", "dim"))) == 0:
            raise ValueError(f"{name} must be non-empty")
        check_finite(x, name)
    if image_features.shape[1] != text_features.shape[1]:
        raise ValueError(f"image_features and text_features differ in dim: {image_features.shape[1]} vs "
                         f"{text_features.shape[1]}")
    return F.normalize(image_features, dim=1).mean(0) - F.normalize(text_features, dim=1).mean(0)
