"""Data that needs no download: the procedural shapes world and photos shipped with packages."""
from .language import (ANSWERS, CAPTION_TEMPLATES, QUESTION_TYPES, RELATIONS, Question, caption, questions,
                       relation, words)
from .photos import digits, photo_batch, photos
from .real import (DatasetUnavailable, LabelledImages, class_captions, images_for_scale, real_dataset,
                   real_for_scale, real_train_test)
from .shapes import BACKGROUNDS, COLOURS, SHAPES, SIZES, TARGETS, Scenes, ShapesWorld, standardise

__all__ = ["ANSWERS", "BACKGROUNDS", "CAPTION_TEMPLATES", "COLOURS", "QUESTION_TYPES", "RELATIONS", "SHAPES",
           "SIZES", "TARGETS", "DatasetUnavailable", "LabelledImages", "Question", "Scenes", "ShapesWorld", "caption",
           "class_captions", "digits", "images_for_scale", "photo_batch", "photos", "questions", "real_dataset",
           "real_for_scale", "real_train_test", "relation", "standardise", "words"]
