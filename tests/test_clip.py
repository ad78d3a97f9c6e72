"""Our CLIP: open_clip fidelity on random weights, the causal text tower, pooling, the logit scale,
the compact vocabulary, and attention masks."""
import math
import time

import pytest
import torch

from vp_utils.models import resnet, vit
from vp_utils.models.clip import CLIP, TextConfig, TextTransformer, clip_vit
from vp_utils.models.vit import Attention, ViTConfig, causal_mask
from vp_utils.pretrained import WeightsUnavailable, from_open_clip, from_timm, load_pretrained
from vp_utils.data.tokenizer import Vocabulary, bpe_tokenizer

TINY_TEXT = TextConfig(vocab_size=50, context_length=12, width=32, heads=2, layers=2)
TINY_IMAGE = ViTConfig(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)


@pytest.mark.parametrize("name", ["ViT-B-32", "ViT-B-32-quickgelu", "ViT-B-16", "ViT-B-16-quickgelu"])
def test_open_clip_converts_to_ours_with_the_same_embeddings(name):
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(0)
    reference = open_clip.create_model(name, pretrained=None).eval()
    with torch.no_grad():  # move every weight off its init, so no parameter can hide
        for p in reference.parameters():
            p.add_(0.02 * torch.randn_like(p))
    ours = from_open_clip(reference)
    images = torch.randn(2, 3, 224, 224)
    ids = open_clip.get_tokenizer(name)(["a small red circle", "two blue squares left of a yellow star"])
    with torch.no_grad():
        assert torch.allclose(ours.encode_image(images), reference.encode_image(images), atol=1e-5, rtol=1e-5)
        assert torch.allclose(ours.encode_text(ids), reference.encode_text(ids), atol=1e-5, rtol=1e-5)
        assert torch.allclose(ours.logit_scale, reference.logit_scale)
    assert (ours.text.config.act == "quick_gelu") == name.endswith("quickgelu")


def test_text_is_read_left_to_right():
    torch.manual_seed(0)
    text = TextTransformer(TINY_TEXT).eval()
    ids = torch.tensor([[1, 5, 6, 7, 49, 0]])
    changed = ids.clone()
    changed[0, 3] = 8
    with torch.no_grad():
        a, b = text.forward_tokens(ids), text.forward_tokens(changed)
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-6)  # positions before the change cannot see it
    assert not torch.allclose(a[:, 3:], b[:, 3:], atol=1e-3)


def test_text_features_are_taken_at_the_end_of_text_token():
    torch.manual_seed(0)
    text = TextTransformer(TINY_TEXT).eval()
    ids = torch.tensor([[1, 5, 49, 0, 0], [1, 5, 6, 7, 49]])
    with torch.no_grad():
        tokens, pooled = text.forward_tokens(ids), text(ids)
    assert torch.equal(pooled[0], tokens[0, 2]) and torch.equal(pooled[1], tokens[1, 4])


def test_logit_scale_starts_at_1_over_0_07_and_is_capped_at_100():
    model = clip_vit(TINY_IMAGE, TINY_TEXT, embed_dim=16)
    assert math.isclose(model.scale().item(), 1 / 0.07, rel_tol=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert math.isclose(model.scale().item(), 100.0, rel_tol=1e-5)


def test_forward_gives_unit_features_and_a_resnet_tower_works_too():
    for visual in (vit("vit_micro", num_classes=0), resnet("resnet20", num_classes=0, width=8)):
        model = CLIP(visual, TextTransformer(TINY_TEXT), embed_dim=16)
        images, texts, scale = model(torch.rand(3, 3, 32, 32), torch.tensor([[1, 2, 49]] * 2))
        assert images.shape == (3, 16) and texts.shape == (2, 16)
        assert torch.allclose(images.norm(dim=-1), torch.ones(3), atol=1e-5)
        assert model.similarity(torch.rand(3, 3, 32, 32), torch.tensor([[1, 2, 49]] * 2)).shape == (3, 2)


def test_bad_inputs_are_named():
    text = TextTransformer(TINY_TEXT)
    with pytest.raises(ValueError, match="context length"):
        text(torch.ones(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids"):
        text(torch.ones(1, 5))
    with pytest.raises(TypeError, match="our image models"):
        CLIP(torch.nn.Linear(2, 2), text)
    with pytest.raises(TypeError, match="open_clip CLIP"):
        from_open_clip(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="takes a timm model"):
        from_timm(vit("vit_micro"))


def test_open_clip_weights_fail_fast_offline():
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailable, match="ViT-B-32"):
        load_pretrained("ViT-B-32")
    assert time.perf_counter() - start < 10


def test_vocabulary_renumbers_bpe_tokens_densely_with_end_of_text_highest():
    corpus = ["a red circle", "a blue square left of a red circle"]
    vocab = Vocabulary(corpus, context_length=12)
    ids = vocab(corpus)
    assert ids.shape == (2, 12) and ids.max() == vocab.eot == len(vocab) - 1
    assert ids[0, 0] == vocab.sot and ids[0].argmax() == 4  # sot a red circle eot
    assert vocab.decode(ids[1]) == corpus[1]
    bpe = bpe_tokenizer()
    assert len(vocab) == len(set(bpe.encode(" ".join(corpus)))) + 3  # + padding, start, end
    with pytest.raises(ValueError, match="never saw"):
        vocab("a green triangle")
    with pytest.raises(ValueError, match="context"):
        vocab(" ".join(["red"] * 12))


def test_masks_agree_between_the_fused_kernel_and_the_spelled_out_path():
    torch.manual_seed(0)
    attention = Attention(16, num_heads=2).eval()
    x, mask = torch.randn(2, 5, 16), causal_mask(5)
    additive = torch.zeros(5, 5).masked_fill(~mask, float("-inf"))
    with torch.no_grad():
        fused = attention(x, mask=mask)
        spelled, weights = attention(x, return_attention=True, mask=mask)
        added = attention(x, mask=additive)
    assert torch.allclose(fused, spelled, atol=1e-6) and torch.allclose(fused, added, atol=1e-6)
    assert torch.all(weights.triu(1) == 0)
