import numpy as np
import pytest
import torch

from vp_utils.analysis.curation import cluster_retrieve, copies_of, deduplicate


def test_deduplicate_keeps_the_first_of_each_group_of_near_copies():
    torch.manual_seed(0)
    distinct = torch.randn(5, 32)
    copies = distinct[[1, 1, 3]] + 1e-3 * torch.randn(3, 32)
    keep = deduplicate(torch.cat([distinct, copies]), threshold=0.99)
    assert keep.tolist() == [True] * 5 + [False] * 3


def test_deduplicate_keeps_everything_below_the_threshold_and_checks_it():
    x = torch.eye(4)  # orthogonal: similarity 0
    assert deduplicate(x, threshold=0.5).all()
    assert deduplicate(x, threshold=-0.5).tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="cosine"):
        deduplicate(x, threshold=2.0)
    with pytest.raises(ValueError, match=r"\(n, dim\)"):
        deduplicate(torch.ones(3))


def test_cluster_retrieve_draws_from_the_query_cluster_only():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 10
    pool = np.concatenate([centres[c] + rng.normal(size=(40, 3)) for c in range(3)])  # 40 per cluster
    drawn = cluster_retrieve(torch.tensor(pool), torch.tensor(centres[[2]]), clusters=3, per_query=10)
    assert len(drawn) == 10 and (drawn >= 80).all()  # all from the third group
    both = cluster_retrieve(torch.tensor(pool), torch.tensor(centres[[0, 0, 1]]), clusters=3, per_query=50)
    assert set(both) == set(range(80))  # a cluster gives at most its members, each once


def test_cluster_retrieve_rejects_bad_input():
    pool = torch.randn(10, 4)
    with pytest.raises(ValueError, match="dimension"):
        cluster_retrieve(pool, torch.randn(2, 5), clusters=2, per_query=1)
    with pytest.raises(ValueError, match="clusters"):
        cluster_retrieve(pool, torch.randn(2, 4), clusters=11, per_query=1)
    with pytest.raises(ValueError):
        cluster_retrieve(pool, torch.randn(2, 4), clusters=2, per_query=0)


def test_copies_of_finds_the_rows_that_copy_an_evaluation_image():
    torch.manual_seed(0)
    pool, evaluation = torch.randn(6, 16), torch.randn(2, 16)
    pool[4], pool[5] = evaluation[0], evaluation[1] + 0.3 * torch.randn(16)  # an exact copy; a merely similar image
    assert copies_of(pool, evaluation).tolist() == [False] * 4 + [True, False]
    with pytest.raises(ValueError, match="evaluation has 8 dimensions"):
        copies_of(pool, torch.randn(2, 8))
