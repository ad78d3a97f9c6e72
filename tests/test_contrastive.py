import math

import pytest
import torch
import torch.nn.functional as F

from vp_utils.objectives import alignment, clip_loss, info_nce, nt_xent, uniformity
from vp_utils.models.heads import Embedder, projection_head
from vp_utils.models import resnet


def nt_xent_loop(z1, z2, temperature):
    """SimCLR's loss written as the paper's sum over the 2N views, one view at a time."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n, total = len(z1), 0.0
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        others = [j for j in range(2 * n) if j != i]
        denominator = sum(torch.exp(z[i] @ z[j] / temperature) for j in others)
        total = total - torch.log(torch.exp(z[i] @ z[partner] / temperature) / denominator)
    return total / (2 * n)


def test_info_nce_is_cross_entropy_over_cosine_similarities():
    torch.manual_seed(0)
    q, k = torch.randn(6, 4), torch.randn(9, 4)
    targets = torch.tensor([0, 2, 4, 6, 8, 1])
    logits = torch.stack([torch.stack([F.cosine_similarity(a, b, dim=0) for b in k]) for a in q]) / 0.2
    assert torch.allclose(info_nce(q, k, 0.2, targets), F.cross_entropy(logits, targets), atol=1e-6)


def test_info_nce_bound_on_mutual_information():
    # identical, well-separated pairs: loss -> 0 and log N - loss -> log N, the bound's ceiling
    z = torch.eye(8)
    assert info_nce(z, z, temperature=0.01) < 1e-6
    # unrelated keys: loss near log N, so the bound says almost nothing
    torch.manual_seed(0)
    loss = info_nce(torch.randn(512, 16), torch.randn(512, 16), temperature=1.0)
    assert abs(loss.item() - math.log(512)) < 0.1


def test_nt_xent_matches_the_direct_loop():
    torch.manual_seed(0)
    z1, z2 = torch.randn(5, 3), torch.randn(5, 3)
    for temperature in (0.1, 0.5, 1.0):
        assert torch.allclose(nt_xent(z1, z2, temperature), nt_xent_loop(z1, z2, temperature), atol=1e-5)


def test_nt_xent_excludes_each_view_from_its_own_negatives():
    # partners identical and other images orthogonal: the loss vanishes only if a view is not
    # compared with itself (its self-similarity would tie with the positive and cost log 2)
    z = torch.eye(4)
    assert nt_xent(z, z, temperature=0.01) < 1e-6


def test_clip_loss_is_symmetric_mean_of_two_info_nce():
    torch.manual_seed(0)
    a, b = torch.randn(7, 5), torch.randn(7, 5)
    expected = (info_nce(a, b, 0.07) + info_nce(b, a, 0.07)) / 2
    assert torch.allclose(clip_loss(a, b, 0.07), expected, atol=1e-6)
    assert torch.allclose(clip_loss(a, b, 0.07), clip_loss(b, a, 0.07), atol=1e-6)
    learnable = torch.tensor(0.07, requires_grad=True)
    clip_loss(a, b, learnable).backward()
    assert learnable.grad is not None and learnable.grad != 0


def test_alignment_and_uniformity_known_values():
    z = torch.eye(3)
    assert alignment(z, z) == 0
    assert torch.allclose(alignment(z, -z), torch.tensor(4.0))  # antipodes: ||2e||^2
    collapsed = torch.ones(10, 4)
    assert torch.allclose(uniformity(collapsed), torch.tensor(0.0), atol=1e-6)
    # orthonormal points: every pair at squared distance 2, so log exp(-2 * 2) = -4
    assert torch.allclose(uniformity(torch.eye(5)), torch.tensor(-4.0), atol=1e-6)
    torch.manual_seed(0)
    spread = uniformity(torch.randn(500, 3))
    assert spread < uniformity(torch.randn(500, 3) * 0.1 + torch.tensor([1.0, 0, 0]))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="queries must be a 2-d tensor"):
        info_nce(torch.randn(4), torch.randn(4, 2))
    with pytest.raises(ValueError, match="same dim"):
        info_nce(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="need as many keys as queries"):
        info_nce(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="views of the same images"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="temperature must be positive"):
        nt_xent(torch.randn(4, 3), torch.randn(4, 3), temperature=0)
    with pytest.raises(ValueError, match="one caption per image"):
        clip_loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="at least 2 rows"):
        uniformity(torch.randn(1, 3))


def test_projection_heads_and_embedder():
    encoder = resnet("resnet8", width=4)
    for kind, out in (("none", 16), ("linear", 8), ("mlp", 8)):
        model = Embedder(encoder, projection_head(16, 12, 8, kind)).eval()
        x = torch.rand(3, 3, 32, 32)
        assert model.features(x).shape == (3, 16)
        assert model(x).shape == (3, out)
    assert isinstance(projection_head(16, kind="mlp")[1], torch.nn.BatchNorm1d)
    with pytest.raises(ValueError, match="unknown head kind"):
        projection_head(16, kind="deep")


def test_plot_embedding_projects_to_two_dimensions():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vp_utils.lab.figures import plot_embedding

    torch.manual_seed(0)
    labels = torch.arange(30) % 3
    ax = plot_embedding(torch.randn(30, 8), labels, names=["a", "b", "c"], title="pca")
    assert len(ax.collections) == 3 and [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 30
    with pytest.raises(ValueError, match="one label each"):
        plot_embedding(torch.randn(30, 8), labels[:10])
    with pytest.raises(ValueError, match="unknown method"):
        plot_embedding(torch.randn(30, 8), labels, method="umap")
    plt.close("all")
