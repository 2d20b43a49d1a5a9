"""Text classification: a generated task where word order matters, real corpora, two models.

LSTSD's records are per *sample*, so nothing in the method cares whether a sample is an image or
a sentence. A text dataset here is the same `Dataset` / `TensorData` as MNIST-1D's, with

    x: [N, T] int64 token ids, 0 = padding        y: [N] class ids

and `input_shape = (T, V)`: T positions, each holding one of V vocabulary entries (the shape of
the one-hot view of one x). That is how `build_model(name, input_shape, num_classes)` tells a text
model its vocabulary size without any change to the trainer, the buffer or the CLI.

## `textsynth`: restaurant reviews whose label depends on word order

Each sentence is one class out of six: a *topic* (food, service, place) and a *sentiment*
(positive, negative), for example `food/negative`. A clause names a noun, maybe negates, and
gives an adjective:

    the waiter was not very friendly          -> service/negative

The phenomena that make word order matter:

* **negation** — `not`, `never`, `hardly` flip the adjective that follows them;
* **contrast** — in `A but B` the clause *after* `but` decides: `the soup was bland but the staff
  were lovely` is `service/positive`;
* **concession** — `although A , B` and `B although A`: the main clause B decides, wherever it is.

In a two-clause sentence the other clause always has a different meaning — the opposite
sentiment and a random topic (the same topic only by chance) — so both candidate labels sit in
the same bag of words: swap the clauses and the bag is unchanged but the label changes. A
bag-of-words model therefore can do no better than a coin flip between the two candidates on
those sentences; a sequence model can solve all of them. One quarter of the sentences are single clauses (solvable from the bag) so
that the baseline learns *something*. The labels are balanced; every sentence is unique (train
and test never share one); the same seed gives the same sentences. `generate_textsynth` returns
them as DataFrames (with each sentence's `structure` and whether its deciding clause is
negated), which the notebook uses to ask *which* sentences a teacher disagrees with.

## Real corpora (on a machine with a connection)

`ag_news` (4 topics), `sst2` (2 sentiments; GLUE's validation split is the test set, as the test
labels are hidden) and `imdb` (2 sentiments) come from the Hugging Face Hub through the optional
`datasets` package (`pip install 'lstsd-edu[text]'`), imported only when such a set is loaded.
They are tokenised by `Vocabulary` — lower-case words, numbers and single punctuation marks,
the `vocab_size − 2` most frequent training tokens, id 1 for the rest — and the tensors are cached
in `data/text_<name>_v<V>_t<T>.pt`, so the download and tokenising happen once.

## Models: a bag of embeddings and a 1-D CNN, both masked

Both start from an embedding table whose row 0 is padding, and both derive the padding mask from
the input itself (`keep = x != 0`), so they need nothing but x:

* `textbag` — the mean of the embeddings of the real tokens, then a two-layer MLP. Blind to order.
* `textcnn` — three dilated 1-D convolutions over the embeddings (each position sees 15 tokens),
  zeroed at padding after every layer, a max over positions and a linear head. It learns the
  task on CPU in about 20 epochs. (A 2-layer transformer encoder under the trainer's SGD recipe
  stayed near 0.5–0.57 clean test accuracy in our short trials, so the toolkit ships the CNN.)
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .data import DATA_DIR, Dataset, TensorData
from .errors import ConfigError, check_choice, check_range

# ---------------------------------------------------------------------------------------------
# A word-level vocabulary
# ---------------------------------------------------------------------------------------------
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


def _tensor_data(x: torch.Tensor, labels: Sequence[int]) -> TensorData:
    y = torch.as_tensor(list(labels), dtype=torch.long)
    return TensorData(x, y, y.clone(), torch.zeros_like(y, dtype=torch.bool))


# ---------------------------------------------------------------------------------------------
# textsynth: the generated task
# ---------------------------------------------------------------------------------------------
TOPICS = ("food", "service", "place")
SENTIMENTS = ("positive", "negative")
CLASS_NAMES = tuple(f"{t}/{s}" for t in TOPICS for s in SENTIMENTS)  # class id = 2·topic + sentiment

NOUNS = {
    "food": ("food", "soup", "pasta", "pizza", "steak", "salad", "bread", "dessert", "fish", "curry"),
    "service": ("service", "waiter", "waitress", "staff", "manager", "host", "chef", "bartender"),
    "place": ("room", "decor", "music", "terrace", "view", "lighting", "table", "garden"),
}
# ADJECTIVES[topic][sentiment]: words only that topic uses, on top of the shared ones
ADJECTIVES = {
    "food": (("tasty", "delicious", "fresh", "crispy"), ("bland", "stale", "soggy", "greasy")),
    "service": (("friendly", "attentive", "polite", "helpful"), ("rude", "slow", "careless", "grumpy")),
    "place": (("cozy", "quiet", "charming", "spacious"), ("noisy", "dirty", "cramped", "gloomy")),
}
SHARED_ADJECTIVES = (
    ("good", "great", "excellent", "lovely", "superb", "wonderful"),
    ("bad", "awful", "terrible", "poor", "mediocre", "dreadful"),
)
DETERMINERS = ("the", "our", "my", "their")
COPULAS = ("was", "is", "seemed", "were")
NEGATIONS = ("not", "never", "hardly")
INTENSIFIERS = ("very", "really", "quite", "truly", "so")
CONTRASTS = ("but", "yet")
CONCESSIVES = (("although",), ("though",), ("even", "though"), ("while",))
PREFIXES = (
    ("honestly", ","),
    ("i", "think"),
    ("to", "be", "fair", ","),
    ("frankly", ","),
    ("last", "night"),
    ("on", "friday"),
    ("this", "time"),
    ("as", "always", ","),
)
SUFFIXES = (("i", "must", "say"), ("as", "usual"), ("this", "time"), ("on", "the", "whole"), ("if", "you", "ask", "me"))
# how often each sentence structure is drawn; the names appear in generate_textsynth's frames
STRUCTURES = {"simple": 0.25, "but": 0.35, "although-first": 0.2, "although-last": 0.2}
TEXTSYNTH_MAX_LEN = 24  # longest possible sentence: 4 + 6 + 3 + 6 + 4 = 23 tokens


def textsynth_vocabulary() -> Vocabulary:
    """Every word the generator can produce, in a fixed order (independent of the seed)."""
    groups = [
        TOPICS,
        *NOUNS.values(),
        *(a for pair in ADJECTIVES.values() for a in pair),
        *SHARED_ADJECTIVES,
        DETERMINERS,
        COPULAS,
        NEGATIONS,
        INTENSIFIERS,
        CONTRASTS,
        *CONCESSIVES,
        *PREFIXES,
        *SUFFIXES,
        (",",),
    ]
    return Vocabulary(sorted({w for group in groups for w in group}))


def _clause(rng: random.Random, topic: int, sentiment: int, p_negate: float) -> tuple[list[str], bool]:
    """`det noun copula [negation] [intensifier] adjective`, meaning (topic, sentiment)."""
    negated = rng.random() < p_negate
    polarity = sentiment ^ negated  # a negated clause uses an adjective of the other polarity
    name = TOPICS[topic]
    adjective = rng.choice(ADJECTIVES[name][polarity] + SHARED_ADJECTIVES[polarity])
    words = [rng.choice(DETERMINERS), rng.choice(NOUNS[name]), rng.choice(COPULAS)]
    if negated:
        words.append(rng.choice(NEGATIONS))
    if rng.random() < 0.3:
        words.append(rng.choice(INTENSIFIERS))
    return words + [adjective], negated


def _sentence(rng: random.Random, p_negate: float, structures: dict[str, float]) -> dict:
    """One sentence: draw its class, a structure, the deciding clause and (maybe) a contrasting one."""
    label = rng.randrange(len(CLASS_NAMES))
    topic, sentiment = divmod(label, len(SENTIMENTS))
    structure = rng.choices(tuple(structures), weights=tuple(structures.values()))[0]
    main, negated = _clause(rng, topic, sentiment, p_negate)  # the clause that decides the label
    if structure == "simple":
        words = main
    else:
        # the other clause: opposite sentiment, any topic — same bag of words for both readings
        other, _ = _clause(rng, rng.randrange(len(TOPICS)), 1 - sentiment, p_negate)
        if structure == "but":
            words = other + [rng.choice(CONTRASTS)] + main
        elif structure == "although-first":
            words = list(rng.choice(CONCESSIVES)) + other + [","] + main
        else:  # although-last
            words = main + list(rng.choice(CONCESSIVES)) + other
    if rng.random() < 0.3:
        words = list(rng.choice(PREFIXES)) + words
    if rng.random() < 0.2:
        words = words + list(rng.choice(SUFFIXES))
    return {
        "text": " ".join(words),
        "label": label,
        "class_name": CLASS_NAMES[label],
        "structure": structure,
        "negated": negated,
    }


def generate_textsynth(
    num_train: int = 6000,
    num_test: int = 2000,
    seed: int = 0,
    p_negate: float = 0.35,
    structures: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) DataFrames with columns text, label, class_name, structure, negated.

    `p_negate` is the chance that a clause is negated; `structures` maps structure names (keys of
    `STRUCTURES`) to their relative frequencies (default `STRUCTURES`). Sentences are drawn until
    `num_train + num_test` distinct ones exist, so no sentence appears twice and train and test
    never overlap. Uses its own generator: the caller's RNG is untouched.
    """
    check_range("num_train", num_train, 1, 1_000_000, integer=True)
    check_range("num_test", num_test, 1, 1_000_000, integer=True)
    check_range("p_negate", p_negate, 0.0, 1.0)
    structures = dict(STRUCTURES if structures is None else structures)
    for name, weight in structures.items():
        check_choice("structure", name, tuple(STRUCTURES))
        check_range(f"weight of {name}", weight, 0.0, 1e9)
    if not sum(structures.values()) > 0:
        raise ConfigError(f"structures must give some structure a positive weight; got {structures}")
    rng = random.Random(seed)
    rows, seen = [], set()
    for _ in range(50 * (num_train + num_test)):  # bounded: the grammar has millions of sentences
        if len(rows) == num_train + num_test:
            break
        row = _sentence(rng, p_negate, structures)
        if row["text"] not in seen:
            seen.add(row["text"])
            rows.append(row)
    if len(rows) < num_train + num_test:
        raise ConfigError(
            f"num_train + num_test must be at most the number of distinct sentences "
            f"this grammar makes; got {num_train + num_test}, found {len(rows)}"
        )
    frame = pd.DataFrame(rows)
    return frame.iloc[:num_train].reset_index(drop=True), frame.iloc[num_train:].reset_index(drop=True)


