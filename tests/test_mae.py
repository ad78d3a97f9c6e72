import numpy as np
import pytest
import timm
import torch

from vp_utils.models import vit
from vp_utils.models.mae import MaskedAutoencoder, random_masking, reconstruct, sincos_pos_embed, visible_count
from vp_utils.objectives import mae_loss, masked_mse, mean_colour_baseline, patch_targets
from vp_utils.pretrained import PRETRAINED, WeightsUnavailable, from_timm, load_pretrained


def _mae(**overrides):
    torch.manual_seed(0)
    return MaskedAutoencoder(vit("vit_micro", num_classes=0, depth=1), decoder_dim=32, decoder_depth=1, **overrides)


@pytest.mark.parametrize("ratio, keep", [(0.0, 64), (0.25, 48), (0.5, 32), (0.75, 16), (0.9, 6)])
def test_masking_keeps_exactly_the_right_tokens_per_sample(ratio, keep):
    tokens = torch.randn(5, 64, 8)
    visible, mask, ids_restore = random_masking(tokens, ratio, torch.Generator().manual_seed(0))
    assert visible.shape == (5, keep, 8) and visible_count(64, ratio) == keep
    assert torch.equal(mask.sum(dim=1), torch.full((5,), 64.0 - keep))
    for b in range(5):  # the visible tokens are exactly the unmasked ones, in shuffled order
        kept = tokens[b][mask[b] == 0]
        assert sorted(map(tuple, kept.tolist())) == sorted(map(tuple, visible[b].tolist()))
    if 0 < ratio:
        assert len({tuple(m.tolist()) for m in mask}) == 5  # a different subset for every sample


def test_ids_restore_inverts_the_shuffle():
    tokens = torch.randn(4, 16, 3)
    visible, mask, ids_restore = random_masking(tokens, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(ids_restore.sort(dim=1).values, torch.arange(16).expand(4, -1))  # a permutation
    ids_shuffle = ids_restore.argsort(dim=1)
    shuffled = tokens.gather(1, ids_shuffle[..., None].expand(-1, -1, 3))
    assert torch.equal(shuffled[:, :8], visible)  # the visible tokens lead the shuffled sequence
    assert not torch.equal(shuffled, tokens)
    assert torch.equal(shuffled.gather(1, ids_restore[..., None].expand(-1, -1, 3)), tokens)
    assert torch.equal(mask.gather(1, ids_shuffle), torch.tensor([[0.0] * 8 + [1.0] * 8]).expand(4, -1))


def test_given_noise_masks_as_the_same_noise_drawn():
    tokens = torch.randn(3, 16, 8)
    drawn = random_masking(tokens, 0.75, torch.Generator().manual_seed(4))
    given = random_masking(tokens, 0.75, noise=torch.rand(3, 16, generator=torch.Generator().manual_seed(4)))
    assert all(torch.equal(a, b) for a, b in zip(drawn, given))
    with pytest.raises(ValueError, match="noise must have shape"):
        random_masking(tokens, 0.75, noise=torch.rand(3, 15))


def test_loss_counts_only_the_hidden_patches():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 10, 12), torch.randn(2, 10, 12)
    mask = torch.zeros(2, 10)
    mask[:, :7] = 1
    loss = masked_mse(pred, target, mask)
    changed = pred.clone()
    changed[:, 7:] += 100  # wild predictions on visible patches cost nothing
    assert masked_mse(changed, target, mask) == loss
    changed[:, 0] += 1  # ... on hidden ones they do
    assert masked_mse(changed, target, mask) > loss
    torch.testing.assert_close(loss, ((pred[:, :7] - target[:, :7]) ** 2).mean())


