import timm
import torch

from vp_utils.pretrained import PRETRAINED, from_timm


def _randomise(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):  # LayerScale starts at 1e-5, which would hide the blocks
                p.copy_(torch.rand_like(p))
    return model


def test_timm_dino_vit_small_converts_exactly():
    reference = timm.create_model("vit_small_patch16_224.dino", pretrained=False).eval()
    ours = from_timm(reference)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(ours.forward_features(x), reference.forward_features(x), atol=1e-5)
        assert torch.allclose(ours(x), reference(x), atol=1e-5)
    assert "vit_small_patch16_224.dino" in PRETRAINED


def test_timm_dinov2_vit_small_with_layerscale_and_14px_patches_converts_exactly():
    reference = _randomise(timm.create_model("vit_small_patch14_dinov2", pretrained=False, img_size=126)).eval()
    ours = from_timm(reference)
    assert ours.config.patch_size == 14 and ours.config.init_values is not None
    assert torch.equal(ours.blocks[0].ls1.gamma, reference.blocks[0].ls1.gamma)
    x = torch.randn(2, 3, 126, 126)
    with torch.no_grad():
        assert torch.allclose(ours.forward_features(x), reference.forward_features(x), atol=1e-4)
    assert PRETRAINED["vit_small_patch14_dinov2"].startswith("vit_small_patch14_dinov2")


def test_timm_dinov2_with_registers_converts_exactly():
    reference = _randomise(timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False, img_size=70,
                                             dynamic_img_size=True)).eval()
    ours = from_timm(reference)
    assert (ours.num_prefix_tokens, ours.prefix_positions, ours.pos_embed.shape[1]) == (5, 0, 25)
    with torch.no_grad():
        for size in (70, 112):  # its own 5x5 grid, and 8x8 through the resized position table
            x = torch.randn(2, 3, size, size)
            assert torch.allclose(ours.forward_features(x), reference.forward_features(x), atol=1e-4)
    assert PRETRAINED["vit_small_patch14_reg4_dinov2"].startswith("vit_small_patch14_reg4_dinov2")
