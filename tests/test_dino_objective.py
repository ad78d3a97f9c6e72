import math

import pytest
import torch
import torch.nn.functional as F

from vp_utils.objectives import (dino_loss, entropy, ibot_patch_loss, koleo_loss, sinkhorn_knopp, teacher_targets,
                                 update_center)


def _reference_dino_loss(student, teacher, n_global, student_temp):
    """The official loop (facebookresearch/dino, DINOLoss.forward) on chunked tensors."""
    total, terms = 0.0, 0
    for iq, q in enumerate(teacher):
        for v in range(len(student)):
            if v == iq:
                continue
            total += torch.sum(-q * F.log_softmax(student[v] / student_temp, dim=-1), dim=-1).mean()
            terms += 1
    return total / terms


def test_dino_loss_matches_the_official_loop_and_skips_same_view_pairs():
    torch.manual_seed(0)
    student = [torch.randn(5, 16) for _ in range(4)]
    teacher = [F.softmax(torch.randn(5, 16), dim=-1) for _ in range(2)]
    ours = dino_loss(student, teacher, 0.1)
    assert torch.allclose(ours, _reference_dino_loss(student, teacher, 2, 0.1))
    # changing the student's view 0 changes only the pairs with teacher view 1, never (0, 0)
    matched = [teacher[0] * 0 + F.one_hot(torch.zeros(5, dtype=torch.long), 16)] + teacher[1:]
    spiked = [student[0] + 100 * F.one_hot(torch.zeros(5, dtype=torch.long), 16)] + student[1:]
    spiked_pairs = _reference_dino_loss(spiked, matched, 2, 0.1)
    assert torch.allclose(dino_loss(spiked, matched, 0.1), spiked_pairs)
    assert not torch.allclose(dino_loss(spiked, matched, 0.1), dino_loss(student, matched, 0.1))


def test_dino_loss_is_cross_entropy_so_it_splits_into_entropy_plus_kl():
    torch.manual_seed(1)
    q = F.softmax(torch.randn(6, 10), dim=-1)
    student = [torch.randn(6, 10), torch.randn(6, 10)]
    loss = dino_loss(student, [q], 1.0)  # one pair: teacher view 0, student view 1
    kl = F.kl_div(F.log_softmax(student[1], -1), q, reduction="batchmean")
    assert torch.allclose(loss, entropy(q) + kl, atol=1e-5)


def test_dino_loss_rejects_bad_views():
    with pytest.raises(ValueError, match="two views"):
        dino_loss([torch.randn(2, 4)], [torch.rand(2, 4)])
    with pytest.raises(ValueError, match="one shape"):
        dino_loss([torch.randn(2, 4), torch.randn(3, 4)], [torch.rand(2, 4)])
    with pytest.raises(ValueError, match="more than"):
        dino_loss([torch.randn(2, 4)], [torch.rand(2, 4)] * 2)


