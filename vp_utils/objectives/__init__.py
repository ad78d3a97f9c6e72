"""What each method trains its model to do, one module per method: its losses, its batches (a
pure function of (world, seed, step, size)) and its hooks, with the ablation switches as
parameters, so a notebook's experiment runs the very function the trainer runs.

    classification   cross-entropy on labelled images (01, 02); yes/no labels of a scene's contents (06)
    contrastive      InfoNCE, NT-Xent, alignment and uniformity (04, 05)
    simclr           two augmented views and NT-Xent (05)
    mae              masked patches and their pixel loss (03)
    dino             self-distillation: DINO, iBOT and KoLeo, the EMA teacher (06, 07)
    clip             the symmetric image-caption loss (08-10)
    fusion           answering questions about images, classifier and language model (11)
    distributed      gathering embeddings across processes, so contrastive losses see every negative
"""
from .classification import classification_loss, contents_batch, multilabel_loss, scene_contents, shape_batch
from .clip import clip_batch, clip_loss, clip_objective
from .contrastive import alignment, info_nce, nt_xent, uniformity
from .dino import (block_patch_mask, dino_batch, dino_loss, dino_objective, dino_views, dinov2_batch, dinov2_objective,
                   distill, ema_update, entropy, ibot_patch_loss, koleo_loss, sinkhorn_knopp, teacher_step,
                   teacher_targets, update_center, update_teacher)
from .distributed import all_gather_with_grad
from .fusion import (CAPTION_PROMPT, answer_loss, caption_batch, caption_loss, fusion_batch, fusion_questions,
                     late_fusion_loss, next_token_loss, question_answer_ids, vqa_loss)
from .mae import mae_batch, mae_loss, mae_objective, masked_mse, mean_colour_baseline, patch_targets
from .simclr import simclr_batch, simclr_objective

__all__ = ["CAPTION_PROMPT", "alignment", "all_gather_with_grad", "answer_loss", "block_patch_mask", "caption_batch",
           "caption_loss", "classification_loss", "clip_batch", "clip_loss", "clip_objective", "contents_batch",
           "dino_batch", "dino_loss", "dino_objective", "dino_views", "dinov2_batch", "dinov2_objective", "distill",
           "ema_update", "entropy", "fusion_batch", "fusion_questions", "ibot_patch_loss", "info_nce", "koleo_loss",
           "late_fusion_loss", "mae_batch", "mae_loss", "mae_objective", "masked_mse", "mean_colour_baseline",
           "multilabel_loss", "next_token_loss", "nt_xent", "patch_targets", "question_answer_ids", "scene_contents",
           "shape_batch", "simclr_batch", "simclr_objective", "sinkhorn_knopp", "teacher_step", "teacher_targets",
           "uniformity", "update_center", "update_teacher", "vqa_loss"]
