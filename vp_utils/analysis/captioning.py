"""Scoring written captions against the scenes they describe (notebook 11's captioner): does each
caption name the scene's objects, all of them and nothing else, each with its size, colour and shape?"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ..data.shapes import COLOURS, SHAPES, SIZES, Scenes
from ..lab.checks import check_texts, show

Item = tuple[str, str, str]  # (size, colour, shape)


def listed_objects(text: str) -> list[Item] | None:
    """The objects a caption in the world's "list" form names ("a small red circle and a large blue
    star"), as (size, colour, shape) in order; None when the text is not in that form."""
    named = []
    for phrase in text.split(" and "):
        words = phrase.split()
        if len(words) != 4 or words[0] != "a" or words[1] not in SIZES or words[2] not in COLOURS \
                or words[3] not in SHAPES:
            return None
        named.append((words[1], words[2], words[3]))
    return named


def caption_matches(captions, scenes: Scenes) -> np.ndarray:
    """(n,) True where captions[i] names scene i's objects and no other, in any order."""
    return np.array([named == truth for named, truth in _named_and_true(captions, scenes)])


def caption_scores(captions, scenes: Scenes) -> dict[str, float]:
    """captions[i] scored against scene i, as shares over the scenes: 'well formed' (in the list form),
    'exact' (names the scene's objects and no other, in any order), 'count' (as many objects as the
    scene has); and over objects: 'precision' (of those named, the share in the scene), 'recall'
    (of the scene's, the share named). A caption out of form names nothing."""
    pairs = _named_and_true(captions, scenes)
    right = sum(sum((named & truth).values()) for named, truth in pairs)
    return {"well formed": float(np.mean([named.total() > 0 for named, _ in pairs])),
            "exact": float(np.mean([named == truth for named, truth in pairs])),
            "count": float(np.mean([named.total() == truth.total() for named, truth in pairs])),
            "precision": right / max(sum(named.total() for named, _ in pairs), 1),
            "recall": right / sum(truth.total() for _, truth in pairs)}


def _named_and_true(captions, scenes: Scenes) -> list[tuple[Counter, Counter]]:
    """Per scene, the objects its caption names and those it holds, as multisets of (size, colour, shape)."""
    captions = check_texts(captions, "captions")
    if not isinstance(scenes, Scenes) or len(scenes) != len(captions):
        raise ValueError(f"need a Scenes batch with one scene per caption ({len(captions)}), got {show(scenes)}")
    held = [Counter((o["size"], o["colour"], o["shape"]) for o in scenes.objects(i)) for i in range(len(scenes))]
    return [(Counter(listed_objects(text) or []), truth) for text, truth in zip(captions, held)]