def load_textsynth(num_train: int = 6000, num_test: int = 2000, seed: int = 0, **options) -> Dataset:
    """The generated task as a `Dataset`: x [N, 24] token ids, six classes (see `CLASS_NAMES`).
    `options` go to `generate_textsynth` (`p_negate`, `structures`). Generated in memory each
    time (a fraction of a second), so nothing is cached."""
    train, test = generate_textsynth(num_train, num_test, seed, **options)
    vocab = textsynth_vocabulary()
    encode = lambda f: _tensor_data(vocab.encode(f.text.tolist(), TEXTSYNTH_MAX_LEN), f.label)
    return Dataset(
        "textsynth",
        encode(train),
        encode(test),
        num_classes=len(CLASS_NAMES),
        input_shape=(TEXTSYNTH_MAX_LEN, len(vocab)),
    )


# ---------------------------------------------------------------------------------------------
# Real corpora through the `datasets` library
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    """Where a corpus lives on the Hub and how to read it."""

    hub_id: str
    text: str  # column with the text
    label: str  # column with the class id
    train: str  # split names
    test: str
    num_classes: int
    max_len: int  # tokens kept per text


CORPORA = {
    "ag_news": Corpus("fancyzhx/ag_news", "text", "label", "train", "test", 4, 64),
    "sst2": Corpus("stanfordnlp/sst2", "sentence", "label", "train", "validation", 2, 48),
    "imdb": Corpus("stanfordnlp/imdb", "text", "label", "train", "test", 2, 256),
}


