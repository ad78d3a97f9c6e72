"""Words about scenes: captions and question-answer pairs, derived from the ground-truth labels.

Objects in a scene have distinct shapes and distinct colours, so "the red object" and "the
circle" each name exactly one object, and every answer follows from the labels alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ..lab.checks import check_int, check_seed, show
from .tokenizer import Vocabulary
from .shapes import COLOURS, SHAPES, SIZES, Scenes, uniforms

RELATIONS = ("left of", "right of", "above", "below")
QUESTION_TYPES = ("colour", "shape", "count", "existence", "relation", "side")
NUMBERS = ("one", "two", "three")
ANSWERS = tuple(COLOURS) + SHAPES + NUMBERS + ("yes", "no") + RELATIONS
CAPTION_TEMPLATES = ("list", "relation", "count", "there is")
_CAPTION_STREAM, _QUESTION_STREAM, _SIDE_STREAM = 11, 12, 13


@dataclass(frozen=True)
class Question:
    """A question about one scene, its kind (one of QUESTION_TYPES) and its one-word answer; `subject`
    is how a colour or shape question names its object, as (attribute, value): ("shape", "star")
    in "what colour is the star?"."""
    kind: str
    text: str
    answer: str
    subject: tuple[str, str] | None = None


def words() -> list[str]:
    """Every word and punctuation mark that captions, questions and answers use: the corpus
    for a vocabulary that can read all of them."""
    glue = ["a", "and", "shape", "shapes", ":", ",", "there", "is", "what", "colour", "the", "object", "objects",
            "how", "many", "are", "?"]
    return glue + list(SIZES) + list(ANSWERS) + [w for r in RELATIONS for w in r.split()]


def describe(obj: dict, with_size: bool = False) -> str:
    _check_object(obj, "obj", ("size", "colour", "shape") if with_size else ("colour", "shape"))
    words = ([obj["size"]] if with_size else []) + [obj["colour"], obj["shape"]]
    return " ".join(words)


def relation(a: dict, b: dict) -> str:
    """Where a is relative to b, along the axis on which they differ most (y grows downwards)."""
    _check_object(a, "a", ("x", "y"))
    _check_object(b, "b", ("x", "y"))
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def caption(scenes: Scenes, i: int, template: str | None = None, seed: int = 0) -> str:
    """A caption of scene i; without `template`, one is chosen deterministically per scene."""
    objects = _scene_objects(scenes, i, seed)
    u = uniforms(seed, scenes.index[i:i + 1], _CAPTION_STREAM, 2)[0]
    if template is None:
        usable = CAPTION_TEMPLATES if len(objects) > 1 else ("list", "count", "there is")
        template = usable[int(u[0] * len(usable))]
    if template == "relation":
        if len(objects) < 2:
            raise ValueError(f"template 'relation' needs two objects; scene {scenes.index[i]} has one")
        a, b = objects[0], objects[1]
        return f"a {describe(a)} {relation(a, b)} a {describe(b)}"
    if template == "list":
        return " and ".join(f"a {describe(o, with_size=True)}" for o in objects)
    if template == "count":
        noun = "shape" if len(objects) == 1 else "shapes"
        return f"{NUMBERS[len(objects) - 1]} {noun}: " + ", ".join(describe(o) for o in objects)
    if template == "there is":
        return f"there is a {describe(objects[int(u[1] * len(objects))])}"
    raise ValueError(f"unknown caption template {template!r}; choose from {CAPTION_TEMPLATES}")


def questions(scenes: Scenes, i: int, seed: int = 0) -> list[Question]:
    """One question of each type that the scene supports, existence answered yes half of the time."""
    objects = _scene_objects(scenes, i, seed)
    u = uniforms(seed, scenes.index[i:i + 1], _QUESTION_STREAM, 8)[0]
    target = objects[int(u[0] * len(objects))]
    qs = [Question("colour", f"what colour is the {target['shape']}?", target["colour"], ("shape", target["shape"])),
          Question("shape", f"what shape is the {target['colour']} object?", target["shape"],
                   ("colour", target["colour"])),
          Question("count", "how many objects are there?", NUMBERS[len(objects) - 1]),
          _existence_question(objects, u[1], u[2], u[3])]
    if len(objects) > 1:
        qs.append(_relation_question(objects, u[4]))
    return qs + [_side_question(objects, uniforms(seed, scenes.index[i:i + 1], _SIDE_STREAM, 1)[0, 0])]


def _scene_objects(scenes: Scenes, i: int, seed: int) -> list[dict]:
    """Scene i's objects, once `scenes`, `i` and `seed` are known to be usable."""
    if not isinstance(scenes, Scenes):
        raise TypeError(f"scenes must be a Scenes batch (ShapesWorld.scenes or .render), got {show(scenes)}")
    check_int(i, "i", 0, len(scenes) - 1)
    check_seed(seed)
    return scenes.objects(i)


def _check_object(obj, name: str, keys: tuple[str, ...]) -> None:
    if not isinstance(obj, dict) or not set(keys) <= obj.keys():
        raise TypeError(f"{name} must be an object record (from Scenes.objects) with keys {list(keys)}, "
                        f"got {show(obj)}")


def _existence_question(objects: list[dict], coin: float, pick_colour: float, pick_shape: float) -> Question:
    present = {(o["colour"], o["shape"]) for o in objects}
    if coin < 0.5:
        colour, shape = sorted(present)[int(pick_colour * len(present))]
    else:  # an absent pair, built from a colour and a shape chosen among all
        absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
        colour, shape = absent[int(pick_shape * len(absent))]
    return Question("existence", f"is there a {colour} {shape}?", "yes" if (colour, shape) in present else "no")


def _relation_question(objects: list[dict], pick: float) -> Question:
    """Where one named object is relative to another, answered with the relation itself. (Asked as
    "is the A left of the B?", the yes/no answer is the XOR of the word asked and the truth: no
    single input feature predicts it, and in this miniature it stayed at chance.) The question
    lists the four choices: the vocabulary has no "where" and no "or"."""
    a, b = (objects[1], objects[0]) if pick < 0.5 else (objects[0], objects[1])
    choices = ", ".join(RELATIONS)
    return Question("relation", f"is the {describe(a)} {choices} the {describe(b)}?", relation(a, b))


def _side_question(objects: list[dict], pick: float) -> Question:
    """Which half of the image one named object is in: where one object is, the step before
    comparing two. (Its own random stream: adding it left every other question unchanged.)"""
    obj = objects[int(pick * len(objects))]
    return Question("side", f"is the {describe(obj)} left?", "yes" if obj["x"] < 0.5 else "no")


@cache
def caption_vocabulary() -> Vocabulary:
    """The vocabulary of every caption and question this world writes, 24 tokens long. Built on
    first use: it loads the BPE tables, which models that read no text never need."""
    return Vocabulary([" ".join(words())], context_length=24)
