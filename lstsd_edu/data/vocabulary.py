"""Text as tensors: a tokeniser and a word-level vocabulary.

LSTSD's records are per *sample*, so nothing in the method cares whether a sample is an image or
a sentence. A text dataset is the same `Dataset` / `TensorData` as MNIST-1D's, with

    x: [N, T] int64 token ids, 0 = padding        y: [N] class ids

and `input_shape = (T, V)`: T positions, each holding one of V vocabulary entries (the shape of
the one-hot view of one x). That is how `build_model(name, input_shape, num_classes)` tells a text
model its vocabulary size without any change to the trainer, the buffer or the CLI.

`tokenize` keeps lower-case words (with an inner apostrophe, as in "didn't"), numbers and single
punctuation marks; `Vocabulary` maps them to ids, with 0 for padding and 1 for any word it does
not know. The generated task (`textsynth.py`) and the real corpora (`corpora.py`) both use them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from ..errors import check_range

# lower-case words (with an inner apostrophe, as in "didn't") and numbers, or one punctuation mark
TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)  # IMDB reviews contain <br /> tags


def tokenize(text: str) -> list[str]:
    """`"The soup, sadly, wasn't hot!"` -> `['the', 'soup', ',', 'sadly', ',', "wasn't", 'hot', '!']`."""
    return TOKEN.findall(HTML_BREAK.sub(" ", text).lower())


class Vocabulary:
    """Words <-> ids. Id 0 is padding (`<pad>`), id 1 any word outside the vocabulary (`<unk>`)."""

    PAD, UNK = 0, 1
    SPECIALS = ("<pad>", "<unk>")

    def __init__(self, words: Iterable[str]) -> None:
        self.words = list(self.SPECIALS) + [w for w in words if w not in self.SPECIALS]
        self.ids = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, texts: Iterable[str], max_size: int = 20_000, min_freq: int = 1) -> Vocabulary:
        """The `max_size − 2` most frequent tokens of `texts` seen at least `min_freq` times
        (ties broken alphabetically, so the same texts always give the same ids)."""
        check_range("vocab_size", max_size, 3, 10_000_000, integer=True)
        counts = Counter(token for text in texts for token in tokenize(text))
        ranked = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        return cls(ranked[: max_size - len(cls.SPECIALS)])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: Sequence[str], max_len: int) -> torch.Tensor:
        """Token ids [N, max_len]: each text cut to `max_len` tokens, padded with 0 on the right.
        A text with no tokens becomes a single `<unk>`, so no row is all padding."""
        check_range("max_len", max_len, 1, 1_000_000, integer=True)
        rows = []
        for text in texts:
            ids = [self.ids.get(t, self.UNK) for t in tokenize(text)[:max_len]] or [self.UNK]
            rows.append(ids + [self.PAD] * (max_len - len(ids)))
        return torch.tensor(rows, dtype=torch.long).view(len(rows), max_len)  # [N, T]

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """The words of one row of ids, padding left out."""
        return " ".join(self.words[i] for i in torch.as_tensor(ids).tolist() if i != self.PAD)

    def save(self, path: Path | str) -> None:
        Path(path).write_text(json.dumps(self.words[len(self.SPECIALS) :]))

    @classmethod
    def load(cls, path: Path | str) -> Vocabulary:
        return cls(json.loads(Path(path).read_text()))