def fetch_corpus(name: str, root: Path | str = DATA_DIR):
    """Download (or read from the Hub cache in `root/hf`) a corpus' (train, test) splits."""
    check_choice("corpus", name, tuple(CORPORA))
    spec = CORPORA[name]
    try:
        import datasets
    except ImportError as error:
        raise ConfigError(
            f"dataset {name} needs the optional 'datasets' package (pip install 'lstsd-edu[text]'); it is not installed"
        ) from error
    try:
        splits = datasets.load_dataset(spec.hub_id, cache_dir=str(Path(root) / "hf"))
    except Exception as error:  # offline, Hub down, renamed: one readable line for the CLI
        raise ConfigError(
            f"dataset {name} could not be fetched from the Hub ({spec.hub_id}); "
            f"the first load needs a connection: {type(error).__name__}: {error}"
        ) from error
    return splits[spec.train], splits[spec.test]


def corpus_dataset(
    name: str, train_split, test_split, vocab_size: int = 20_000, max_len: int | None = None
) -> tuple[Dataset, Vocabulary]:
    """Tokenise two `datasets.Dataset` splits into a `Dataset`; the vocabulary comes from train.

    Rows whose label is negative (a hidden test label) are dropped.
    """
    check_choice("corpus", name, tuple(CORPORA))
    spec = CORPORA[name]
    max_len = spec.max_len if max_len is None else max_len
    columns = lambda split: (list(split[spec.text]), [int(v) for v in split[spec.label]])
    (train_text, train_y), (test_text, test_y) = columns(train_split), columns(test_split)
    keep = lambda text, y: [(t, v) for t, v in zip(text, y) if v >= 0]
    train_rows, test_rows = keep(train_text, train_y), keep(test_text, test_y)
    for split, rows in (("train", train_rows), ("test", test_rows)):
        if not rows:
            raise ConfigError(f"dataset {name} has no labelled rows in its {split} split")
        bad = {v for _, v in rows if v >= spec.num_classes}
        if bad:
            raise ConfigError(
                f"dataset {name} labels must be in [0, {spec.num_classes}); its {split} split has {sorted(bad)[:5]}"
            )
    vocab = Vocabulary.build((t for t, _ in train_rows), max_size=vocab_size)
    encode = lambda rows: _tensor_data(vocab.encode([t for t, _ in rows], max_len), [v for _, v in rows])
    data = Dataset(
        name, encode(train_rows), encode(test_rows), num_classes=spec.num_classes, input_shape=(max_len, len(vocab))
    )
    return data, vocab


