"""Data curation in miniature, the way DINOv2 built LVD-142M from an uncurated web crawl: embed
every image with a self-supervised model, drop near-duplicates, then keep what lies near a small
curated seed set.

DINOv2 (Oquab et al. 2023, Sec. 3) de-duplicates by cosine similarity between embeddings and, for
a small seed set, clusters the uncurated pool with k-means and samples from the cluster of each
seed image. Both steps below work on any (n, dim) embeddings.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..lab.checks import check_positive


def deduplicate(features: torch.Tensor, threshold: float = 0.95) -> torch.Tensor:
    """A boolean keep-mask over the rows of (n, dim) embeddings: an image is dropped when an
    earlier *kept* image has cosine similarity above `threshold` with it, so one copy of every
    group of near-duplicates stays (the first)."""
    x = _normalised(features, "features")
    if not -1 <= threshold <= 1:
        raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
    similar = (x @ x.T) > threshold
    keep = torch.ones(len(x), dtype=torch.bool)
    for i in range(len(x)):
        if keep[i]:
            later = similar[i].clone()
            later[: i + 1] = False
            keep &= ~later  # i stays; its near-copies after it go
    return keep


def copies_of(features: torch.Tensor, evaluation: torch.Tensor, threshold: float = 0.9999) -> torch.Tensor:
    """A boolean mask over the rows of (n, dim) embeddings: True where a row copies a row of
    `evaluation` (m, dim), cosine similarity above `threshold`. DINOv2 removes such copies of its
    evaluation images from its training data; the threshold sits far above `deduplicate`'s, since
    in a small world many different images are as close as near-duplicates are."""
    x, reference = _normalised(features, "features"), _normalised(evaluation, "evaluation")
    if reference.shape[1] != x.shape[1]:
        raise ValueError(f"evaluation has {reference.shape[1]} dimensions, features {x.shape[1]}")
    return ((x @ reference.T) > threshold).any(dim=1)


def cluster_retrieve(pool: torch.Tensor, queries: torch.Tensor, clusters: int, per_query: int,
                     seed: int = 0) -> np.ndarray:
    """DINOv2's retrieval for a small seed set: k-means the pool's embeddings (cosine, via
    normalised vectors) into `clusters` groups, find each query's cluster and draw up to
    `per_query` pool images from it. Returns the sorted, distinct pool indices drawn."""
    from sklearn.cluster import KMeans

    pool_x, query_x = _normalised(pool, "pool").numpy(), _normalised(queries, "queries").numpy()
    if pool_x.shape[1] != query_x.shape[1]:
        raise ValueError(f"pool and queries differ in dimension: {pool_x.shape[1]} vs {query_x.shape[1]}")
    check_positive(per_query, "per_query")
    if not 1 <= clusters <= len(pool_x):
        raise ValueError(f"clusters must be between 1 and the {len(pool_x)} pool images, got {clusters}")
    kmeans = KMeans(clusters, n_init=1, random_state=seed).fit(pool_x)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(kmeans.labels_ == c) for c in range(clusters)]
    drawn = [rng.permutation(members[c])[:per_query] for c in kmeans.predict(query_x)]
    return np.unique(np.concatenate(drawn))


def _normalised(x, name: str) -> torch.Tensor:
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"{name} must be a non-empty (n, dim) matrix of embeddings, got shape {tuple(x.shape)}")
    return F.normalize(x, dim=1)
