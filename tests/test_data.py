"""The data layer: tensors and batches, label noise, the validation split, your own arrays, the
index-carrying wrapper for torch datasets, the offline sets, and caches that survive damage."""

import random
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lstsd_edu.data import (
    DATA_DIR,
    DATASETS,
    Dataset,
    TensorData,
    WithIndex,
    add_label_noise,
    atomic_write,
    collate_with_index,
    load_dataset,
    load_digits,
    load_mnist1d,
    stratified_split,
    with_label_noise,
    with_validation_split,
)
from lstsd_edu.errors import ConfigError


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def assert_same_data(a: TensorData, b: TensorData) -> None:
    for name in ("x", "y", "clean_y", "flipped"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


# ---------------------------------------------------------------------------------------------
# Tensors and batches
# ---------------------------------------------------------------------------------------------
def test_batches_cover_every_index_once_and_follow_the_generator(digits):
    data = digits.train

    def order(seed: int) -> torch.Tensor:
        return torch.cat([i for _, _, i in data.batches(100, generator=torch.Generator().manual_seed(seed))])

    a, b, c = order(0), order(0), order(1)
    assert sorted(a.tolist()) == list(range(len(data)))
    assert torch.equal(a, b) and not torch.equal(a, c)
    sizes = [len(i) for _, _, i in data.batches(100, shuffle=False)]
    assert sizes[-1] == len(data) % 100 and sum(sizes) == len(data)
    x, y, index = next(data.batches(100, shuffle=False))
    assert torch.equal(x, data.x[:100]) and torch.equal(y, data.y[index])


def test_subset_and_to_keep_every_field(digits):
    data = with_validation_split(with_label_noise(digits, 0.3), 0.1)
    index = torch.tensor([5, 0, 7])
    part = data.train.subset(index)
    assert torch.equal(part.x, data.train.x[index]) and torch.equal(part.flipped, data.train.flipped[index])
    moved = data.to("cpu")
    assert moved.val is not None and len(moved.val) == len(data.val)
    assert_same_data(moved.val, data.val)


def test_the_registry_and_the_data_folder():
    assert list(DATASETS) == ["mnist1d", "digits", "textsynth", "ag_news", "sst2", "imdb", "cifar10", "cifar100"]
    assert (DATA_DIR / "README.md").exists(), "DATA_DIR is the repository's top-level data/ folder"
    with pytest.raises(ConfigError, match="dataset must be one of"):
        load_dataset("imagenet")


# ---------------------------------------------------------------------------------------------
# Label noise
# ---------------------------------------------------------------------------------------------
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


def test_unknown_noise_kind_and_noise_after_the_split():
    with pytest.raises(ConfigError, match="noise_kind"):
        load_dataset("digits", noise=0.1, noise_kind="random")
    with pytest.raises(ConfigError, match="add label noise first"):
        with_label_noise(load_dataset("digits", val_fraction=0.1), 0.2)


# ---------------------------------------------------------------------------------------------
# The validation split
# ---------------------------------------------------------------------------------------------
def test_split_is_disjoint_and_together_the_training_set(digits):
    noisy = with_label_noise(digits, 0.3, seed=1)
    data = with_validation_split(noisy, 0.2, seed=4)
    train_index, val_index = stratified_split(noisy.train.y, 0.2, seed=4)
    assert not set(train_index.tolist()) & set(val_index.tolist())
    assert sorted(train_index.tolist() + val_index.tolist()) == list(range(len(noisy.train)))
    # the kept training samples in their original order; validation in index order
    assert torch.equal(train_index, train_index.sort().values)
    assert_same_data(data.train, noisy.train.subset(train_index))
    assert_same_data(data.val, noisy.train.subset(val_index))
    assert len(data.val) == round(0.2 * len(noisy.train))


def test_split_follows_its_seed_and_leaves_the_global_rng_alone(digits):
    labels = digits.train.y
    torch.manual_seed(11)
    before = torch.rand(3)
    torch.manual_seed(11)
    _, a = stratified_split(labels, 0.25, seed=0)
    assert torch.equal(torch.rand(3), before), "the split has its own generator"
    _, b = stratified_split(labels, 0.25, seed=0)
    _, c = stratified_split(labels, 0.25, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_split_is_stratified_within_one_sample_per_class(digits, fraction):
    labels = with_label_noise(digits, 0.3).train.y  # stratified by the labels as given
    _, val_index = stratified_split(labels, fraction, seed=2)
    n_c = torch.bincount(labels, minlength=10).double()
    v_c = torch.bincount(labels[val_index], minlength=10).double()
    assert ((v_c - fraction * n_c).abs() < 1).all()
    assert len(val_index) == round(fraction * len(labels))


def test_split_rule_by_hand():
    # classes of 5, 3 and 2 samples, f = ½: shares 2.5, 1.5, 1.0 -> ⌊·⌋ = 2, 1, 1 (4 in all);
    # round(½·10) = 5, so one more, to the largest remainder: 0.5 and 0.5 tie, class 0 wins
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 2, 2])
    _, val_index = stratified_split(labels, 0.5)
    assert torch.bincount(labels[val_index], minlength=3).tolist() == [3, 1, 1]
    # a class of one sample keeps it: shares 0.5 and 4.5, the extra one goes to class 1
    labels = torch.tensor([0] + [1] * 9)
    _, val_index = stratified_split(labels, 0.5)
    assert torch.bincount(labels[val_index], minlength=2).tolist() == [0, 5]