def _cache_path(name: str, root: Path | str, vocab_size: int, max_len: int | None) -> Path:
    max_len = CORPORA[name].max_len if max_len is None else max_len
    return Path(root) / f"text_{name}_v{vocab_size}_t{max_len}.pt"


def load_corpus(
    name: str, root: Path | str = DATA_DIR, vocab_size: int = 20_000, max_len: int | None = None
) -> Dataset:
    """A real corpus as a `Dataset`, tokenised once and cached under `root`."""
    check_choice("dataset", name, tuple(CORPORA))
    path = _cache_path(name, root, vocab_size, max_len)
    if not path.exists():
        data, vocab = corpus_dataset(name, *fetch_corpus(name, root), vocab_size, max_len)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "train_x": data.train.x,
                "train_y": data.train.y,
                "test_x": data.test.x,
                "test_y": data.test.y,
                "words": vocab.words,
            },
            path,
        )
    saved = torch.load(path, weights_only=True)
    spec = CORPORA[name]
    return Dataset(
        name,
        _tensor_data(saved["train_x"], saved["train_y"]),
        _tensor_data(saved["test_x"], saved["test_y"]),
        num_classes=spec.num_classes,
        input_shape=(saved["train_x"].shape[1], len(saved["words"])),
    )


def vocabulary(
    name: str, root: Path | str = DATA_DIR, vocab_size: int = 20_000, max_len: int | None = None
) -> Vocabulary:
    """The vocabulary of a text dataset, to turn rows of x back into words with `.decode`."""
    check_choice("dataset", name, ("textsynth", *CORPORA))
    if name == "textsynth":
        return textsynth_vocabulary()
    path = _cache_path(name, root, vocab_size, max_len)
    if not path.exists():
        load_corpus(name, root, vocab_size, max_len)
    return Vocabulary(torch.load(path, weights_only=True)["words"])


