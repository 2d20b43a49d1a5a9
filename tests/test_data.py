"""Datasets: MNIST-1D generation and caching, label noise, on-device batches."""

import random

import numpy as np
import pytest
import torch

from lstsd_edu.data import add_label_noise, load_dataset, load_digits, load_mnist1d
from lstsd_edu.errors import ConfigError


def test_mnist1d_defaults_and_cache(tmp_path):
    random.seed(7)
    np.random.seed(7)
    before = (random.random(), np.random.rand())
    random.seed(7)
    np.random.seed(7)
    data = load_mnist1d(root=tmp_path)
    after = (random.random(), np.random.rand())
    assert before == after, "generating MNIST-1D must not disturb the caller's global RNG"
    assert data.train.x.shape == (4000, 1, 40) and data.test.x.shape == (1000, 1, 40)
    assert data.num_classes == 10 and set(data.train.y.tolist()) == set(range(10))
    assert list(tmp_path.glob("mnist1d_*.npz")), "cached under the data folder"
    again = load_mnist1d(root=tmp_path)  # from the cache
    assert torch.equal(again.train.x, data.train.x)


def test_digits():
    data = load_digits()
    assert data.train.x.shape[1:] == (1, 8, 8) and len(data.train) + len(data.test) == 1797
    assert 0.0 <= float(data.train.x.min()) and float(data.train.x.max()) <= 1.0


@pytest.mark.parametrize("kind", ["symmetric", "pairflip"])
def test_label_noise_rate_kind_and_record(kind):
    labels = torch.arange(10).repeat(1000)  # 10 000 labels, 1000 per class
    noisy, flipped = add_label_noise(labels, 0.3, kind, 10, seed=3)
    assert torch.equal(flipped, noisy != labels), "flipped is exactly the changed labels"
    assert abs(flipped.float().mean().item() - 0.3) < 0.02
    if kind == "pairflip":
        assert torch.equal(noisy[flipped], (labels[flipped] + 1) % 10)
    else:  # uniform over the other classes
        counts = torch.bincount((noisy[flipped] - labels[flipped]) % 10, minlength=10)
        assert counts[0] == 0 and counts[1:].min() > 0.7 * counts[1:].float().mean()
    again, _ = add_label_noise(labels, 0.3, kind, 10, seed=3)
    assert torch.equal(noisy, again), "same seed, same noise"


def test_noise_leaves_test_set_and_clean_labels_alone():
    clean = load_dataset("mnist1d")
    noisy = load_dataset("mnist1d", noise=0.3)
    assert torch.equal(noisy.test.y, clean.test.y)
    assert torch.equal(noisy.train.clean_y, clean.train.y)
    assert 0.25 < noisy.train.flipped.float().mean() < 0.35


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_bad_noise_rate(rate):
    with pytest.raises(ConfigError, match="noise"):
        add_label_noise(torch.zeros(4, dtype=torch.long), rate, "symmetric", 10)


def test_unknown_dataset_and_noise_kind():
    with pytest.raises(ConfigError, match="dataset"):
        load_dataset("imagenet")
    with pytest.raises(ConfigError, match="noise_kind"):
        load_dataset("digits", noise=0.1, noise_kind="random")


def test_batches_cover_every_index_once_and_follow_the_generator():
    data = load_digits().train
    order = lambda seed: torch.cat([i for _, _, i in data.batches(100, generator=torch.Generator().manual_seed(seed))])  # noqa: E731
    a, b, c = order(0), order(0), order(1)
    assert sorted(a.tolist()) == list(range(len(data)))
    assert torch.equal(a, b) and not torch.equal(a, c)
    sizes = [len(i) for _, _, i in data.batches(100, shuffle=False)]
    assert sizes[-1] == len(data) % 100 and sum(sizes) == len(data)
    x, y, index = next(data.batches(100, shuffle=False))
    assert torch.equal(x, data.x[:100]) and torch.equal(y, data.y[index])