def test_validation_labels_carry_the_training_noise():
    data = load_dataset("mnist1d", noise=0.3, noise_seed=0, val_fraction=0.25, split_seed=0)
    assert len(data.val) == 1000 and len(data.train) == 3000
    assert torch.equal(data.val.flipped, data.val.y != data.val.clean_y), "y differs exactly where flipped"
    val_rate, train_rate = data.val.flipped.float().mean().item(), data.train.flipped.float().mean().item()
    assert abs(val_rate - 0.3) < 0.05 and abs(val_rate - train_rate) < 0.05
    # the noise is today's, on the whole training set, then split
    whole = load_dataset("mnist1d", noise=0.3, noise_seed=0)
    _, val_index = stratified_split(whole.train.y, 0.25, seed=0)
    assert_same_data(data.val, whole.train.subset(val_index))
    assert_same_data(data.test, whole.test), "the test set is untouched"


def test_val_fraction_zero_gives_the_dataset_of_before(digits):
    data = load_dataset("digits", noise=0.3, noise_kind="pairflip", noise_seed=5)
    before = with_label_noise(load_digits(), 0.3, "pairflip", 5)  # what load_dataset returned
    assert data.val is None
    assert (data.name, data.num_classes, data.input_shape) == (before.name, before.num_classes, before.input_shape)
    assert_same_data(data.train, before.train)
    assert_same_data(data.test, before.test)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, "0.1"])
def test_bad_val_fraction(fraction, digits):
    with pytest.raises(ConfigError, match="val_fraction"):
        load_dataset("digits", val_fraction=fraction)
    with pytest.raises(ConfigError, match="val_fraction"):
        with_validation_split(digits, fraction)


def test_split_refuses_an_empty_validation_set_and_a_second_split(digits):
    with pytest.raises(ConfigError, match="val_fraction must leave at least one"):
        with_validation_split(digits, 0.0001)
    with pytest.raises(ConfigError, match="already has a validation set"):
        with_validation_split(with_validation_split(digits, 0.1), 0.1)


# ---------------------------------------------------------------------------------------------
# Your own arrays
# ---------------------------------------------------------------------------------------------
def arrays(n_train: int = 40, n_test: int = 10, classes: int = 4):
    rng = np.random.default_rng(0)
    return (
        rng.normal(size=(n_train, 2, 3)),  # float64
        np.arange(n_train) % classes,  # int64
        rng.normal(size=(n_test, 2, 3)),
        (np.arange(n_test) % classes).astype(np.int32),
    )