def test_model_loss_ignores_the_decoder_output_on_visible_patches():
    model = _mae().eval()
    images = torch.rand(3, 3, 32, 32)
    generator = torch.Generator().manual_seed(0)
    loss = mae_loss(model, images, generator=generator)
    pred, mask = model(images, generator=torch.Generator().manual_seed(0))
    target = patch_targets(images, 4)
    visible_shifted = pred + 5 * (1 - mask)[..., None]
    torch.testing.assert_close(masked_mse(visible_shifted, target, mask), loss)
    assert mask.sum() == 3 * 48


def test_norm_pix_targets_have_zero_mean_and_unit_variance_per_patch():
    images = torch.rand(2, 3, 32, 32) * 0.3 + 0.4
    target = patch_targets(images, 4, normalize=True)
    assert target.shape == (2, 64, 48)
    torch.testing.assert_close(target.mean(dim=-1), torch.zeros(2, 64), atol=1e-5, rtol=0)
    torch.testing.assert_close(target.var(dim=-1), torch.ones(2, 64), atol=1e-3, rtol=0)
    flat = patch_targets(torch.full((1, 3, 8, 8), 0.5), 4, normalize=True)
    assert torch.equal(flat, torch.zeros_like(flat))  # a flat patch has no texture to predict


def test_encoder_sees_only_the_visible_tokens():
    model = _mae()
    images = torch.rand(2, 3, 32, 32)
    for ratio, keep in [(0.0, 64), (0.75, 16), (0.9, 6)]:
        latent, mask, ids_restore = model.forward_encoder(images, ratio)
        assert latent.shape == (2, 1 + keep, 128)  # the class token plus the visible patches
        assert mask.shape == ids_restore.shape == (2, 64)
        assert model.forward_decoder(latent, ids_restore).shape == (2, 64, 4 * 4 * 3)


def test_encoder_output_is_the_vit_run_on_the_visible_tokens_alone():
    model = _mae().eval()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        latent, _, ids_restore = model.forward_encoder(images, 0.5, torch.Generator().manual_seed(0))
        kept = ids_restore.argsort(dim=1)[:, :32]
        for b in range(2):
            tokens = model.encoder.embed_patches(images[b:b + 1])[:, kept[b]]
            alone = model.encoder.forward_tokens(model.encoder.add_class_token(tokens))
            torch.testing.assert_close(latent[b:b + 1], alone, rtol=1e-4, atol=1e-5)


def test_decoder_unshuffles_the_tokens_and_fills_hidden_slots_with_the_mask_token():
    model = _mae().eval()
    images = torch.rand(2, 3, 32, 32)

    def decode(seed):
        latent, _, ids_restore = model.forward_encoder(images, 0.0, torch.Generator().manual_seed(seed))
        return model.forward_decoder(latent, ids_restore)

    with torch.no_grad():
        # nothing hidden: two different shuffles must decode to the same raster-order prediction
        torch.testing.assert_close(decode(0), decode(1), rtol=1e-4, atol=1e-5)
        # without decoder blocks, a hidden slot's output is the mask token at that slot's position
        bare = MaskedAutoencoder(vit("vit_micro", num_classes=0, depth=1), decoder_dim=32, decoder_depth=0).eval()
        latent, mask, ids_restore = bare.forward_encoder(images, 0.5, torch.Generator().manual_seed(0))
        pred = bare.forward_decoder(latent, ids_restore)
        alone = bare.decoder_pred(bare.decoder_norm(bare.mask_token + bare.decoder_pos_embed[:, 1:]))[0]
        hidden = mask.bool()
        torch.testing.assert_close(pred[hidden], alone.expand(2, -1, -1)[hidden])
        assert not torch.allclose(pred[~hidden], alone.expand(2, -1, -1)[~hidden])


