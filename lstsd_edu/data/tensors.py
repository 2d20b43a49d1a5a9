"""Datasets as tensors that yield `(x, y, index)`, a validation split, and your own arrays in.

LSTSD keeps one record per *training sample*, so every batch must say which samples it holds.
The small sets of this toolkit fit in memory many times over, so they live as plain tensors on
the training device and are shuffled there: one `randperm` per epoch and a slice per batch, with
no per-item Python collation. A tiny model is then never starved by its loader.

    data = load_dataset("mnist1d", noise=0.3, val_fraction=0.1)   # Dataset(train, test, val, …)
    for x, y, index in data.train.batches(128, generator=g):
        ...                                                     # x: [B, 1, 40], y: [B], index: [B]

A `TensorData` holds the labels the model trains on (`y`, possibly noisy), the clean labels and
the mask of flipped samples. The clean labels are there for analysis only (does a sample's
teacher–student divergence reveal that its label lies?); nothing is chosen with them.

## The validation split

Everything that is chosen — hyper-parameters, the epoch to stop at — is chosen on a validation
set carved from the training set, never on the test set. The user of a noisy data set has no
clean labels, so the validation labels carry the *same* noise as the training labels: the split
is made after the noise, and stratified by the labels as given (noisy ones included).

`with_validation_split(data, fraction, seed)` sends to validation, for every class c with n_c
training samples (N in all),

    v_c = ⌊f·n_c⌋ + (1 for the classes with the largest remainders f·n_c − ⌊f·n_c⌋)

where the extra ones go to the classes with the largest remainders (ties: lower class id first)
until the total is round(f·N), rounded half up — the largest-remainder rule, so each v_c is
within one sample of f·n_c. A class never gives its last training sample: the total falls short
of round(f·N) only when too few classes can give one more (tiny classes of one or two samples).
Which samples of a class go is drawn with the split's own `torch.Generator(seed)`, so the
caller's random stream is untouched and the same seed gives the same split. The training samples
that remain keep their original order.

## Your own data

`Dataset.from_arrays(x_train, y_train, x_test, y_test)` takes numpy arrays or tensors (x becomes
float32, y int64), checks them, and infers the number of classes and the input shape. Pass
`val_fraction` to carve a validation set, or `x_val`, `y_val` to bring your own. For a
`torch.utils.data.Dataset`, see `indexed.py`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, check_range


# ---------------------------------------------------------------------------------------------
# In-memory tensors with on-device shuffling
# ---------------------------------------------------------------------------------------------
@dataclass
class TensorData:
    """Inputs `x`, (possibly noisy) labels `y`, the clean labels and the flipped mask."""

    x: torch.Tensor  # [N, ...]
    y: torch.Tensor  # [N] int64, the labels the model is trained on
    clean_y: torch.Tensor  # [N] int64, the labels before noise
    flipped: torch.Tensor  # [N] bool, y != clean_y because noise was added

    @classmethod
    def clean(cls, x: torch.Tensor, y: Any, **extra: Any) -> TensorData:
        """Samples without noise yet: `clean_y` a copy of `y`, nothing flipped. `extra` fills
        a subclass's own fields (CIFAR's `ImageData`)."""
        y = torch.as_tensor(y, dtype=torch.long)  # [N]
        return cls(x, y, y.clone(), torch.zeros_like(y, dtype=torch.bool), **extra)

    def __len__(self) -> int:
        return self.y.shape[0]

    def to(self, device: torch.device | str) -> TensorData:
        """Every tensor field on `device` (a subclass's own tensors too)."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{k: v.to(device) for k, v in moved.items() if isinstance(v, torch.Tensor)})

    def subset(self, index: torch.Tensor) -> TensorData:
        """The samples at `index` [M], in that order; a subclass keeps its other fields."""
        return replace(self, x=self.x[index], y=self.y[index], clean_y=self.clean_y[index], flipped=self.flipped[index])

    def batches(
        self, batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield `(x, y, index)` batches; the last one may be smaller.

        The permutation is drawn on the CPU from `generator` (so the same seed gives the same
        order on every device) and moved to the data's device once per epoch.
        """
        n = len(self)
        if shuffle:
            order = torch.randperm(n, generator=generator).to(self.y.device, non_blocking=True)
        else:
            order = torch.arange(n, device=self.y.device)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]  # [B]
            yield self.x[index], self.y[index], index


@dataclass
class Dataset:
    """A train/test pair (and maybe a validation set) plus what a model needs to know about it."""

    name: str
    train: TensorData
    test: TensorData
    num_classes: int
    input_shape: tuple[int, ...]  # shape of one x, e.g. (1, 40)
    val: TensorData | None = None  # carved from the training set, same label noise

    def to(self, device: torch.device | str) -> Dataset:
        """Every split on `device`; a split the data does not have (None) stays None."""
        return replace(
            self, **{name: getattr(self, name) and getattr(self, name).to(device) for name in ("train", "val", "test")}
        )

    @classmethod
    def from_arrays(
        cls,
        x_train: Any,
        y_train: Any,
        x_test: Any,
        y_test: Any,
        *,
        name: str = "arrays",
        num_classes: int | None = None,
        val_fraction: float = 0.0,
        split_seed: int = 0,
        x_val: Any = None,
        y_val: Any = None,
    ) -> Dataset:
        """A `Dataset` from numpy arrays or tensors: x [N, ...] (any numbers, made float32) and
        y [N] integer class labels (made int64). Labels are taken as clean: nothing is flipped.

        `num_classes` defaults to the largest label + 1; `input_shape` is one x's shape. A
        validation set is either carved from the training set (`val_fraction`, `split_seed`:
        see `with_validation_split`) or given (`x_val`, `y_val`), not both.
        """
        check_range("val_fraction", val_fraction, 0.0, 1.0, high_inclusive=False)
        if (x_val is None) != (y_val is None):
            given = "x_val" if x_val is not None else "y_val"
            raise ConfigError(f"x_val and y_val must be given together; got only {given}")
        if x_val is not None and val_fraction > 0:
            raise ConfigError(f"val_fraction must be 0 when x_val and y_val are given; got {val_fraction!r}")
        parts = {"train": (x_train, y_train), "test": (x_test, y_test)}
        if x_val is not None:
            parts["val"] = (x_val, y_val)
        xs = {part: _features(f"x_{part}", x) for part, (x, _) in parts.items()}
        ys = {part: _labels(f"y_{part}", y, len(xs[part]), f"x_{part}") for part, (_, y) in parts.items()}
        sample_shape = tuple(xs["train"].shape[1:])
        for part, x in xs.items():
            if tuple(x.shape[1:]) != sample_shape:
                raise ConfigError(
                    f"x_{part} must have rows shaped like x_train's, {sample_shape}; got {tuple(x.shape[1:])}"
                )
        if num_classes is None:
            num_classes = max(int(y.max()) for y in ys.values()) + 1
            if num_classes < 2:
                raise ConfigError(f"y_train must hold at least two classes (labels 0 and 1); got {num_classes}")
        elif isinstance(num_classes, np.integer):
            num_classes = int(num_classes)  # np.int64(10) from y.max() + 1 is a fine class count
        check_range("num_classes", num_classes, 2, 1_000_000, integer=True)
        for part, y in ys.items():
            if int(y.min()) < 0 or int(y.max()) >= num_classes:
                raise ConfigError(
                    f"y_{part} must hold integer class labels in [0, num_classes) = [0, {num_classes}); "
                    f"got labels from {int(y.min())} to {int(y.max())}"
                )
        clean = {part: TensorData.clean(xs[part], ys[part]) for part in parts}
        data = cls(name, clean["train"], clean["test"], num_classes, sample_shape, val=clean.get("val"))
        return with_validation_split(data, val_fraction, split_seed)


def _features(name: str, x: Any) -> torch.Tensor:
    """x as a float32 tensor [N, ...] of finite numbers, copied (the caller's array stays theirs)."""
    try:
        x = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ConfigError(f"{name} must be a numpy array or tensor of numbers; got {type(x).__name__}") from error
    if x.is_complex() or x.ndim < 2:
        raise ConfigError(
            f"{name} must be real numbers shaped [N, ...] (one row per sample, at least 2 dimensions); "
            f"got shape {tuple(x.shape)} of {x.dtype}"
        )
    if len(x) == 0:
        raise ConfigError(f"{name} must hold at least one sample; got shape {tuple(x.shape)}")
    x = x.detach().to(torch.float32, copy=True)
    if not torch.isfinite(x).all():
        raise ConfigError(f"{name} must hold finite numbers; got NaN or infinity")
    return x


def _labels(name: str, y: Any, n: int, x_name: str) -> torch.Tensor:
    """y as an int64 tensor [N], copied; integer dtypes only (a float label is a likely mistake)."""
    try:
        y = torch.as_tensor(y)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ConfigError(f"{name} must be a numpy array or tensor of class labels; got {type(y).__name__}") from error
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ConfigError(f"{name} must hold integer class labels in [0, num_classes); got dtype {y.dtype}")
    if tuple(y.shape) != (n,):
        raise ConfigError(f"{name} must have shape [N] with N = len({x_name}) = {n}; got shape {tuple(y.shape)}")
    return y.detach().to(torch.long, copy=True)


# ---------------------------------------------------------------------------------------------
# The validation split (see the module docstring for the rule)
# ---------------------------------------------------------------------------------------------
def stratified_split(labels: torch.Tensor, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`(train_index, val_index)`, both ascending, disjoint, together 0 … N − 1.

    Class c sends v_c samples to validation: ⌊f·n_c⌋, plus one for the classes with the largest
    remainders until the total is round(f·N); a class always keeps a training sample.
    """
    check_range("val_fraction", fraction, 0.0, 1.0, high_inclusive=False)
    labels = labels.cpu()  # [N]
    counts = torch.bincount(labels).tolist()  # n_c
    shares = [fraction * n for n in counts]  # f·n_c
    take = [math.floor(s) for s in shares]  # ⌊f·n_c⌋ ≤ n_c − 1, as f < 1
    missing = math.floor(fraction * len(labels) + 0.5) - sum(take)  # round(f·N) − Σ ⌊f·n_c⌋
    # one more for the classes with the largest remainders f·n_c − ⌊f·n_c⌋ (ties: lower class id),
    # among those with a remainder and at least two training samples left
    can_give = [c for c in range(len(counts)) if shares[c] > take[c] and counts[c] - take[c] >= 2]
    for c in sorted(can_give, key=lambda c: (take[c] - shares[c], c))[:missing]:
        take[c] += 1

    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)  # [N], a random rank for every sample
    is_val = torch.zeros(len(labels), dtype=torch.bool)  # [N]
    for c, v in enumerate(take):
        if v:
            is_val[order[labels[order] == c][:v]] = True  # class c's v first samples in that order
    return (~is_val).nonzero().squeeze(1), is_val.nonzero().squeeze(1)


def with_validation_split(data: Dataset, fraction: float = 0.1, seed: int = 0) -> Dataset:
    """The same dataset with a validation set `val` carved from its training set.

    Stratified by the training labels as they are (noisy ones included: add noise first, so
    the validation labels carry the same noise); `val` keeps `y`, `clean_y` and `flipped`.
    `fraction` (reported as `val_fraction`) is in [0, 1); 0 returns `data` unchanged.
    """
    check_range("val_fraction", fraction, 0.0, 1.0, high_inclusive=False)
    if fraction == 0:
        return data
    if data.val is not None:
        raise ConfigError(f"dataset {data.name} already has a validation set of {len(data.val)}; carve it only once")
    train_index, val_index = stratified_split(data.train.y, fraction, seed)
    if len(val_index) == 0:
        raise ConfigError(
            f"val_fraction must leave at least one of the {len(data.train)} training samples "
            f"for validation; got {fraction!r}"
        )
    device = data.train.y.device
    return replace(data, train=data.train.subset(train_index.to(device)), val=data.train.subset(val_index.to(device)))
