import math
import time

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed

from vp_utils.analysis.attention import attention_rollout, cls_attention_map, mean_attention_distance, patch_distances
from vp_utils.models import (ViTConfig, VisionTransformer, count_parameters, patchify, resample_pos_embed, unpatchify,
                             vit)
from vp_utils.pretrained import PRETRAINED, WeightsUnavailable, from_timm, load_pretrained


def _randomise(model, scale=0.1):
    """timm starts norms at (1, 0), LayerScale at a constant and CLS near 0: random values make
    a swapped or skipped module visible in the logits."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("norm1.weight", "norm2.weight", "norm.weight", "gamma")):
                p.copy_(1 + scale * torch.randn(p.shape, generator=generator))
            elif name.endswith("bias") or name == "cls_token":
                p.copy_(scale * torch.randn(p.shape, generator=generator))
    return model


def _peaked_micro(**overrides):
    """A micro ViT with weights large enough that attention is far from uniform."""
    model = vit("vit_micro", **overrides).eval()
    with torch.no_grad():
        for block in model.blocks:
            block.attn.qkv.weight.mul_(10)
    return model


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224"])
def test_from_timm_gives_identical_logits(name):
    torch.manual_seed(0)
    reference = _randomise(timm.create_model(name, pretrained=False)).eval()
    ours = from_timm(reference)
    assert count_parameters(ours) == count_parameters(reference) == count_parameters(vit(name))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant, size", [
    (dict(dynamic_img_size=True), 96),                   # timm resamples positions as we do
    (dict(init_values=1e-5), 64),                         # LayerScale, as in DINOv2
    (dict(global_pool="avg", fc_norm=False), 64),
    (dict(class_token=False, global_pool="avg", fc_norm=False), 64),
    (dict(qkv_bias=False, mlp_ratio=2.0, num_classes=0), 64),
    (dict(reg_tokens=4), 64),                             # registers after the class token
    (dict(reg_tokens=2, no_embed_class=True, dynamic_img_size=True), 96),  # DINOv2 with registers
    (dict(reg_tokens=3, class_token=False, global_pool="avg", fc_norm=False), 64),
])
def test_from_timm_covers_the_variants_we_build(variant, size):
    torch.manual_seed(0)
    reference = _randomise(timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, **variant)).eval()
    ours = from_timm(reference)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant, problem", [
    (dict(global_pool="avg"), "fc_norm"),
    (dict(global_pool="map"), "global_pool 'map'"),
])
def test_unsupported_timm_variants_are_refused(variant, problem):
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=1, **variant)
    with pytest.raises(ValueError, match=problem):
        from_timm(reference)


def test_pretrained_tags_exist_and_fail_fast_offline():
    for name, tag in PRETRAINED.items():
        assert tag in timm.list_pretrained(f"{name}*"), tag
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailable, match="vit_tiny_patch16_224: pretrained weights"):
        load_pretrained("vit_tiny_patch16_224")
    assert time.perf_counter() - start < 2.0


def test_micro_vit_size_and_shapes():
    model = vit("vit_micro")
    assert count_parameters(model) == 809_354
    tokens = model.forward_features(torch.randn(3, 3, 32, 32))
    assert tokens.shape == (3, 1 + 64, 128)
    assert model.forward_head(tokens).shape == (3, 10)
    assert model.forward_head(tokens, pre_logits=True).shape == (3, 128)


def test_returned_attention_is_what_sdpa_computes():
    torch.manual_seed(0)
    model = _peaked_micro().double()  # float64, so the two paths may differ only by round-off
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        fused = model.forward_features(x)
        tokens, attentions = model.forward_features(x, return_attention=True)
        torch.testing.assert_close(tokens, fused)
        assert len(attentions) == 4 and all(a.shape == (2, 4, 65, 65) for a in attentions)
        for a in attentions:
            torch.testing.assert_close(a.sum(dim=-1), torch.ones(2, 4, 65, dtype=torch.float64))
        assert attentions[0].amax() > 0.5  # peaked, so the checks above are not about a uniform map

        # the first block's weights, applied to its values, give SDPA's output
        attn = model.blocks[0].attn
        q, k, v = attn.qkv(model.blocks[0].norm1(model.add_class_token(model.embed_patches(x)))) \
            .reshape(2, 65, 3, 4, 32).permute(2, 0, 3, 1, 4)
        torch.testing.assert_close(attentions[0] @ v, F.scaled_dot_product_attention(q, k, v))


def test_patch_embedding_is_a_linear_map_on_flattened_patches():
    model = vit("vit_micro")
    x = torch.randn(2, 3, 32, 32)
    proj = model.patch_embed.proj
    weight = proj.weight.permute(0, 2, 3, 1).reshape(128, -1)  # (row, column, channel), as patchify
    with torch.no_grad():
        torch.testing.assert_close(model.patch_embed(x), patchify(x, 4) @ weight.T + proj.bias, rtol=1e-5, atol=1e-5)


def test_patchify_layout_and_round_trip():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    patches = patchify(x, 4)
    assert patches.shape == (2, 4, 48)
    torch.testing.assert_close(patches[1, 1], x[1, :, :4, 4:].permute(1, 2, 0).flatten())  # top-right patch
    torch.testing.assert_close(unpatchify(patches, 4, channels=3), x)


def test_position_embeddings_follow_the_input_grid():
    model = vit("vit_micro").eval()
    table = model.pos_embed[:, 1:].detach().clone()
    assert resample_pos_embed(table, (8, 8), (8, 8)) is table
    resized = resample_pos_embed(table, (12, 6), (8, 8))
    torch.testing.assert_close(resized, resample_abs_pos_embed(table, [12, 6], [8, 8], num_prefix_tokens=0))
    assert model.forward_features(torch.randn(2, 3, 48, 24)).shape == (2, 1 + 12 * 6, 128)
    torch.testing.assert_close(model.pos_embed[:, 1:], table)  # the model's own table is untouched
    # at the configured size the positions are added unchanged
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model.embed_patches(x), model.patch_embed(x) + table)


def test_rollout_of_identity_attention_is_identity():
    eye = torch.eye(5).expand(2, 3, 5, 5)
    torch.testing.assert_close(attention_rollout([eye, eye, eye]), torch.eye(5).expand(2, 5, 5))


def test_rollout_mixes_in_the_residual_path():
    uniform = torch.full((1, 2, 4, 4), 0.25)
    one_layer = (torch.full((4, 4), 0.25) + torch.eye(4)) / 2
    torch.testing.assert_close(attention_rollout([uniform])[0], one_layer)
    torch.testing.assert_close(attention_rollout([uniform, uniform])[0], one_layer @ one_layer)
    torch.manual_seed(0)
    _, attentions = _peaked_micro().forward_features(torch.randn(2, 3, 32, 32), return_attention=True)
    rollout = attention_rollout(attentions, discard_ratio=0.9)
    assert rollout.shape == (2, 65, 65)
    torch.testing.assert_close(rollout.sum(dim=-1), torch.ones(2, 65))


def test_mean_attention_distance_of_uniform_and_local_heads():
    rows, cols = 3, 4
    cells = [(r, c) for r in range(rows) for c in range(cols)]
    pairwise = sum(math.dist(a, b) for a in cells for b in cells) / len(cells) ** 2
    tokens = 1 + rows * cols  # a CLS token in front, as in our ViT
    uniform = torch.full((2, 1, tokens, tokens), 1 / tokens)
    local = torch.eye(tokens).expand(2, 1, tokens, tokens)
    distance = mean_attention_distance(torch.cat([uniform, local], dim=1), (rows, cols), patch_size=4)
    torch.testing.assert_close(distance, torch.tensor([4 * pairwise, 0.0]))
    assert patch_distances(2)[0, 3].item() == pytest.approx(math.sqrt(2))


def test_bad_inputs_are_named():
    model = vit("vit_micro")
    with pytest.raises(ValueError, match="patch size 4 must divide the image size, got 30x30"):
        model(torch.randn(1, 3, 30, 30))
    with pytest.raises(ValueError, match="3 channels, got 1"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[0.0]])
    with pytest.raises(ValueError, match="unknown ViT 'vit_huge'"):
        vit("vit_huge")
    with pytest.raises(TypeError, match="depthh"):
        vit("vit_micro", depthh=2)
    with pytest.raises(ValueError, match="patch_size 4 must divide img_size 30"):
        vit("vit_micro", img_size=30)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        vit("vit_micro", embed_dim=130)
    with pytest.raises(ValueError, match="class_token=True"):
        VisionTransformer(ViTConfig(class_token=False, depth=1))
    with pytest.raises(ValueError, match="global_pool"):
        vit("vit_micro", global_pool="max")
    with pytest.raises(ValueError, match="square number of patches"):
        unpatchify(torch.randn(1, 5, 48), 4)
    with pytest.raises(ValueError, match="discard_ratio"):
        attention_rollout([torch.eye(3).expand(1, 1, 3, 3)], discard_ratio=1.0)
    with pytest.raises(ValueError, match="cannot hold a 4x4 grid"):
        mean_attention_distance(torch.eye(9).expand(1, 1, 9, 9), 4)


def test_cls_attention_map_reads_query_zero_over_the_patches():
    tokens = 1 + 2 * 3
    attn = torch.rand(2, 4, tokens, tokens)
    maps = cls_attention_map(attn, (2, 3))
    assert maps.shape == (2, 4, 2, 3)
    torch.testing.assert_close(maps[1, 2, 1, 0], attn[1, 2, 0, 1 + 3])  # patch (row 1, col 0) is token 1 + 3
    rollout = attention_rollout([attn.softmax(-1)])
    assert cls_attention_map(rollout, (2, 3)).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="no CLS token"):
        cls_attention_map(torch.rand(1, 1, 6, 6), (2, 3))


def test_registers_sit_between_the_class_token_and_the_patches_and_pooling_skips_them():
    torch.manual_seed(0)
    model = vit("vit_micro", reg_tokens=4, global_pool="avg", depth=1)
    assert model.num_prefix_tokens == 5 and model.pos_embed.shape[1] == 5 + 64
    x = torch.randn(2, 3, 32, 32)
    tokens = model.forward_features(x)
    assert tokens.shape == (2, 5 + 64, 128)
    torch.testing.assert_close(model.forward_head(tokens, pre_logits=True), tokens[:, 5:].mean(1))
    bare = vit("vit_micro", reg_tokens=4, class_position=False)
    assert bare.prefix_positions == 0 and bare.pos_embed.shape[1] == 64
    with pytest.raises(ValueError, match="reg_tokens"):
        vit("vit_micro", reg_tokens=-1)