def test_sincos_positions_follow_columns_then_rows():
    table = sincos_pos_embed(4, 16)
    assert table.shape == (1, 17, 16)
    assert torch.equal(table[0, 0], torch.zeros(16))  # the class token's row
    grid = table[0, 1:].reshape(4, 4, 16)
    assert torch.equal(grid[0, 0], torch.tensor([0.0] * 4 + [1.0] * 4 + [0.0] * 4 + [1.0] * 4))
    torch.testing.assert_close(grid[:, 2, :8], grid[:1, 2, :8].expand(4, -1))  # first half: the column only
    torch.testing.assert_close(grid[1, :, 8:], grid[1, :1, 8:].expand(4, -1))  # second half: the row only
    torch.testing.assert_close(grid[0, 1, 0], torch.tensor(np.sin(1.0), dtype=torch.float32))
    model = _mae()
    torch.testing.assert_close(model.encoder.pos_embed, sincos_pos_embed(8, 128))
    assert not model.encoder.pos_embed.requires_grad


def test_mean_colour_baseline_paints_the_visible_mean():
    images = torch.zeros(1, 3, 8, 8)
    images[0, 0, :4, :4] = 1.0  # top-left patch red, the rest black
    mask = torch.tensor([[0.0, 0.0, 1.0, 1.0]])  # top row visible
    guess = mean_colour_baseline(images, mask, 4)
    assert guess.shape == (1, 4, 48)
    torch.testing.assert_close(guess[0, 2].reshape(16, 3), torch.tensor([[0.5, 0.0, 0.0]]).expand(16, 3))


def test_reconstruct_pastes_the_visible_patches_back():
    model = _mae()
    images = torch.rand(2, 3, 32, 32)
    pictures = reconstruct(model, images, seed=3)
    assert set(pictures) == {"original", "masked", "reconstruction", "pasted", "mask"}
    assert pictures["pasted"].shape == (2, 32, 32, 3)
    visible = np.repeat(np.repeat(pictures["mask"].reshape(2, 8, 8) == 0, 4, axis=1), 4, axis=2)
    original = images.permute(0, 2, 3, 1).numpy()
    assert np.allclose(pictures["pasted"][visible], original[visible])
    assert np.all(pictures["masked"][~visible] == 0)
    assert np.allclose(pictures["masked"][visible], original[visible])
    again = reconstruct(model, images, seed=3)
    assert np.array_equal(again["mask"], pictures["mask"]) and np.array_equal(again["pasted"], pictures["pasted"])
    assert model.training  # handed back in the mode it came in


def test_bad_inputs_are_named():
    tokens = torch.randn(2, 16, 4)
    for ratio in (1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="mask_ratio must be a number in \\[0, 1\\)"):
            random_masking(tokens, ratio)
    with pytest.raises(ValueError, match="mask_ratio must be a number"):
        _mae(mask_ratio=1.0)
    with pytest.raises(ValueError, match="hides all 16 patches"):
        random_masking(tokens, 0.99)
    with pytest.raises(ValueError, match="shape \\(batch, tokens, dim\\)"):
        random_masking(torch.randn(16, 4), 0.5)
    model = _mae()
    with pytest.raises(ValueError, match="built for 32x32 images in patches of 4, got 30x30"):
        model(torch.rand(1, 3, 30, 30))
    with pytest.raises(ValueError, match="patch_size 4 must divide img_size 30"):
        MaskedAutoencoder(vit("vit_micro", img_size=30))
    with pytest.raises(ValueError, match="3 channels, got 1"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(TypeError, match="must be a VisionTransformer"):
        MaskedAutoencoder(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="hides no patch"):
        masked_mse(torch.zeros(1, 4, 3), torch.zeros(1, 4, 3), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="norm_pix_loss=False"):
        reconstruct(_mae(norm_pix_loss=True), torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_pos_embed(4, 6)


def test_timm_mae_encoder_converts_to_ours_and_fails_fast_offline():
    reference = timm.create_model(PRETRAINED["vit_base_patch16_224.mae"], pretrained=False, img_size=32, depth=2).eval()
    ours = from_timm(reference)
    assert ours.config.num_classes == 0 and ours.config.global_pool == "token"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(WeightsUnavailable, match="vit_base_patch16_224.mae: pretrained weights"):
        load_pretrained("vit_base_patch16_224.mae")
