"""Reading what a model learned: probes and k-NN, attention maps, retrieval, zero-shot
classification and data curation."""
from .attention import (attention_rollout, cls_attention_map, keep_mass, mean_attention_distance, patch_distances)
from .captioning import caption_matches, caption_scores, listed_objects
from .curation import cluster_retrieve, copies_of, deduplicate
from .evaluation import (accuracy, dense_probe, enlarged_features, knn_accuracy, linear_probe, mask_iou, mean_iou,
                         patch_labels, predict)
from .retrieval import caption_gallery, chance_recall, format_report, modality_gap, recall_at_k, retrieval_report
from .zero_shot import class_prompts, few_shot_indices, prompt_classifier, zero_shot_logits

__all__ = ["accuracy", "attention_rollout", "caption_gallery", "caption_matches", "caption_scores", "chance_recall",
           "class_prompts", "cls_attention_map", "cluster_retrieve", "copies_of", "deduplicate", "dense_probe",
           "enlarged_features", "few_shot_indices", "format_report", "keep_mass", "knn_accuracy", "linear_probe",
           "listed_objects", "mask_iou", "mean_attention_distance", "mean_iou", "modality_gap", "patch_distances",
           "patch_labels", "predict", "prompt_classifier", "recall_at_k", "retrieval_report", "zero_shot_logits"]
