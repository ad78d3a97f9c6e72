import pytest
import torch

from vp_utils.analysis.attention import keep_mass
from vp_utils.analysis.evaluation import dense_probe, mask_iou, mean_iou, patch_labels
from vp_utils.models import vit
from vp_utils.models.dino import DINO, DINOHead, MultiCropWrapper
from vp_utils.training import cosine_ramp
from vp_utils.objectives import ema_update, update_teacher


def _dino(out_dim=32):
    torch.manual_seed(0)
    backbone = vit("vit_micro", embed_dim=32, num_heads=2, depth=1, num_classes=0)
    return DINO(backbone, DINOHead(32, out_dim, hidden_dim=48, bottleneck_dim=16))


def test_head_last_layer_is_weight_normalised_with_frozen_unit_norms():
    head = DINOHead(32, 64, hidden_dim=48, bottleneck_dim=16)
    assert [type(m).__name__ for m in head.mlp] == ["Linear", "GELU", "Linear", "GELU", "Linear"]
    x = torch.randn(5, 32)
    out = head(x)
    weight = head.last_layer.weight
    assert out.shape == (5, 64) and torch.allclose(weight.norm(dim=1), torch.ones(64), atol=1e-5)
    assert out.abs().max() <= 1 + 1e-5  # unit rows times a unit bottleneck: cosine similarities
    assert not head.last_layer.parametrizations.weight.original0.requires_grad
    assert DINOHead(32, 64, norm_last_layer=False).last_layer.parametrizations.weight.original0.requires_grad


def test_multicrop_wrapper_equals_separate_passes():
    model = _dino()
    crops = [torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32), torch.rand(3, 3, 16, 16)]
    outs = model.student(crops)
    assert [tuple(o.shape) for o in outs] == [(3, 32)] * 3
    backbone, head = model.student.backbone, model.student.head
    for crop, out in zip(crops, outs):
        assert torch.allclose(head(backbone(crop)), out, atol=1e-5)


def test_teacher_starts_equal_gets_no_gradient_and_follows_by_ema():
    model = _dino()
    crops = [torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), torch.rand(2, 3, 16, 16)]
    student, teacher = model(crops)
    assert len(student) == 3 and len(teacher) == 2 and not teacher[0].requires_grad
    assert torch.allclose(student[0], teacher[0], atol=1e-6)
    sum(s.sum() for s in student).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.teacher.parameters()]
    update_teacher(model, 0.9)
    for b, t, s in zip(before, model.teacher.parameters(), model.student.parameters()):
        assert torch.allclose(t, 0.9 * b + 0.1 * s, atol=1e-6)
    with pytest.raises(ValueError, match="n_global"):
        model(crops, n_global=4)


def test_ema_update_extremes_and_checks():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    ema_update(a, b, 1.0)
    assert not torch.equal(a.weight, b.weight)
    ema_update(a, b, 0.0)
    assert torch.equal(a.weight, b.weight)
    with pytest.raises(ValueError, match="architecture"):
        ema_update(a, torch.nn.Linear(3, 4), 0.5)
    with pytest.raises(ValueError, match="momentum"):
        ema_update(a, b, 1.5)


def test_cosine_ramp_goes_from_start_to_end():
    assert cosine_ramp(0, 100, 0.99, 1.0) == pytest.approx(0.99)
    assert cosine_ramp(50, 100, 0.99, 1.0) == pytest.approx(0.995)
    assert cosine_ramp(100, 100, 0.99, 1.0) == pytest.approx(1.0)


def test_keep_mass_and_mask_iou():
    maps = torch.tensor([[0.5, 0.3], [0.15, 0.05]])
    assert keep_mass(maps, 0.6).tolist() == [[True, True], [False, False]]
    assert keep_mass(maps, 0.5).tolist() == [[True, False], [False, False]]
    assert keep_mass(torch.ones(3, 10, 10), 0.6).sum() == 3 * 60  # a flat map keeps 60% of its cells
    target = torch.zeros(1, 4, 4, dtype=torch.bool)
    target[0, :2, :2] = True  # the top-left quarter in pixels
    assert mask_iou(torch.tensor([[[True, False], [False, False]]]), target).item() == 1.0
    assert mask_iou(torch.tensor([[[True, True], [False, False]]]), target).item() == 0.5
    assert mask_iou(torch.zeros(1, 2, 2), target).item() == 0.0
    with pytest.raises(ValueError, match="tile"):
        mask_iou(torch.ones(1, 3, 3), target)


def test_mean_iou_and_patch_labels():
    target = torch.tensor([[0, 0, 1, 1]])
    assert mean_iou(target, target, 3) == 1.0
    assert mean_iou(torch.tensor([[0, 0, 0, 1]]), target, 3) == pytest.approx((2 / 3 + 1 / 2) / 2)
    maps = torch.tensor([[[1, 1, 0, 0], [1, 2, 0, 0], [3, 3, 4, 4], [3, 3, 4, 5]]])
    assert patch_labels(maps, 2).tolist() == [[1, 0, 3, 4]]
    assert patch_labels(maps, 2, "mean").tolist() == [[1.25, 0.0, 3.0, 4.25]]


