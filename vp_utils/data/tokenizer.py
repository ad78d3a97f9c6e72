"""Text to token ids: open_clip's byte-pair encoding (BPE), and a compact vocabulary for tiny models.

CLIP reads text as BPE tokens: the text is lower-cased, split into words, each word's UTF-8
bytes are merged pairwise by a learned list of merges into sub-words, and each sub-word has an
id. Start- and end-of-text tokens frame the sequence, which is padded with zeros to a fixed
length. End-of-text has the highest id, so `ids.argmax(-1)` finds it: CLIP pools the text there.
"""
from __future__ import annotations

import torch

from ..lab.checks import check_positive, check_texts


def bpe_tokenizer(context_length: int = 77):
    """open_clip's tokenizer (its BPE merges ship inside the package: no download)."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)


class Vocabulary:
    """The BPE tokens that a corpus uses, renumbered densely, for a model too small for 49,408.

    Ids: 0 = padding, then the corpus's sub-words, then start-of-text, then end-of-text (the
    highest id, as in open_clip, so pooling at `argmax` still lands on it).
    """

    def __init__(self, corpus, context_length: int = 32):
        check_positive(context_length, "context_length")
        self.bpe, self.context_length = bpe_tokenizer(), context_length
        used = sorted({i for text in check_texts(corpus, "corpus") for i in self.bpe.encode(text)})
        self.sub_words = used
        self._dense = {bpe_id: dense for dense, bpe_id in enumerate(used, start=1)}
        self.sot, self.eot = len(used) + 1, len(used) + 2

    def __len__(self) -> int:
        return self.eot + 1

    def __call__(self, texts) -> torch.Tensor:
        """(len(texts), context_length) ids: start, sub-words, end, zero padding."""
        texts = [texts] if isinstance(texts, str) else check_texts(texts, "texts")
        rows = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for row, text in zip(rows, texts):
            ids = [self.sot, *self._encode(text), self.eot]
            if len(ids) > self.context_length:
                raise ValueError(f"{text!r} is {len(ids)} tokens; this vocabulary's context is {self.context_length}")
            row[:len(ids)] = torch.tensor(ids)
        return rows

    def decode(self, ids) -> str:
        """The text of one row of ids, without the special tokens and padding (BPE decoding puts
        spaces around punctuation: "two shapes : red cross , ...")."""
        bpe_ids = [self.sub_words[i - 1] for i in torch.as_tensor(ids).tolist() if 0 < i < self.sot]
        return self.bpe.decode(bpe_ids).strip()

    def _encode(self, text: str) -> list[int]:
        bpe_ids = self.bpe.encode(text)
        unknown = [self.bpe.decode([i]).strip() for i in bpe_ids if i not in self._dense]
        if unknown:
            raise ValueError(f"{text!r} has sub-words this vocabulary never saw: {unknown}")
        return [self._dense[i] for i in bpe_ids]
