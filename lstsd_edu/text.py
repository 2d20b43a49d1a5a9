"""The text names under their former module name, for code written before `lstsd_edu.data`.

The generated task lives in `lstsd_edu/data/textsynth.py`, the tokeniser and vocabulary in
`lstsd_edu/data/vocabulary.py`, the real corpora in `lstsd_edu/data/corpora.py`, and the text
models in `lstsd_edu/models.py`. Import them from `lstsd_edu.data` (and `lstsd_edu.models`).
"""

from .data.corpora import CORPORA, Corpus, corpus_dataset, fetch_corpus, load_corpus, vocabulary
from .data.textsynth import (
    ADJECTIVES,
    CLASS_NAMES,
    CONCESSIVES,
    CONTRASTS,
    NEGATIONS,
    NOUNS,
    SENTIMENTS,
    SHARED_ADJECTIVES,
    STRUCTURES,
    TEXTSYNTH_MAX_LEN,
    TOPICS,
    generate_textsynth,
    load_textsynth,
    textsynth_vocabulary,
)
from .data.vocabulary import Vocabulary, tokenize

__all__ = [
    "ADJECTIVES",
    "CLASS_NAMES",
    "CONCESSIVES",
    "CONTRASTS",
    "CORPORA",
    "NEGATIONS",
    "NOUNS",
    "SENTIMENTS",
    "SHARED_ADJECTIVES",
    "STRUCTURES",
    "TEXTSYNTH_MAX_LEN",
    "TOPICS",
    "Corpus",
    "Vocabulary",
    "corpus_dataset",
    "fetch_corpus",
    "generate_textsynth",
    "load_corpus",
    "load_textsynth",
    "textsynth_vocabulary",
    "tokenize",
    "vocabulary",
]