TEXT_LOADERS = {"textsynth": load_textsynth, **{name: partial(load_corpus, name) for name in CORPORA}}


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------
def padding_mask(x: torch.Tensor) -> torch.Tensor:
    """keep[b, t] = x[b, t] != 0: True where there is a real token, [B, T] -> [B, T] bool."""
    return x != Vocabulary.PAD


def masked_mean(h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Σ_t keep_t h_t / Σ_t keep_t: the mean over real tokens, [B, T, D], [B, T] -> [B, D]."""
    weights = keep.to(h.dtype).unsqueeze(-1)  # [B, T, 1]
    return (h * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def _text_shape(input_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(input_shape) != 2:
        raise ConfigError(f"input_shape of a text model must be (max_len, vocab_size); got {input_shape!r}")
    return int(input_shape[0]), int(input_shape[1])


class BagOfEmbeddings(nn.Module):
    """mean_t E[x_t] over real tokens -> Linear -> ReLU -> Linear. Sees which words, not where."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 64) -> None:
        super().__init__()
        _, vocab_size = _text_shape(input_shape)
        self.embed = nn.Embedding(vocab_size, width, padding_idx=Vocabulary.PAD)
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bag = masked_mean(self.embed(x), padding_mask(x))  # [B, D]
        return self.head(bag)  # [B, C]


class TextCNN(nn.Module):
    """Embeddings -> three dilated 1-D convolutions -> max over real tokens -> Linear.

    Kernel 3 with dilations 1, 2, 4: each output position sees 1 + 2·(1 + 2 + 4) = 15 tokens, a
    whole clause and the connective around it, so a feature can fire for "an adjective, negated,
    after `but`". Padding stays zero after every layer (h ← relu(conv(h)) · keep), so it reads as
    the zero padding at a sentence's ends; and since relu(·) ≥ 0, the max over all T positions
    equals the max over the real tokens.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        width: int = 64,
        embedding_dim: int = 32,
        dilations: tuple[int, ...] = (1, 2, 4),
    ) -> None:
        super().__init__()
        _, vocab_size = _text_shape(input_shape)
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=Vocabulary.PAD)
        channels = [embedding_dim] + [width] * len(dilations)
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, 3, padding=d, dilation=d)  # length kept
            for c_in, c_out, d in zip(channels, channels[1:], dilations)
        )
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = padding_mask(x)[:, None, :].float()  # [B, 1, T]
        h = self.embed(x).transpose(1, 2)  # [B, E, T]: channels first for Conv1d
        for conv in self.convs:
            h = torch.relu(conv(h)) * keep  # [B, W, T], zero at padding
        return self.head(h.amax(2))  # max over positions [B, W] -> [B, C]


TEXT_MODELS = {"textbag": BagOfEmbeddings, "textcnn": TextCNN}
