"""Early fusion's objectives (notebook 11): answer a question about an image, twice over: a classifier
reads the answer at the question's last token, and the language model writes it, predicting each
next token from the image and the tokens before it. Captioning trains the language model alone, to
write a scene's full list of objects after a fixed prompt."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.batching import step_scenes
from ..data.captions import ANSWERS, Question, caption, caption_vocabulary, questions
from ..data.shapes import Scenes, ShapesWorld
from ..models.fusion import EarlyFusion, LateFusion, last_token


def next_token_loss(logits: torch.Tensor, ids: torch.Tensor, learn: torch.Tensor | None = None,
                    pad: int = 0) -> torch.Tensor:
    """Cross-entropy of logits[:, t] against ids[:, t + 1], over the positions that count:
    never padding, and only where `learn` (B, L) is True when given (e.g. the answer, not the
    question, as LLaVA trains)."""
    if logits.ndim != 3 or logits.shape[:2] != ids.shape:
        raise ValueError(f"logits must be (batch, length, vocab) matching ids {tuple(ids.shape)}, "
                         f"got {tuple(logits.shape)}")
    targets = ids[:, 1:]
    counts = targets != pad
    if learn is not None:
        counts &= learn[:, 1:]
    if not counts.any():
        raise ValueError("no target token to learn: every position is padding or excluded")
    return F.cross_entropy(logits[:, :-1][counts], targets[counts])


def question_answer_ids(vocabulary, questions, answers) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token ids of "question answer" per row (start, question, answer, end; padded to the longest
    row), each prompt's length (start + question: the prompt is ids[:, :length]), and each answer's
    index in `answers` (the classifier's classes)."""
    questions, answers = list(questions), list(answers)
    if not questions:
        raise ValueError("questions must hold at least one question")
    unknown = [q for q in questions if q.answer not in answers]
    if unknown:
        raise ValueError(f"answers has no {unknown[0].answer!r}, the answer to {unknown[0].text!r}")
    ids = vocabulary([f"{q.text} {q.answer}" for q in questions])
    prompt_lengths = last_token(vocabulary([q.text for q in questions]))  # end-of-text's place: length without it
    labels = torch.tensor([answers.index(q.answer) for q in questions])
    return ids[:, :int((ids != 0).sum(dim=1).max())], prompt_lengths, labels


def vqa_loss(model: EarlyFusion, batch) -> dict[str, torch.Tensor]:
    """Both heads from one pass over [image ; question answer]: the classifier's cross-entropy at
    the question's last token, plus the language model's next-token loss on the answer and the
    end-of-text only (LLaVA's instruction tuning: the question is given, not learned)."""
    images, ids, prompt_lengths, labels = batch
    tokens = model.forward_tokens(images, ids)[:, model.num_image_tokens:]
    logits = model.answer_head(tokens[torch.arange(len(ids)), prompt_lengths - 1])
    classifier = F.cross_entropy(logits, labels)
    language = next_token_loss(model.lm_head(tokens), ids, learn=after_prompt(ids, prompt_lengths))
    return {"loss": classifier + language, "classifier": classifier.detach(), "language": language.detach(),
            "accuracy": (logits.argmax(1) == labels).float().mean()}


def answer_loss(model, batch) -> dict[str, torch.Tensor]:
    """The answer classifier's cross-entropy alone, read at each question's last token, for any model
    with `answer_logits(images, ids, at)` (Flamingo's bridges train on it)."""
    images, ids, prompt_lengths, labels = batch
    return _answer_scores(model.answer_logits(images, ids, at=prompt_lengths - 1), labels)


def late_fusion_loss(model: LateFusion, batch) -> dict[str, torch.Tensor]:
    """Late fusion trained on early fusion's batches: each row cut back to start, question, end (what
    CLIP's text tower reads), and the classifier's cross-entropy on the answer."""
    images, ids, prompt_lengths, labels = batch
    rows = torch.arange(len(ids), device=ids.device)
    question = ids.masked_fill(after_prompt(ids, prompt_lengths), 0)
    question[rows, prompt_lengths] = caption_vocabulary().eot
    return _answer_scores(model(images, question), labels)


def after_prompt(ids: torch.Tensor, prompt_lengths: torch.Tensor) -> torch.Tensor:
    """(B, L) True at each row's positions from its prompt's end on: what the model writes."""
    return torch.arange(ids.shape[1], device=ids.device)[None] >= prompt_lengths[:, None].to(ids.device)


CAPTION_PROMPT = "what shapes are there?"


def caption_batch(world: ShapesWorld, seed: int, step: int, size: int) -> tuple[torch.Tensor, ...]:
    """Global batch `step` for captioning: the images, token ids of "prompt caption" (the caption lists
    every object with its size, colour and shape, the world's "list" template) and the prompt's length.
    `seed` is unused: the captions follow from the scenes alone."""
    scenes = step_scenes(world, step, size)
    vocabulary = caption_vocabulary()
    ids = vocabulary([f"{CAPTION_PROMPT} {caption(scenes, i, 'list')}" for i in range(len(scenes))])
    prompt_length = last_token(vocabulary([CAPTION_PROMPT]))  # start + prompt: end-of-text's place
    return scenes.torch_images(), ids[:, :int((ids != 0).sum(dim=1).max())], prompt_length.expand(len(scenes))


def caption_loss(model: EarlyFusion, batch) -> dict[str, torch.Tensor]:
    """The language model's next-token loss on the caption and its end-of-text; the prompt is given."""
    images, ids, prompt_lengths = batch
    return {"loss": next_token_loss(model.lm_logits(images, ids), ids, learn=after_prompt(ids, prompt_lengths))}


def _answer_scores(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"loss": F.cross_entropy(logits, labels), "accuracy": (logits.argmax(1) == labels).float().mean()}


def fusion_questions(scenes: Scenes, step: int, seed: int = 0) -> list[Question]:
    """One question per scene, its type turning with the scene index and the step: every batch
    holds each type about equally, and a scene seen again is asked something else."""
    chosen = []
    for i, index in enumerate(scenes.index):
        available = questions(scenes, i, seed=seed + step)
        chosen.append(available[(int(index) + step) % len(available)])
    return chosen


def fusion_batch(world: ShapesWorld, seed: int, step: int, size: int) -> tuple[torch.Tensor, ...]:
    """Global batch `step`: the images, "question answer" token ids, prompt lengths and answer indices."""
    scenes = step_scenes(world, step, size)
    return (scenes.torch_images(), *question_answer_ids(caption_vocabulary(), fusion_questions(scenes, step, seed), ANSWERS))
