"""Early fusion: the prefix-LM mask, what each token can see, the heads, generation; late fusion
keeps CLIP frozen; Flamingo's gate starts closed."""
import pytest
import torch

from vp_utils.data import caption_vocabulary
from vp_utils.objectives.fusion import next_token_loss
from vp_utils.models import count_parameters, resnet, vit
from vp_utils.models.clip import CLIP, TextConfig, TextTransformer
from vp_utils.models.fusion import (EarlyFusion, FlamingoReader, FusionConfig, GatedCrossAttention, LateFusion,
                                   PixelPatches, prefix_lm_mask, vision_tokens)
from vp_utils.objectives import answer_loss, late_fusion_loss, question_answer_ids, vqa_loss

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
    assert count_parameters(model, trainable=True) == count_parameters(model) - count_parameters(model.visual)
    model.train()
    assert not model.visual.training  # frozen batch-norm statistics stay frozen


def test_generation_stops_at_the_end_token_and_pads_after_it(monkeypatch):
    model, script = _model(), {2: [7, 19], 3: [19, 3]}  # next token by current length, per row

    def scripted(images, ids, seen=None):
        logits = torch.zeros(len(ids), ids.shape[1], CONFIG.vocab_size)
        for row, token in enumerate(script[ids.shape[1]]):
            logits[row, -1, token] = 1.0
        return logits

    monkeypatch.setattr(model, "lm_logits", scripted)
    out = model.generate(torch.rand(2, 3, 32, 32), torch.tensor([[1, 4], [1, 5]]), end=19, max_new_tokens=5)
    assert out.tolist() == [[1, 4, 7, 19], [1, 5, 19, 0]]


def test_generation_encodes_the_image_once_and_writes_what_full_passes_would(monkeypatch):
    model, images, prompt = _model().eval(), torch.rand(3, 3, 32, 32), torch.tensor([[1, 4], [1, 5], [1, 6]])
    full_passes = []
    for _ in range(4):  # greedy decoding by hand: every step encodes the image again
        full_passes.append(model.lm_logits(images, prompt if not full_passes else ids)[:, -1].argmax(dim=-1))
        ids = torch.cat([prompt, torch.stack(full_passes, dim=1)], dim=1)
    encodings = []
    seen_tokens = model.seen_tokens
    monkeypatch.setattr(model, "seen_tokens", lambda x: encodings.append(len(x)) or seen_tokens(x))
    out = model.generate(images, prompt, end=CONFIG.vocab_size + 1, max_new_tokens=4)
    assert encodings == [3] and torch.equal(out, ids)


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


def _tiny_clip(vocab_size=20):
    return CLIP(resnet("resnet20", num_classes=0, width=8),
                TextTransformer(TextConfig(vocab_size=vocab_size, context_length=8, width=32, heads=2, layers=1)), 16)


def test_pooled_control_reads_one_token_the_mean_of_the_encoders():
    from dataclasses import replace
    visual = resnet("resnet20", num_classes=0, width=8)
    torch.manual_seed(0)
    pooled = EarlyFusion(visual, replace(CONFIG, pool_image=True)).eval()
    images = torch.rand(2, 3, 32, 32)
    assert pooled.num_image_tokens == 1 and pooled.image_pos.shape == (1, 1, CONFIG.dim)
    assert torch.allclose(pooled.seen_tokens(images)[:, 0], vision_tokens(visual, images).mean(1))
    assert pooled.answer_logits(images, torch.tensor([[1, 4, 19], [1, 5, 19]])).shape == (2, 7)


def test_pixel_patches_are_the_tokens_without_an_encoder():
    images = torch.rand(2, 3, 32, 32)
    tokens = vision_tokens(PixelPatches(4), images)
    assert tokens.shape == (2, 64, 48)
    assert torch.equal(tokens[1, 9].reshape(3, 4, 4), images[1, :, 4:8, 4:8])  # token 9: row 1, column 1
    model = _model(PixelPatches(4))
    assert model.num_image_tokens == 64 and not list(model.visual.parameters())
    with pytest.raises(ValueError, match="patch_size 5 must divide"):
        PixelPatches(5).forward_features(images)