def test_from_arrays_types_shapes_and_clean_labels():
    x_train, y_train, x_test, y_test = arrays()
    data = Dataset.from_arrays(x_train, y_train, torch.as_tensor(x_test), torch.as_tensor(y_test), name="mine")
    assert (data.name, data.num_classes, data.input_shape, data.val) == ("mine", 4, (2, 3), None)
    assert data.train.x.dtype == torch.float32 and data.test.y.dtype == torch.long
    torch.testing.assert_close(data.train.x, torch.as_tensor(x_train, dtype=torch.float32))
    assert torch.equal(data.train.clean_y, data.train.y) and not data.train.flipped.any()
    x_train[0] = 99.0  # the dataset holds its own copy
    assert data.train.x[0].max() < 99
    assert Dataset.from_arrays(*arrays(), num_classes=7).num_classes == 7
    assert Dataset.from_arrays(*arrays(), num_classes=np.int64(5)).num_classes == 5


def test_from_arrays_validation_carved_or_given():
    x_train, y_train, x_test, y_test = arrays()
    carved = Dataset.from_arrays(x_train, y_train, x_test, y_test, val_fraction=0.25, split_seed=3)
    assert (len(carved.train), len(carved.val)) == (30, 10)
    assert torch.bincount(carved.val.y).tolist() == [3, 3, 2, 2], "stratified, extras to lower class ids"
    given = Dataset.from_arrays(x_train, y_train, x_test, y_test, x_val=x_test[:3], y_val=y_test[:3])
    assert len(given.train) == 40 and given.val.y.tolist() == [0, 1, 2]


BAD_ARRAYS = [
    ({"y_train": np.arange(40) * 0.5}, r"y_train must hold integer class labels in \[0, num_classes\)"),
    ({"num_classes": 3}, r"y_train must hold integer class labels in \[0, num_classes\) = \[0, 3\)"),
    ({"y_train": -np.ones(40, dtype=int)}, r"y_train must hold integer class labels"),
    ({"y_train": np.zeros((40, 1), dtype=int)}, r"y_train must have shape \[N\] with N = len\(x_train\) = 40"),
    ({"y_test": np.zeros(9, dtype=int)}, r"y_test must have shape \[N\]"),
    ({"x_test": np.zeros((10, 3, 2))}, r"x_test must have rows shaped like x_train's, \(2, 3\)"),
    ({"x_train": np.zeros(40)}, r"x_train must be real numbers shaped \[N, \.\.\.\]"),
    ({"x_train": np.full((40, 2, 3), np.nan)}, "x_train must hold finite numbers"),
    ({"x_test": np.zeros((0, 2, 3)), "y_test": np.zeros(0, dtype=int)}, "x_test must hold at least one sample"),
    ({"num_classes": 1}, r"num_classes must be an integer in \[2"),
    ({"val_fraction": 1.0}, "val_fraction"),
    ({"x_val": np.zeros((2, 2, 3))}, "x_val and y_val must be given together; got only x_val"),
    ({"x_val": np.zeros((2, 2, 3)), "y_val": [0, 1], "val_fraction": 0.1}, "val_fraction must be 0 when x_val"),
]


@pytest.mark.parametrize(("change", "message"), BAD_ARRAYS)
def test_from_arrays_names_the_bad_argument(change, message):
    x_train, y_train, x_test, y_test = arrays()
    kwargs = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, **change}
    with pytest.raises(ConfigError, match=message):
        Dataset.from_arrays(**kwargs)


# ---------------------------------------------------------------------------------------------
# Any torch Dataset, with indices
# ---------------------------------------------------------------------------------------------
def test_with_index_through_a_shuffling_dataloader_with_workers():
    x = torch.randn(23, 2, 3)
    y = torch.arange(23) % 5
    wrapped = WithIndex(TensorDataset(x, y))
    assert len(wrapped) == 23 and wrapped[4][2] == 4 and torch.equal(wrapped[4][0], x[4])
    loader = DataLoader(
        wrapped,
        batch_size=4,
        shuffle=True,
        num_workers=2,
        collate_fn=collate_with_index,
        generator=torch.Generator().manual_seed(0),
    )
    for _ in range(2):  # two epochs
        seen = []
        for xb, yb, index in loader:
            assert index.dtype == torch.long and yb.dtype == torch.long and index.shape == yb.shape
            assert torch.equal(xb, x[index]) and torch.equal(yb, y[index])
            seen += index.tolist()
        assert sorted(seen) == list(range(23)), "every index once per epoch"


