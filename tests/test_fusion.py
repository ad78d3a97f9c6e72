"""Early fusion: the prefix-LM mask, what each token can see, the heads, generation; late fusion
keeps CLIP frozen; Flamingo's gate starts closed."""
import pytest
import torch

from vp_utils.losses.language import next_token_loss
from vp_utils.models import resnet, vit
from vp_utils.models.clip import CLIP, TextConfig, TextTransformer
from vp_utils.models.fusion import (EarlyFusion, FusionConfig, GatedCrossAttention, LateFusion, prefix_lm_mask,
                                    vision_tokens)

CONFIG = FusionConfig(vocab_size=20, num_answers=7, image_size=32, context_length=8, dim=32, depth=2, heads=2)


def _model(visual=None):
    torch.manual_seed(0)
    return EarlyFusion(visual or vit("vit_micro", num_classes=0, depth=1, embed_dim=32, num_heads=2), CONFIG).eval()


def test_prefix_lm_mask():
    mask = prefix_lm_mask(2, 3)
    assert mask.tolist() == [[True, True, False, False, False],
                             [True, True, False, False, False],
                             [True, True, True, False, False],
                             [True, True, True, True, False],
                             [True, True, True, True, True]]


def test_image_tokens_never_see_text_and_text_never_sees_the_future():
    model, images = _model(), torch.rand(1, 3, 32, 32)
    ids, changed = torch.tensor([[1, 5, 6, 7, 19]]), torch.tensor([[1, 5, 9, 7, 19]])
    with torch.no_grad():
        a, b = model.forward_tokens(images, ids), model.forward_tokens(images, changed)
    n = model.num_image_tokens
    assert torch.allclose(a[:, :n + 2], b[:, :n + 2], atol=1e-6)  # image and text before the change
    assert not torch.allclose(a[:, n + 2:], b[:, n + 2:], atol=1e-4)
    with torch.no_grad():  # but every text token sees the image
        other = model.forward_tokens(torch.rand(1, 3, 32, 32), ids)
    assert not torch.allclose(a[:, n:], other[:, n:], atol=1e-4)


def test_heads_shapes_tied_words_and_frozen_encoder():
    model = _model(resnet("resnet20", num_classes=0, width=8))
    assert model.num_image_tokens == 64  # ResNet-20's 8x8 last feature map
    images, ids = torch.rand(2, 3, 32, 32), torch.tensor([[1, 4, 19, 0], [1, 4, 5, 19]])
    assert model.answer_logits(images, ids).shape == (2, 7)
    assert model.lm_logits(images, ids).shape == (2, 4, 20)
    assert model.lm_head.weight is model.token_embedding.weight
    assert not any(p.requires_grad for p in model.visual.parameters())
    model.train()
    assert not model.visual.training  # frozen batch-norm statistics stay frozen


def test_generation_stops_at_the_end_token_and_pads_after_it(monkeypatch):
    model, script = _model(), {2: [7, 19], 3: [19, 3]}  # next token by current length, per row

    def scripted(images, ids):
        logits = torch.zeros(len(ids), ids.shape[1], CONFIG.vocab_size)
        for row, token in enumerate(script[ids.shape[1]]):
            logits[row, -1, token] = 1.0
        return logits

    monkeypatch.setattr(model, "lm_logits", scripted)
    out = model.generate(torch.rand(2, 3, 32, 32), torch.tensor([[1, 4], [1, 5]]), end=19, max_new_tokens=5)
    assert out.tolist() == [[1, 4, 7, 19], [1, 5, 19, 0]]


def test_vision_tokens_of_a_vit_skip_the_class_token():
    visual = vit("vit_micro", num_classes=0)
    assert vision_tokens(visual, torch.rand(2, 3, 32, 32)).shape == (2, 64, 128)


def test_next_token_loss_counts_only_learned_non_padding_targets():
    logits = torch.zeros(1, 4, 5)
    logits[0, 0, 2] = logits[0, 1, 3] = 10.0  # right about ids[1] and ids[2], wrong about ids[3]
    ids = torch.tensor([[1, 2, 3, 4]])
    assert next_token_loss(logits, ids, learn=torch.tensor([[0, 1, 1, 0]]).bool()) < 1e-3
    assert next_token_loss(logits, ids) > 0.5
    assert next_token_loss(logits, torch.tensor([[1, 2, 3, 0]])) < 1e-3  # padding is never a target
    with pytest.raises(ValueError, match="no target"):
        next_token_loss(logits, torch.tensor([[1, 0, 0, 0]]))


def test_late_fusion_trains_only_its_mlp():
    clip = CLIP(resnet("resnet20", num_classes=0, width=8),
                TextTransformer(TextConfig(vocab_size=20, context_length=8, width=32, heads=2, layers=1)), 16)
    late = LateFusion(clip, num_answers=7)
    late.train()
    out = late(torch.rand(2, 3, 32, 32), torch.tensor([[1, 4, 19], [1, 5, 19]]))
    out.sum().backward()
    assert out.shape == (2, 7) and not clip.training
    assert all(p.grad is None for p in clip.parameters())


def test_gated_cross_attention_starts_as_the_identity():
    layer = GatedCrossAttention(32, heads=4)
    text, image = torch.randn(2, 5, 32), torch.randn(2, 9, 32)
    assert torch.equal(layer(text, image), text)
    with torch.no_grad():
        layer.gate.fill_(1.0)
    assert not torch.allclose(layer(text, image), text)
