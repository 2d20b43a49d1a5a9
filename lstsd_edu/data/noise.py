"""Label noise on the training labels, with a record of what flipped.

Two kinds, each corrupting a sample with probability `rate`:

* `symmetric` — the label moves to one of the C − 1 *other* classes, uniformly at random;
* `pairflip`  — class c moves to class (c + 1) mod C.

Every corrupted label differs from the clean one, so the flipped mask is exactly `y != clean_y`.
`add_label_noise` returns that mask with the noisy labels, so the diagnostics can later ask:
does a sample's teacher–student divergence reveal that its label lies?

Noise goes on the whole training set *before* a validation set is carved from it
(`tensors.with_validation_split`): the validation labels then carry the same noise, as a user's
own held-out labels would. The test set stays clean.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..errors import ConfigError, check_choice, check_range
from .tensors import Dataset

NOISE_KINDS = ("symmetric", "pairflip")


def add_label_noise(
    labels: torch.Tensor,
    rate: float,
    kind: str = "symmetric",
    num_classes: int | None = None,
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
    """The same dataset with noise added to the training labels (the test set stays clean).

    The noise is drawn afresh from the clean labels, so it replaces any earlier noise. A dataset
    that already has a validation set is refused: its labels would not carry this noise.
    """
    if data.val is not None:
        raise ConfigError(
            f"dataset {data.name} already has a validation set; add label noise first, then carve the "
            "validation set (load_dataset(..., noise=..., val_fraction=...) does both in that order)"
        )
    noisy, flipped = add_label_noise(data.train.clean_y, rate, kind, data.num_classes, seed)
    train = replace(data.train, y=noisy, flipped=flipped)  # keeps a subclass (CIFAR's ImageData)
    return replace(data, train=train)
