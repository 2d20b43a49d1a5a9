"""`textsynth`: generated restaurant reviews whose label depends on word order.

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
those sentences; a sequence model can solve all of them. One quarter of the sentences are single
clauses (solvable from the bag) so that the baseline learns *something*. The labels are balanced;
every sentence is unique (train and test never share one); the same seed gives the same
sentences. `generate_textsynth` returns them as DataFrames (with each sentence's `structure` and
whether its deciding clause is negated), which the text chapter uses to ask *which* sentences a
teacher disagrees with. `load_textsynth` encodes them as x [N, 24] token ids (see
`vocabulary.py`); the two text models that read them are in `models.py`.
"""

from __future__ import annotations

import random

import pandas as pd

from ..errors import ConfigError, check_choice, check_range
from .tensors import Dataset, TensorData
from .vocabulary import Vocabulary

# ---------------------------------------------------------------------------------------------
# The grammar
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
    return [*words, adjective], negated


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
            words = [*other, rng.choice(CONTRASTS), *main]
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

    def encode(frame: pd.DataFrame) -> TensorData:
        return TensorData.clean(vocab.encode(frame.text.tolist(), TEXTSYNTH_MAX_LEN), frame.label.tolist())

    return Dataset(
        "textsynth",
        encode(train),
        encode(test),
        num_classes=len(CLASS_NAMES),
        input_shape=(TEXTSYNTH_MAX_LEN, len(vocab)),
    )
