"""Zero-shot classifiers built from prompts: the weights are normalised text embeddings."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vp_utils.analysis.zero_shot import class_prompts, few_shot_indices, prompt_classifier, zero_shot_logits


def fake_encoder(table):
    """A text encoder that looks each string up in a dict of vectors."""
    return lambda texts: torch.stack([table[t] for t in texts])


def test_prompts_fill_the_template():
    assert class_prompts(["red circle", "blue square"], "there is a {}") == ["there is a red circle",
                                                                           "there is a blue square"]
    for bad in ["a photo", "{} and {}"]:
        with pytest.raises(ValueError, match="exactly one"):
            class_prompts(["x"], bad)
    with pytest.raises(ValueError, match="empty"):
        class_prompts([], "a {}")


def test_weights_are_the_renormalised_mean_of_normalised_prompt_embeddings():
    table = {"a cat": torch.tensor([3.0, 0.0]), "the cat": torch.tensor([0.0, 0.5]),
             "a dog": torch.tensor([0.0, -2.0]), "the dog": torch.tensor([0.0, -1.0])}
    weights = prompt_classifier(fake_encoder(table), ["cat", "dog"], ["a {}", "the {}"])
    # cat: mean of (1, 0) and (0, 1) is (0.5, 0.5): its direction, not its length, is kept
    assert torch.allclose(weights, torch.tensor([[2 ** -0.5, 2 ** -0.5], [0.0, -1.0]]))
    single = prompt_classifier(fake_encoder(table), ["cat", "dog"], ["a {}"])
    assert torch.allclose(single, torch.tensor([[1.0, 0.0], [0.0, -1.0]]))


def test_logits_are_cosines_of_image_features_with_the_class_rows():
    torch.manual_seed(0)
    images, weights = torch.randn(5, 8), F.normalize(torch.randn(3, 8), dim=1)
    logits = zero_shot_logits(3.0 * images, weights)  # the scale of an image feature does not matter
    assert torch.allclose(logits, F.cosine_similarity(images[:, None], weights[None], dim=-1), atol=1e-6)
    with pytest.raises(ValueError, match="same dim"):
        zero_shot_logits(images, torch.randn(3, 7))


def test_few_shot_indices_take_k_of_every_class_without_repeats():
    labels = np.array([0, 1, 2] * 10 + [2, 2])
    picks = few_shot_indices(labels, 4, seed=1)
    assert len(picks) == 12 and len(set(picks.tolist())) == 12
    assert np.bincount(labels[picks]).tolist() == [4, 4, 4]
    assert not np.array_equal(picks, few_shot_indices(labels, 4, seed=2))
    with pytest.raises(ValueError, match="fewer than k=11"):
        few_shot_indices(labels, 11)
    with pytest.raises(ValueError, match="positive"):
        few_shot_indices(labels, 0)
