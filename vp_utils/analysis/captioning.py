"""Scoring written captions against the scenes they describe (notebook 11's captioner): does each
caption name the scene's objects, all of them and nothing else, each with its size, colour and shape?"""
from __future__ import annotations

from collections import Counter

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


def caption_scores(captions, scenes: Scenes) -> dict[str, float]:
    """captions[i] scored against scene i, as shares over the scenes: 'well formed' (in the list form),
    'exact' (names the scene's objects and no other, in any order), 'count' (as many objects as the
    scene has); and over objects: 'precision' (of those named, the share in the scene), 'recall'
    (of the scene's, the share named). A caption out of form names nothing."""
    captions = check_texts(captions, "captions")
    if not isinstance(scenes, Scenes) or len(scenes) != len(captions):
        raise ValueError(f"need a Scenes batch with one scene per caption ({len(captions)}), got {show(scenes)}")
    formed = exact = counted = right = named_total = true_total = 0
    for i, text in enumerate(captions):
        truth = Counter((o["size"], o["colour"], o["shape"]) for o in scenes.objects(i))
        named = Counter(listed_objects(text) or [])
        formed += listed_objects(text) is not None
        exact += named == truth
        counted += sum(named.values()) == sum(truth.values())
        right += sum((named & truth).values())
        named_total += sum(named.values())
        true_total += sum(truth.values())
    n = len(captions)
    return {"well formed": formed / n, "exact": exact / n, "count": counted / n,
            "precision": right / max(named_total, 1), "recall": right / true_total}
