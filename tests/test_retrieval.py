"""Recall@K both ways, with several right answers per query, and its chance level."""
import math

import pytest
import torch

from vp_utils.analysis.retrieval import (caption_gallery, chance_recall, format_report, modality_gap, recall_at_k,
                                 retrieval_report)


def test_identical_captions_merge_into_one_text_that_matches_every_image_it_describes():
    texts, matches = caption_gallery(["a red circle", "a blue square", "a red circle"])
    assert texts == ["a blue square", "a red circle"]
    assert matches.tolist() == [[False, True], [True, False], [False, True]]


def test_recall_counts_a_query_right_when_any_match_is_in_its_top_k():
    similarity = torch.tensor([[0.9, 0.1, 0.5],
                               [0.2, 0.3, 0.8],
                               [0.1, 0.7, 0.6]])
    matches = torch.tensor([[True, False, False],   # first choice right
                            [True, False, False],   # ranked last
                            [False, False, True]])  # ranked second
    assert recall_at_k(similarity, matches, 1) == pytest.approx(1 / 3)
    assert recall_at_k(similarity, matches, 2) == pytest.approx(2 / 3)
    assert recall_at_k(similarity, matches, 3) == 1.0
    two_right = matches.clone()
    two_right[1, 2] = True  # a twin caption ranked first also counts
    assert recall_at_k(similarity, two_right, 1) == pytest.approx(2 / 3)


def test_both_directions_and_chance():
    torch.manual_seed(0)
    captions = ["a red circle"] * 3 + ["a blue square", "a green star"]
    texts, matches = caption_gallery(captions)
    perfect = matches.float() + 0.01 * torch.rand(matches.shape)
    report = retrieval_report(perfect, matches, ks=(1, 2))
    assert all(recall == 1.0 for row in report.values() for recall, _ in row.values())
    # image->text: one match among 3 texts; text->image: 3, 1 and 1 matches among 5 images
    assert report["image→text"][1][1] == pytest.approx(1 / 3)
    assert report["text→image"][1][1] == pytest.approx((3 / 5 + 1 / 5 + 1 / 5) / 3)
    assert chance_recall(matches.T, 2) == pytest.approx(1 - (math.comb(2, 2) / math.comb(5, 2) + 2 * 6 / 10) / 3)
    assert "R@2" in format_report(report)


def test_random_rankings_score_near_chance():
    torch.manual_seed(0)
    texts, matches = caption_gallery([f"caption {i % 50}" for i in range(2000)])
    similarity = torch.randn(matches.shape)
    assert recall_at_k(similarity, matches, 5) == pytest.approx(chance_recall(matches, 5), abs=0.03)


def test_bad_inputs_are_named():
    similarity, matches = torch.rand(2, 3), torch.eye(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="boolean"):
        recall_at_k(similarity, matches.float(), 1)
    with pytest.raises(ValueError, match="exceeds"):
        recall_at_k(similarity, matches, 4)
    with pytest.raises(ValueError, match="no matching"):
        recall_at_k(similarity, torch.zeros(2, 3, dtype=torch.bool), 1)
    with pytest.raises(ValueError, match="2-d"):
        recall_at_k(torch.rand(3), matches, 1)
    with pytest.raises(ValueError, match="empty"):
        caption_gallery([])


def test_modality_gap_is_the_difference_of_the_centroids_of_normalised_embeddings():
    images = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # normalised: (1, 0) and (0, 1)
    texts = torch.tensor([[-1.0, 0.0], [0.0, -5.0]])
    assert torch.allclose(modality_gap(images, texts), torch.tensor([1.0, 1.0]))
    assert modality_gap(images, images).norm() == 0
    with pytest.raises(ValueError, match="differ in dim"):
        modality_gap(images, torch.ones(2, 3))
    with pytest.raises(ValueError, match="non-empty"):
        modality_gap(torch.ones(0, 2), texts)