def test_late_fusion_loss_reads_the_question_without_its_answer():
    eot = caption_vocabulary().eot
    late = LateFusion(_tiny_clip(vocab_size=eot + 1), num_answers=7)
    images, ids = torch.rand(2, 3, 32, 32), torch.tensor([[1, 4, 5, 6, 19], [1, 4, 7, 19, 0]])
    prompt_lengths, labels = torch.tensor([3, 2]), torch.tensor([2, 3])
    seen = []
    late.register_forward_hook(lambda module, args, out: seen.append(args[1]))
    out = late_fusion_loss(late, (images, ids, prompt_lengths, labels))
    assert seen[0].tolist() == [[1, 4, 5, eot, 0], [1, 4, eot, 0, 0]]
    assert out["loss"].requires_grad and 0 <= out["accuracy"] <= 1


def test_late_fusion_trains_only_its_mlp():
    clip = _tiny_clip()
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


class _Vocabulary:
    """Word-level stand-in for the BPE vocabulary: 1 = start, 2 = end, words from 3 upwards."""

    def __init__(self, words):
        self.ids = {w: i + 3 for i, w in enumerate(words)}

    def __call__(self, texts):
        rows = [[1, *(self.ids[w] for w in t.split()), 2] for t in texts]
        out = torch.zeros(len(rows), 8, dtype=torch.long)
        for row, ids in zip(out, rows):
            row[:len(ids)] = torch.tensor(ids)
        return out


def test_question_answer_ids_put_the_answer_after_the_prompt():
    from vp_utils.data.captions import Question
    vocabulary = _Vocabulary(["what", "colour", "is", "it", "red", "blue", "how", "many"])
    qs = [Question("colour", "what colour is it", "red"), Question("count", "how many", "blue")]
    ids, prompt_lengths, labels = question_answer_ids(vocabulary, qs, ["blue", "red"])
    assert ids.tolist() == [[1, 3, 4, 5, 6, 7, 2], [1, 9, 10, 8, 2, 0, 0]]  # trimmed to the longest row
    assert prompt_lengths.tolist() == [5, 3] and labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="at least one"):
        question_answer_ids(vocabulary, [], ["red"])


def test_the_training_readout_is_the_prompt_readout():
    """vqa_loss reads the classifier where answer_logits reads a prompt alone: the causal mask
    keeps the answer that follows from changing it."""
    model = _model()
    images = torch.rand(2, 3, 32, 32)
    ids, prompt_lengths = torch.tensor([[1, 4, 5, 6, 19], [1, 7, 8, 19, 0]]), torch.tensor([3, 2])
    prompts = torch.tensor([[1, 4, 5], [1, 7, 0]])
    with torch.no_grad():
        tokens = model.forward_tokens(images, ids)[:, model.num_image_tokens:]
        during_training = model.answer_head(tokens[torch.arange(2), prompt_lengths - 1])
        assert torch.allclose(model.answer_logits(images, prompts), during_training, atol=1e-5)
    out = vqa_loss(model, (images, ids, prompt_lengths, torch.tensor([0, 3])))
    assert out["loss"] > out["classifier"] > 0 and out["language"] > 0


def test_image_positions_start_as_a_two_dimensional_code():
    from vp_utils.models.mae import sincos_pos_embed
    model = _model()  # vit_micro: an 8x8 grid of patch tokens
    assert torch.equal(model.image_pos.detach(), sincos_pos_embed(8, CONFIG.dim, class_token=False))


def test_fusion_batches_turn_through_the_question_types():
    from vp_utils.data import QUESTION_TYPES, ShapesWorld
    from vp_utils.objectives import fusion_questions
    scenes = ShapesWorld(objects=(2, 3), background="plain", length=60).render(range(60))
    kinds = [q.kind for q in fusion_questions(scenes, step=0)]
    assert sorted(set(kinds)) == sorted(QUESTION_TYPES) and max(map(kinds.count, QUESTION_TYPES)) == 10
    assert [q.kind for q in fusion_questions(scenes, step=1)] != kinds  # a scene seen again is asked something else


def test_flamingo_reader_answers_blind_until_its_gates_open():
    fusion = _model(resnet("resnet20", num_classes=0, width=8))
    reader = FlamingoReader(fusion, heads=2).train()
    ids = torch.tensor([[1, 4, 5, 19], [1, 6, 19, 0]])
    one, other = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert torch.equal(reader.answer_logits(one, ids), reader.answer_logits(other, ids))  # gates at 0: blind
    with torch.no_grad():
        for bridge in reader.bridges:
            bridge.gate.fill_(0.5)
    assert not torch.allclose(reader.answer_logits(one, ids), reader.answer_logits(other, ids), atol=1e-4)
    batch = (one, ids, torch.tensor([3, 2]), torch.tensor([1, 2]))
    answer_loss(reader, batch)["loss"].backward()
    assert not fusion.training and all(p.grad is None for p in fusion.parameters())
    assert all(b.gate.grad is not None for b in reader.bridges)