def test_collate_makes_labels_int64_whatever_their_type():
    items = [
        (np.zeros(2, dtype=np.float32), np.int32(3), 0),
        (torch.ones(2), torch.tensor(1, dtype=torch.uint8), 1),
        (torch.ones(2), torch.tensor([2]), 2),
        ([0.5, 0.5], 4, 3),
    ]
    x, y, index = collate_with_index(items)
    assert x.shape == (4, 2) and y.tolist() == [3, 1, 2, 4] and index.tolist() == [0, 1, 2, 3]
    assert y.dtype == index.dtype == torch.long
    with pytest.raises(ConfigError, match="one integer class id"):
        collate_with_index([(torch.ones(2), 0.5, 0)])
    with pytest.raises(ConfigError, match=r"\(x, y\) pairs"):
        WithIndex(TensorDataset(x, y, index))[0]


# ---------------------------------------------------------------------------------------------
# The offline sets
# ---------------------------------------------------------------------------------------------
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
    assert [p.name for p in tmp_path.iterdir()] == ["mnist1d_n5000_seed42.npz"], "one file, no temporary left"
    again = load_mnist1d(root=tmp_path)  # from the cache
    assert torch.equal(again.train.x, data.train.x)


def test_digits(digits):
    assert digits.train.x.shape[1:] == (1, 8, 8) and len(digits.train) + len(digits.test) == 1797
    assert 0.0 <= float(digits.train.x.min()) and float(digits.train.x.max()) <= 1.0


# ---------------------------------------------------------------------------------------------
# Damaged caches are rebuilt, and a cache is never half written
# ---------------------------------------------------------------------------------------------
SMALL = 500  # samples of a quick MNIST-1D


@pytest.fixture(scope="module")
def small_mnist1d(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist1d")
    return root / f"mnist1d_n{SMALL}_seed42.npz", load_mnist1d(root, num_samples=SMALL)


def damage_truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def damage_garbage(path):
    path.write_bytes(b"not a zip file at all")


def damage_shape(path):
    np.savez(path, x=np.zeros((400, 39)), y=np.zeros(400, dtype=int), x_test=np.zeros((100, 39)), y_test=np.zeros(100))


def damage_key(path):
    np.savez(path, x=np.zeros((400, 40)), y=np.zeros(400, dtype=int))


def damage_count(path):
    np.savez(
        path, x=np.zeros((4, 40)), y=np.zeros(4, dtype=int), x_test=np.zeros((1, 40)), y_test=np.zeros(1, dtype=int)
    )


@pytest.mark.parametrize("damage", [damage_truncate, damage_garbage, damage_shape, damage_key, damage_count])
def test_damaged_mnist1d_cache_is_rebuilt_with_one_warning(small_mnist1d, tmp_path, damage):
    good_path, expected = small_mnist1d
    path = tmp_path / good_path.name
    path.write_bytes(good_path.read_bytes())
    damage(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_mnist1d(tmp_path, num_samples=SMALL)
    assert len(caught) == 1 and path.name in str(caught[0].message) and "rebuilding" in str(caught[0].message)
    assert_same_data(data.train, expected.train)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_mnist1d(tmp_path, num_samples=SMALL)  # the rebuilt file reads without a warning


def test_atomic_write_leaves_nothing_behind_when_writing_fails(tmp_path):
    path = tmp_path / "cache.bin"

    def crash(file):
        file.write(b"half of a file")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert list(tmp_path.iterdir()) == [], "no cache file, no temporary file"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert path.read_bytes() == b"old", "the previous file stays whole"
    atomic_write(path, lambda file: file.write(b"new"))
    assert path.read_bytes() == b"new" and list(tmp_path.iterdir()) == [path]