def test_dense_probe_learns_a_per_patch_linear_map():
    torch.manual_seed(0)
    x = torch.randn(40, 9, 4)
    labels, values = (x[..., 0] > 0).long(), 2 * x[..., 1] - x[..., 2]
    predicted = dense_probe(x[:30], labels[:30], x[30:], "classify")
    assert (predicted == labels[30:]).float().mean() > 0.95
    depth = dense_probe(x[:30], values[:30], x[30:], "regress", alpha=1e-3)
    assert torch.allclose(depth.float(), values[30:], atol=1e-2)
    with pytest.raises(ValueError, match="task"):
        dense_probe(x[:30], labels[:30], x[30:], "segment")


def test_block_masks_hide_half_the_images_in_blocks_as_dinov2_does():
    from vp_utils.objectives import block_patch_mask
    mask = block_patch_mask(200, 8, (0.1, 0.5), generator=torch.Generator().manual_seed(0))
    again = block_patch_mask(200, 8, (0.1, 0.5), generator=torch.Generator().manual_seed(0))
    assert torch.equal(mask, again) and set(mask.unique().tolist()) == {0.0, 1.0}
    hidden = mask.sum(1)
    assert (hidden > 0).sum() == 100  # exactly half the images are masked, the rest stay whole
    assert hidden.max() <= 32 and hidden[hidden > 0].min() >= 1
    assert 0.2 < hidden[hidden > 0].mean() / 64 < 0.35  # target shares spread over 10-50%
    # blocks, not scattered patches: most hidden patches have a hidden neighbour on the grid
    assert _share_with_hidden_neighbour(mask.view(200, 8, 8)) > 0.9
    scattered = (torch.rand(200, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    assert _share_with_hidden_neighbour(scattered) < 0.85
    with pytest.raises(ValueError, match="share"):
        block_patch_mask(4, 8, share=2.0)


def _share_with_hidden_neighbour(grid: torch.Tensor) -> float:
    """Of the hidden patches in (B, H, W) masks, the share with a hidden patch above, below or beside."""
    padded = torch.nn.functional.pad(grid, (1, 1, 1, 1))
    neighbours = padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
    return (((neighbours > 0) & grid.bool()).sum() / grid.sum()).item()


def test_ibot_branch_hides_masked_patches_behind_the_mask_token():
    from vp_utils.objectives import block_patch_mask
    torch.manual_seed(0)
    backbone = vit("vit_micro", embed_dim=32, num_heads=2, depth=1, num_classes=0)
    model = DINO(backbone, DINOHead(32, 16, hidden_dim=24, bottleneck_dim=8), DINOHead(32, 16, hidden_dim=24, bottleneck_dim=8))
    images = torch.rand(3, 3, 32, 32)
    mask = block_patch_mask(3, 8, (0.25, 0.25), share=1.0, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (3, 64) and (mask.sum(1) > 0).all() and (mask.sum(1) <= 16).all()
    student, teacher = model.forward_masked(images, mask)
    assert student.shape == teacher.shape == (3, 64, 16) and not teacher.requires_grad
    unmasked = model.student.patch_logits(images)
    assert torch.allclose(unmasked, teacher, atol=1e-5)  # the teacher starts as the student, and sees every patch
    assert not torch.allclose(student, teacher, atol=1e-3)
    # a hidden patch's pixels cannot reach the student: change them and nothing moves
    first = mask[0].view(8, 8).repeat_interleave(4, 0).repeat_interleave(4, 1).bool()
    changed = images.clone()
    changed[0][:, first] = 1 - changed[0][:, first]
    assert torch.allclose(model.student.patch_logits(changed, mask)[0], student[0], atol=1e-5)
    with pytest.raises(ValueError, match="mask must be"):
        model.student.patch_logits(images, mask[:, :10])
    with pytest.raises(ValueError, match="no patch_head"):
        _dino().student.patch_logits(images)


@pytest.mark.parametrize("share", [0.5, 1.0])
def test_dinov2_batch_masks_its_share_of_the_global_crops_only(share):
    from vp_utils.data import ShapesWorld
    from vp_utils.objectives import dinov2_batch
    *crops, mask = dinov2_batch(ShapesWorld(image_size=32, seed=0), 0, 0, 8, mask_share=share)
    assert mask.shape == (16, 64)  # two global crops per scene, 8x8 patches each
    assert (mask.sum(1) > 0).float().mean() == share
    assert len(crops[0]) == 8


def test_dinov2_objective_with_nothing_hidden_has_no_ibot_term_and_still_trains():
    from vp_utils.data import ShapesWorld
    from vp_utils.objectives import dinov2_batch, dinov2_objective
    from vp_utils.training import get_recipe
    torch.manual_seed(0)
    model = get_recipe("dinov2_floor").build()
    batch = dinov2_batch(ShapesWorld(image_size=32, seed=0), 0, 0, 4, mask_share=0.0)
    out = dinov2_objective(model, batch)
    assert out["iBOT"] == 0 and out["loss"] > 0
    out["loss"].backward()
    assert model.student.backbone.patch_embed.proj.weight.grad.abs().sum() > 0
