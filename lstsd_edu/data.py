"""Datasets that yield `(x, y, index)`, and label noise with a record of what flipped.

LSTSD keeps one record per *training sample*, so every batch must say which samples it holds.
The small sets here (MNIST-1D, sklearn's digits) fit in memory many times over, so they live as
plain tensors on the training device and are shuffled there: one `randperm` per epoch and a slice
per batch, with no per-item Python collation. A tiny model is then never starved by its loader.

    data = load_dataset("mnist1d", noise=0.3)          # Dataset(train=..., test=..., ...)
    for x, y, index in data.train.batches(128, generator=g):
        ...                                             # x: [B, 1, 40], y: [B], index: [B]

Label noise is applied to the training labels only:

* `symmetric` — a fraction `rate` of samples gets a label drawn uniformly from the *other* classes;
* `pairflip`  — a fraction `rate` of samples of class c gets class (c + 1) mod C.

`add_label_noise` returns the noisy labels *and* the boolean mask of flipped samples, so the
diagnostics can later ask: does a sample's teacher–student divergence reveal that its label lies?
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .errors import check_choice, check_range

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
NOISE_KINDS = ("symmetric", "pairflip")


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

    def __len__(self) -> int:
        return self.y.shape[0]

    def to(self, device: torch.device | str) -> "TensorData":
        return TensorData(*(t.to(device) for t in (self.x, self.y, self.clean_y, self.flipped)))

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
    """A train/test pair plus what a model needs to know about it."""

    name: str
    train: TensorData
    test: TensorData
    num_classes: int
    input_shape: tuple[int, ...]  # shape of one x, e.g. (1, 40)

    def to(self, device: torch.device | str) -> "Dataset":
        return replace(self, train=self.train.to(device), test=self.test.to(device))


# ---------------------------------------------------------------------------------------------
# Label noise
# ---------------------------------------------------------------------------------------------
def add_label_noise(
    labels: torch.Tensor, rate: float, kind: str = "symmetric", num_classes: int | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return `(noisy_labels, flipped)`; each sample is corrupted with probability `rate`.

    `symmetric` moves a corrupted label to one of the C − 1 other classes uniformly at random;
    `pairflip` moves class c to (c + 1) mod C. Every corrupted label differs from the clean one,
    so `flipped == (noisy_labels != labels)`. Uses its own generator: the caller's RNG is untouched.
    """
    check_range("noise", rate, 0.0, 1.0, high_inclusive=False)
    check_choice("noise_kind", kind, NOISE_KINDS)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    g = torch.Generator().manual_seed(seed)
    flipped = torch.rand(labels.shape, generator=g) < rate  # [N] bool
    if kind == "symmetric":
        # a shift in 1..C-1 lands on each other class with equal probability
        shift = torch.randint(1, num_classes, labels.shape, generator=g)
    else:
        shift = torch.ones_like(labels)
    noisy = torch.where(flipped, (labels + shift) % num_classes, labels)
    return noisy, flipped


def with_label_noise(data: Dataset, rate: float, kind: str = "symmetric", seed: int = 0) -> Dataset:
    """The same dataset with noise added to the training labels (the test set stays clean)."""
    noisy, flipped = add_label_noise(data.train.clean_y, rate, kind, data.num_classes, seed)
    train = TensorData(data.train.x, noisy, data.train.clean_y, flipped)
    return replace(data, train=train)


# ---------------------------------------------------------------------------------------------
# The datasets
# ---------------------------------------------------------------------------------------------
def _clean(x: np.ndarray, y: np.ndarray) -> TensorData:
    y_t = torch.as_tensor(y, dtype=torch.long)
    return TensorData(torch.as_tensor(x, dtype=torch.float32), y_t, y_t.clone(),
                      torch.zeros_like(y_t, dtype=torch.bool))


def load_mnist1d(root: Path | str = DATA_DIR, num_samples: int = 5000, seed: int = 42) -> Dataset:
    """MNIST-1D (a 1-D, 40-point analogue of MNIST), generated offline and cached as `.npz`.

    Defaults are the `mnist1d` package's own: 5000 samples split 4000 train / 1000 test, seed 42.
    `mnist1d` reseeds Python's and NumPy's global generators while it builds the set; we save and
    restore both so that loading data never changes the caller's random stream.
    """
    path = Path(root) / f"mnist1d_n{num_samples}_seed{seed}.npz"
    if not path.exists():
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples, args.seed = num_samples, seed
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            raw = make_dataset(args)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, x=raw["x"], y=raw["y"], x_test=raw["x_test"], y_test=raw["y_test"])
    arrays = np.load(path)
    # [N, 40] -> [N, 1, 40]: one channel for the 1-D convolutions
    train = _clean(arrays["x"][:, None, :], arrays["y"])
    test = _clean(arrays["x_test"][:, None, :], arrays["y_test"])
    return Dataset("mnist1d", train, test, num_classes=10, input_shape=(1, 40))


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """sklearn's bundled 8×8 handwritten digits (1797 images), split with a fixed seed."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]  # [N, 1, 8, 8] in [0, 1]
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test_i, train_i = order[:n_test], order[n_test:]
    return Dataset("digits", _clean(x[train_i], y[train_i]), _clean(x[test_i], y[test_i]),
                   num_classes=10, input_shape=(1, 8, 8))


LOADERS = {"mnist1d": load_mnist1d, "digits": load_digits}


def load_dataset(name: str, noise: float = 0.0, noise_kind: str = "symmetric",
                 noise_seed: int = 0) -> Dataset:
    """Load a dataset by name and add training-label noise (`noise` is the flip rate)."""
    check_choice("dataset", name, tuple(LOADERS))
    return with_label_noise(LOADERS[name](), noise, noise_kind, noise_seed)
