"""The data layer: every dataset as tensors that yield `(x, y, index)`, with label noise and a
validation split, all behind one registry.

    data = load_dataset("mnist1d", noise=0.3, val_fraction=0.1)
    data.train, data.val, data.test                      # TensorData: x, y, clean_y, flipped

One idea per module, imports flowing downwards (none of them imports a model or the trainer):

    cache.py       where data is cached (`DATA_DIR`); atomic writes; damaged caches detected
    tensors.py     TensorData, Dataset (`from_arrays`: your own arrays), the validation split
    indexed.py     WithIndex, collate_with_index: any torch map-style Dataset, with indices
    noise.py       symmetric and pair-flip label noise, with the flipped mask
    embedded.py    MNIST-1D (generated, cached) and sklearn's digits: offline
    vocabulary.py  tokenize, Vocabulary: text as token ids
    textsynth.py   the generated text task whose labels depend on word order
    corpora.py     AG News, SST-2, IMDB through the `datasets` library, cached
    cifar.py       CIFAR-10/100 in their own format, augmented on the training device

`DATASETS` maps every name `load_dataset` (and the CLI's `--dataset`) accepts to its loader.
"""

from __future__ import annotations

import inspect
from functools import partial
from pathlib import Path

from ..errors import ConfigError, check_choice, check_range
from .cache import DATA_DIR, DamagedCache, atomic_write, data_dir
from .cifar import (
    CIFAR_CLASSES,
    CIFAR_FOLDERS,
    CIFAR_LAYOUT,
    ImageData,
    cifar_dataset,
    load_cifar,
    load_cifar10,
    load_cifar100,
    make_cifar_like,
    read_cifar,
    write_cifar,
)
from .corpora import CORPORA, Corpus, corpus_dataset, fetch_corpus, load_corpus, vocabulary
from .embedded import load_digits, load_mnist1d
from .indexed import WithIndex, collate_with_index
from .noise import NOISE_KINDS, add_label_noise, with_label_noise
from .tensors import Dataset, TensorData, stratified_split, with_validation_split
from .textsynth import (
    CLASS_NAMES,
    SENTIMENTS,
    STRUCTURES,
    TEXTSYNTH_MAX_LEN,
    TOPICS,
    generate_textsynth,
    load_textsynth,
    textsynth_vocabulary,
)
from .vocabulary import Vocabulary, tokenize

DATASETS = {
    "mnist1d": load_mnist1d,
    "digits": load_digits,
    "textsynth": load_textsynth,
    **{name: partial(load_corpus, name) for name in CORPORA},  # ag_news, sst2, imdb
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
}


def load_dataset(
    name: str,
    noise: float = 0.0,
    noise_kind: str = "symmetric",
    noise_seed: int = 0,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    root: str | Path | None = None,
) -> Dataset:
    """Load a dataset by name, add training-label noise, then carve a validation set.

    `noise` is the flip rate, applied to the whole training set (`noise_kind`, `noise_seed`);
    then `val_fraction` of it goes to `data.val`, stratified by the noisy labels (`split_seed`).
    With `val_fraction=0` there is no validation set and the training set is the whole one.
    `root` is the folder its files are cached or downloaded in (default: the repository's data/).
    """
    check_choice("dataset", name, tuple(DATASETS))
    check_range("val_fraction", val_fraction, 0.0, 1.0, high_inclusive=False)  # before a slow load
    loader = DATASETS[name]
    if root is not None and "root" not in inspect.signature(loader).parameters:
        on_disk = [n for n, f in DATASETS.items() if "root" in inspect.signature(f).parameters]
        raise ConfigError(f"data_root applies to datasets kept on disk ({', '.join(on_disk)}); got dataset {name!r}")
    data = with_label_noise(loader(**({} if root is None else {"root": root})), noise, noise_kind, noise_seed)
    return with_validation_split(data, val_fraction, split_seed)


__all__ = [
    "CIFAR_CLASSES",
    "CIFAR_FOLDERS",
    "CIFAR_LAYOUT",
    "CLASS_NAMES",
    "CORPORA",
    "DATASETS",
    "DATA_DIR",
    "NOISE_KINDS",
    "SENTIMENTS",
    "STRUCTURES",
    "TEXTSYNTH_MAX_LEN",
    "TOPICS",
    "Corpus",
    "DamagedCache",
    "Dataset",
    "ImageData",
    "TensorData",
    "Vocabulary",
    "WithIndex",
    "add_label_noise",
    "atomic_write",
    "cifar_dataset",
    "collate_with_index",
    "corpus_dataset",
    "data_dir",
    "fetch_corpus",
    "generate_textsynth",
    "load_cifar",
    "load_cifar10",
    "load_cifar100",
    "load_corpus",
    "load_dataset",
    "load_digits",
    "load_mnist1d",
    "load_textsynth",
    "make_cifar_like",
    "read_cifar",
    "stratified_split",
    "textsynth_vocabulary",
    "tokenize",
    "vocabulary",
    "with_label_noise",
    "with_validation_split",
    "write_cifar",
]