def test_answers_and_generation_read_image_tokens_given_in_place_of_the_images_own():
    fusion = _model(resnet("resnet20", num_classes=0, width=8))
    reader = FlamingoReader(fusion, heads=2).eval()
    with torch.no_grad():
        for bridge in reader.bridges:
            bridge.gate.fill_(0.5)  # open, so that the reader sees the image too
    ids = torch.tensor([[1, 4, 5], [1, 6, 0]])
    one, other = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    for answer in (fusion.answer_logits, reader.answer_logits):
        assert torch.allclose(answer(one, ids, seen=fusion.seen_tokens(other)), answer(other, ids), atol=1e-6)
        assert not torch.allclose(answer(one, ids), answer(other, ids), atol=1e-4)
    prompt = torch.tensor([[1, 4], [1, 6]])
    assert torch.equal(fusion.generate(one, prompt, end=19, seen=fusion.seen_tokens(other)),
                       fusion.generate(other, prompt, end=19))


def test_caption_batches_learn_the_caption_after_a_fixed_prompt():
    from vp_utils.data import ShapesWorld
    from vp_utils.objectives import CAPTION_PROMPT, caption_batch, caption_loss
    vocabulary = caption_vocabulary()
    world = ShapesWorld(objects=(2, 3), background="plain", length=60)
    images, ids, prompt_lengths = caption_batch(world, seed=0, step=0, size=4)
    scenes = world.render(range(4))
    assert images.shape == (4, 3, 32, 32) and prompt_lengths.tolist() == [6] * 4
    for i, row in enumerate(ids):
        objects = " and ".join(f"a {o['size']} {o['colour']} {o['shape']}" for o in scenes.objects(i))
        assert vocabulary.decode(row) == f"what shapes are there ? {objects}"
    assert vocabulary.decode(ids[0, :6]) == CAPTION_PROMPT.replace("?", " ?")
    model = EarlyFusion(vit("vit_micro", num_classes=0, depth=1, embed_dim=32, num_heads=2),
                        FusionConfig(vocab_size=len(vocabulary), num_answers=3, dim=32, depth=1, heads=2,
                                     context_length=vocabulary.context_length))
    loss = caption_loss(model, (images, ids, prompt_lengths))["loss"]
    by_hand = torch.nn.functional.cross_entropy(model.lm_logits(images, ids)[:, 5:-1][ids[:, 6:] != 0],
                                                ids[:, 6:][ids[:, 6:] != 0])
    torch.testing.assert_close(loss, by_hand)
    loss.backward()
    assert model.answer_head.weight.grad is None  # captioning trains the language model alone


def test_caption_scores_read_the_list_form_and_score_it_as_a_set():
    from vp_utils.analysis import caption_matches, caption_scores, listed_objects
    from vp_utils.data import ShapesWorld, caption
    scenes = ShapesWorld(objects=(2, 3), background="plain", length=60).render(range(3))
    truth = [caption(scenes, i, "list") for i in range(3)]
    assert listed_objects("a small red circle and a large blue star") == [("small", "red", "circle"),
                                                                         ("large", "blue", "star")]
    assert listed_objects("a red circle") is None and listed_objects("a small red circle and") is None
    assert caption_scores(truth, scenes) == {"well formed": 1.0, "exact": 1.0, "count": 1.0, "precision": 1.0,
                                             "recall": 1.0}
    reordered = [" and ".join(reversed(t.split(" and "))) for t in truth]
    assert caption_scores(reordered, scenes)["exact"] == 1.0  # the order of the objects does not matter
    assert caption_matches([reordered[0], truth[0], "a"], scenes).tolist() == [True, False, False]
    first_only = [t.split(" and ")[0] for t in truth]
    scores = caption_scores(first_only, scenes)
    n_objects = sum(len(scenes.objects(i)) for i in range(3))
    assert scores["exact"] == 0 and scores["precision"] == 1.0 and scores["recall"] == pytest.approx(3 / n_objects)
    assert caption_scores(["blue blue", truth[1], "a"], scenes)["well formed"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="one scene per caption"):
        caption_scores(truth[:2], scenes)
