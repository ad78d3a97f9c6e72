"""Data that needs no download: the procedural shapes world, its captions and questions, photos
shipped with packages, real datasets when a network is there, and the views methods train on."""
from .augment import SHAPES_WORLD_VIEWS, augment, pick_pairs, simclr_augment, two_views, view_bank, view_pairs
from .batching import batches, patch_count, scene_indices, step_generator, step_images, step_scenes, step_seed
from .captions import (ANSWERS, CAPTION_TEMPLATES, QUESTION_TYPES, RELATIONS, Question, caption, caption_vocabulary,
                       describe, questions, relation, words)
from .multicrop import multicrop, permute_channels, resized_crops
from .photos import digits, photo_batch, photos
from .real import (DatasetUnavailable, LabelledImages, class_captions, images_for_scale, real_dataset,
                   real_for_scale, real_train_test)
from .shapes import BACKGROUNDS, COLOURS, SHAPES, SIZES, TARGETS, Scenes, ShapesWorld, standardise
from .tokenizer import Vocabulary, bpe_tokenizer

__all__ = ["ANSWERS", "BACKGROUNDS", "CAPTION_TEMPLATES", "COLOURS", "QUESTION_TYPES", "RELATIONS", "SHAPES",
           "SHAPES_WORLD_VIEWS", "SIZES", "TARGETS", "DatasetUnavailable", "LabelledImages", "Question", "Scenes",
           "ShapesWorld", "Vocabulary", "augment", "batches", "bpe_tokenizer", "caption", "caption_vocabulary",
           "class_captions", "describe", "digits", "images_for_scale", "multicrop", "patch_count", "permute_channels",
           "photo_batch", "photos", "pick_pairs", "questions", "real_dataset", "real_for_scale", "real_train_test",
           "relation", "resized_crops", "scene_indices", "simclr_augment", "standardise", "step_generator",
           "step_images", "step_scenes", "step_seed", "two_views", "view_bank", "view_pairs", "words"]