def test_centering_and_sharpening():
    logits = torch.tensor([[2.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
    center = update_center(torch.zeros(1, 3), logits, momentum=0.5)
    assert torch.allclose(center, torch.tensor([[1.0, 0.25, 0.0]]))
    flat = teacher_targets(logits, torch.zeros(1, 3), 100.0)
    sharp = teacher_targets(logits, torch.zeros(1, 3), 0.01)
    assert torch.allclose(flat.sum(-1), torch.ones(2)) and torch.allclose(sharp.sum(-1), torch.ones(2))
    assert entropy(flat) > 0.99 * math.log(3) and entropy(sharp) < 1e-3
    # centering removes what all images share: the constant-dominant dimension 0 stops winning
    constant = torch.tensor([[5.0, 0.0, 1.0], [5.0, 1.0, 0.0]])
    assert teacher_targets(constant, torch.zeros(1, 3), 0.1).argmax(-1).tolist() == [0, 0]
    assert teacher_targets(constant, constant.mean(0, keepdim=True), 0.1).argmax(-1).tolist() == [2, 1]
    with pytest.raises(ValueError, match="center momentum"):
        update_center(center, logits, momentum=1.0)
    with pytest.raises(ValueError, match="dimensions"):
        teacher_targets(logits, torch.zeros(1, 4), 0.1)


def test_entropy_extremes():
    assert torch.allclose(entropy(torch.full((3, 8), 1 / 8)), torch.tensor(math.log(8)))
    assert entropy(F.one_hot(torch.arange(3), 8).float()) == 0


def test_ibot_patch_loss_counts_masked_patches_only():
    torch.manual_seed(2)
    student, teacher = torch.randn(3, 5, 7), F.softmax(torch.randn(3, 5, 7), dim=-1)
    mask = torch.tensor([[1, 0, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    loss = ibot_patch_loss(student, teacher, mask, 0.1)
    per_patch = -(teacher * F.log_softmax(student / 0.1, -1)).sum(-1)
    expected = (per_patch[0, [0, 3]].mean() + per_patch[2].mean()) / 2  # image 1 hides nothing: left out
    assert torch.allclose(loss, expected)
    changed = student.clone()
    changed[mask == 0] += 50  # visible patches do not count
    assert torch.allclose(ibot_patch_loss(changed, teacher, mask, 0.1), loss)
    with pytest.raises(ValueError, match="nothing to predict"):
        ibot_patch_loss(student, teacher, torch.zeros(3, 5), 0.1)
    with pytest.raises(ValueError, match="mask must be"):
        ibot_patch_loss(student, teacher, torch.ones(3, 4), 0.1)


def test_koleo_rewards_spread():
    torch.manual_seed(3)
    spread = torch.eye(8)  # orthogonal: every neighbour at distance sqrt(2)
    assert torch.allclose(koleo_loss(spread), torch.tensor(-math.log(math.sqrt(2))), atol=1e-5)
    clumped = torch.ones(8, 8) + 0.01 * torch.randn(8, 8)
    assert koleo_loss(clumped) > koleo_loss(spread) + 2
    with pytest.raises(ValueError):
        koleo_loss(torch.randn(1, 4))


def test_sinkhorn_balances_prototypes_where_softmax_does_not():
    torch.manual_seed(4)
    logits = torch.randn(64, 8) * 0.1
    logits[:, 0] += 0.3  # every image leans towards prototype 0
    softmax = F.softmax(logits / 0.04, dim=-1)
    balanced = sinkhorn_knopp(logits, 0.04, iterations=10)
    assert torch.allclose(balanced.sum(dim=1), torch.ones(64), atol=1e-5)
    assert softmax.mean(0)[0] > 0.5  # softmax hands most of the batch to one prototype
    assert torch.allclose(balanced.mean(0), torch.full((8,), 1 / 8), atol=0.02)  # Sinkhorn: an equal share each
    assert torch.allclose(sinkhorn_knopp(logits + 50, 0.04, 10), balanced, atol=1e-4)  # no overflow: exp(1250) would be inf


def test_the_center_follows_the_global_batch_under_torchrun(monkeypatch):
    """Two processes with shards whose means are m1 and m2 move the center by (m1 + m2) / 2, as one
    process on the whole batch would; the all-reduce is simulated by adding the other shard's mean."""
    from vp_utils.objectives import dino as dino_objectives

    torch.manual_seed(0)
    mine, other = torch.randn(4, 8), torch.randn(4, 8)
    monkeypatch.setattr(dino_objectives, "is_distributed", lambda: True)
    monkeypatch.setattr(dino_objectives, "world_size", lambda: 2)
    monkeypatch.setattr(dino_objectives.dist, "all_reduce", lambda t: t.add_(other.mean(dim=0, keepdim=True)))
    center = update_center(torch.zeros(1, 8), mine, momentum=0.5)
    torch.testing.assert_close(center, 0.5 * torch.cat([mine, other]).mean(dim=0, keepdim=True))
