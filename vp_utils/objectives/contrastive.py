"""Contrastive objectives: InfoNCE, SimCLR's NT-Xent, and Wang & Isola's alignment and uniformity
(CLIP's symmetric loss is in `objectives.clip`).

Every loss works on L2-normalised embeddings and a temperature tau: logits are cosine
similarities / tau, and the loss is a cross-entropy that picks each query's positive out of all
keys. The losses that compare a batch with itself (NT-Xent, and CLIP's) gather the keys from every
process (`vp_utils.objectives.distributed`) and score only the local queries, so N processes give the same
loss and gradients as one process on the concatenated batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..lab.checks import check_positive
from .distributed import all_gather_with_grad, local_rows


def check_embedding_pair(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    """Refuse anything but two (batch, dim) tensors of one dim; `names` is "first,second" for the message."""
    first, second = names.split(",")
    for name, x in ((first, a), (second, b)):
        if not isinstance(x, torch.Tensor) or x.ndim != 2:
            raise ValueError(f"{name} must be a 2-d tensor (batch, dim), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{first} and {second} must have the same dim, got {a.shape[1]} and {b.shape[1]}")


def info_nce(queries: torch.Tensor, keys: torch.Tensor, temperature: float = 0.1,
             targets: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE (van den Oord et al. 2018): cross-entropy over the similarity matrix queries x keys.

    Query i's positive is keys[targets[i]] (default: keys[i]); every other key is a negative.
    With N keys, log N - loss is a lower bound on the mutual information between the views.
    """
    check_embedding_pair(queries, keys, "queries,keys")
    check_positive(temperature, "temperature")
    if targets is None:
        if len(queries) != len(keys):
            raise ValueError(f"without targets, query i's positive is key i: need as many keys as queries, "
                             f"got {len(queries)} and {len(keys)}")
        targets = torch.arange(len(queries), device=queries.device)
    logits = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T / temperature
    return F.cross_entropy(logits, targets)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy over 2N views (Chen et al. 2020).

    z1[i] and z2[i] are two views of image i. Each of the 2N views must find its partner among
    the other 2N - 1 views (itself excluded); the 2N - 2 views of other images are negatives.
    The N images are gathered from every process.
    """
    check_embedding_pair(z1, z2, "z1,z2")
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must be views of the same images, got shapes {tuple(z1.shape)} and {tuple(z2.shape)}")
    check_positive(temperature, "temperature")
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    all1, all2 = all_gather_with_grad(z1), all_gather_with_grad(z2)
    n, rows = len(all1), local_rows(len(z1)).to(z1.device)
    logits = torch.cat([z1, z2]) @ torch.cat([all1, all2]).T / temperature
    self_index = torch.cat([rows, rows + n])
    logits = logits.masked_fill(F.one_hot(self_index, 2 * n).bool(), float("-inf"))
    return F.cross_entropy(logits, torch.cat([rows + n, rows]))


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Wang & Isola (2020): mean ||f(x) - f(x+)||^alpha over positive pairs of normalised
    embeddings. 0 when both views land on the same point; minimised alone, it collapses."""
    check_embedding_pair(z1, z2, "z1,z2")
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must pair up row by row, got shapes {tuple(z1.shape)} and {tuple(z2.shape)}")
    return (F.normalize(z1, dim=1) - F.normalize(z2, dim=1)).norm(dim=1).pow(alpha).mean()


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Wang & Isola (2020): log mean exp(-t ||f(x) - f(y)||^2) over all pairs of normalised
    embeddings. Lower is more uniform on the sphere; 0 when every point coincides."""
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or len(z) < 2:
        raise ValueError(f"z must be a 2-d tensor (batch, dim) with at least 2 rows, got "
                         f"{tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__}")
    return torch.pdist(F.normalize(z, dim=1)).pow(2).mul(-t).exp().mean().log()
