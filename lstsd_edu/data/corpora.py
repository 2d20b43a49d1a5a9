"""Real text corpora through the `datasets` library (on a machine with a connection).

`ag_news` (4 topics), `sst2` (2 sentiments; GLUE's validation split is the test set, as the test
labels are hidden) and `imdb` (2 sentiments) come from the Hugging Face Hub through the optional
`datasets` package (`pip install 'lstsd-edu[text]'`), imported only when such a set is loaded.
They are tokenised by `Vocabulary` (`vocabulary.py`) — the `vocab_size − 2` most frequent
training tokens, id 1 for the rest — and the tensors are cached in
`data/text_<name>_v<V>_t<T>.pt`, so the download and tokenising happen once.

A cache file that cannot be read, lacks a key or has the wrong shapes is reported with a
`ConfigError` naming it: delete it and load again (with a connection) to rebuild it. It is not
fetched again silently, since that needs the network (see `cache.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from ..errors import ConfigError, check_choice
from .cache import check_cache, data_dir, load_cached, read_file
from .tensors import Dataset, TensorData
from .textsynth import textsynth_vocabulary
from .vocabulary import Vocabulary


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
CACHE_KEYS = ("train_x", "train_y", "test_x", "test_y", "words")


def fetch_corpus(name: str, root: Path | str | None = None):
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
        splits = datasets.load_dataset(spec.hub_id, cache_dir=str(data_dir(root) / "hf"))
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
    rows = {}
    for split_name, split in (("train", train_split), ("test", test_split)):
        labelled = [(t, int(v)) for t, v in zip(split[spec.text], split[spec.label], strict=True) if int(v) >= 0]
        if not labelled:
            raise ConfigError(f"dataset {name} has no labelled rows in its {split_name} split")
        bad = {v for _, v in labelled if v >= spec.num_classes}
        if bad:
            raise ConfigError(
                f"dataset {name} labels must be in [0, {spec.num_classes}); "
                f"its {split_name} split has {sorted(bad)[:5]}"
            )
        rows[split_name] = labelled
    vocab = Vocabulary.build((t for t, _ in rows["train"]), max_size=vocab_size)

    def encode(labelled: list[tuple[str, int]]) -> TensorData:
        return TensorData.clean(vocab.encode([t for t, _ in labelled], max_len), [v for _, v in labelled])

    data = Dataset(
        name,
        encode(rows["train"]),
        encode(rows["test"]),
        num_classes=spec.num_classes,
        input_shape=(max_len, len(vocab)),
    )
    return data, vocab


def _cache_path(name: str, root: Path | str | None, vocab_size: int, max_len: int | None) -> Path:
    max_len = CORPORA[name].max_len if max_len is None else max_len
    return data_dir(root) / f"text_{name}_v{vocab_size}_t{max_len}.pt"


def _cached_corpus(name: str, root: Path | str | None, vocab_size: int, max_len: int | None) -> dict:
    """The cached tensors of a corpus (train_x, train_y, test_x, test_y, words), fetched and
    tokenised first if there is no cache file."""
    path = _cache_path(name, root, vocab_size, max_len)

    def write(file: BinaryIO) -> None:
        data, vocab = corpus_dataset(name, *fetch_corpus(name, root), vocab_size, max_len)
        splits = {"train": data.train, "test": data.test}
        tensors = {f"{part}_{key}": getattr(splits[part], key) for part in splits for key in ("x", "y")}
        torch.save({**tensors, "words": vocab.words}, file)

    fix = "delete it and load the dataset again to fetch and tokenise it anew (needs a connection)"
    return load_cached(
        path, read=lambda p: _read_corpus(p, CORPORA[name].num_classes), write=write, rebuild_if_damaged=False, fix=fix
    )


def _read_corpus(path: Path, num_classes: int) -> dict:
    """A cache file's tensors, checked: x [N, T] int64 ids < V, y [N] in [0, num_classes)."""
    saved = read_file(path, lambda p: torch.load(p, weights_only=True))
    check_cache(isinstance(saved, dict), f"holds a {type(saved).__name__}, not a dict")
    missing = [key for key in CACHE_KEYS if key not in saved]
    check_cache(not missing, f"no {', '.join(missing)}")
    words = saved["words"]
    check_cache(isinstance(words, list) and len(words) >= 2, "words is not a list of at least 2 words")
    max_len = None
    for part in ("train", "test"):
        x, y = saved[f"{part}_x"], saved[f"{part}_y"]
        check_cache(
            isinstance(x, torch.Tensor) and x.dtype == torch.long and x.ndim == 2 and x.numel() > 0,
            f"{part}_x is not int64 [N, T] with N, T ≥ 1",
        )
        check_cache(max_len in (None, x.shape[1]), f"{part}_x has {x.shape[1]} positions, not {max_len}")
        max_len = x.shape[1]
        check_cache(0 <= int(x.min()) and int(x.max()) < len(words), f"{part}_x holds ids outside the vocabulary")
        check_cache(
            isinstance(y, torch.Tensor) and y.dtype == torch.long and tuple(y.shape) == (len(x),),
            f"{part}_y is not int64 [{len(x)}]",
        )
        check_cache(0 <= int(y.min()) and int(y.max()) < num_classes, f"{part}_y is not in [0, {num_classes})")
    return saved


def load_corpus(
    name: str, root: Path | str | None = None, vocab_size: int = 20_000, max_len: int | None = None
) -> Dataset:
    """A real corpus as a `Dataset`, tokenised once and cached under `root` (default `data/`)."""
    check_choice("dataset", name, tuple(CORPORA))
    saved = _cached_corpus(name, root, vocab_size, max_len)
    return Dataset(
        name,
        TensorData.clean(saved["train_x"], saved["train_y"]),
        TensorData.clean(saved["test_x"], saved["test_y"]),
        num_classes=CORPORA[name].num_classes,
        input_shape=(saved["train_x"].shape[1], len(saved["words"])),
    )


def vocabulary(
    name: str, root: Path | str | None = None, vocab_size: int = 20_000, max_len: int | None = None
) -> Vocabulary:
    """The vocabulary of a text dataset, to turn rows of x back into words with `.decode`."""
    check_choice("dataset", name, ("textsynth", *CORPORA))
    if name == "textsynth":
        return textsynth_vocabulary()
    return Vocabulary(_cached_corpus(name, root, vocab_size, max_len)["words"])
