"""CIFAR at small scale: files in CIFAR's own format, on-device augmentation, ResNets, presets,
and the buffer's memory arithmetic for large problems. Nothing is downloaded: every CIFAR file
here is written by the test itself, as a pickle of a dict with bytes keys like the originals."""

import pickle

import numpy as np
import pytest
import torch

from lstsd_edu import data as data_module
from lstsd_edu.buffer import SnapshotBuffer, memory_table
from lstsd_edu.cli import main
from lstsd_edu.data import ImageData, load_cifar, load_dataset, make_cifar_like, read_cifar, write_cifar
from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import PRESETS, preset, train
from lstsd_edu.models import build_model


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


def dump(path, record: dict) -> None:
    """Like CIFAR's own files: a pickled dict, keys as bytes, images as uint8 rows of 3072."""
    with open(path, "wb") as f:
        pickle.dump({k.encode(): v for k, v in record.items()}, f, protocol=2)


def write_cifar10_by_hand(root, train_x, train_y, test_x, test_y):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, (xs, ys) in enumerate(zip(np.split(train_x, 5), np.split(train_y, 5), strict=True), start=1):
        dump(
            folder / f"data_batch_{i}",
            {
                "batch_label": b"training batch",
                "labels": ys.tolist(),
                "data": xs.reshape(len(xs), 3072),
                "filenames": [],
            },
        )
    dump(
        folder / "test_batch",
        {
            "batch_label": b"testing batch",
            "labels": test_y.tolist(),
            "data": test_x.reshape(len(test_x), 3072),
            "filenames": [],
        },
    )
    dump(
        folder / "batches.meta",
        {
            "label_names": [f"name{c}".encode() for c in range(10)],
            "num_cases_per_batch": len(train_x) // 5,
            "num_vis": 3072,
        },
    )
    return folder


@pytest.fixture
def cifar10_root(tmp_path):
    train_x, test_x = images(20, 0), images(6, 1)
    train_y, test_y = np.arange(20) % 10, np.arange(6) % 10
    write_cifar10_by_hand(tmp_path, train_x, train_y, test_x, test_y)
    return tmp_path, train_x, train_y, test_x, test_y


# -- reading CIFAR's format -------------------------------------------------------------------------
def test_cifar10_files_load_in_order_with_training_set_normalisation(cifar10_root):
    root, train_x, train_y, test_x, test_y = cifar10_root
    data = load_cifar("cifar10", root, download=False)
    assert (data.num_classes, data.input_shape) == (10, (3, 32, 32))
    assert isinstance(data.train, ImageData) and data.train.augment and not data.test.augment
    # the five batch files, concatenated in order; pixels untouched (uint8)
    assert torch.equal(data.train.x, torch.as_tensor(train_x))
    assert data.train.y.tolist() == train_y.tolist() and data.test.y.tolist() == test_y.tolist()
    # evaluation batches: (x / 255 − mean_c) / std_c with the training set's channel statistics
    pixels = train_x.astype(np.float64) / 255
    mean, std = pixels.mean(axis=(0, 2, 3)), pixels.std(axis=(0, 2, 3), ddof=1)
    x, _, index = next(data.test.batches(4, shuffle=False))
    expected = (test_x[:4] / 255 - mean[:, None, None]) / std[:, None, None]
    torch.testing.assert_close(x, torch.as_tensor(expected, dtype=torch.float32), atol=1e-5, rtol=1e-5)
    assert index.tolist() == [0, 1, 2, 3]


def test_cifar100_files_use_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train_x, test_x = images(8, 2), images(3, 3)
    fine, coarse = [5, 99, 0, 42, 7, 7, 63, 1], [1, 19, 0, 8, 1, 1, 12, 0]
    dump(folder / "train", {"data": train_x.reshape(8, 3072), "fine_labels": fine, "coarse_labels": coarse})
    dump(folder / "test", {"data": test_x.reshape(3, 3072), "fine_labels": [3, 2, 1], "coarse_labels": [0, 0, 0]})
    dump(
        folder / "meta",
        {
            "fine_label_names": [f"f{c}".encode() for c in range(100)],
            "coarse_label_names": [f"c{c}".encode() for c in range(20)],
        },
    )
    data = load_cifar("cifar100", tmp_path, download=False)
    assert data.num_classes == 100
    assert data.train.y.tolist() == fine and data.test.y.tolist() == [3, 2, 1]
    assert read_cifar(folder, "cifar100")["classes"][:2] == ["f0", "f1"]


def test_missing_files_are_named(cifar10_root):
    root = cifar10_root[0]
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(ConfigError, match="missing data_batch_3"):
        load_cifar("cifar10", root, download=False)
    with pytest.raises(ConfigError, match="dataset must be one of"):
        load_cifar("cifar1000", root)


def test_load_dataset_keeps_augmentation_through_label_noise_and_the_split(cifar10_root, monkeypatch):
    monkeypatch.setattr(data_module.cache, "DATA_DIR", cifar10_root[0])  # where loaders look by default
    data = load_dataset("cifar10", noise=0.5)
    assert isinstance(data.train, ImageData) and data.train.augment
    assert torch.equal(data.train.flipped, data.train.y != data.train.clean_y)
    assert isinstance(data.to("cpu").train, ImageData)
    split = load_dataset("cifar10", noise=0.5, val_fraction=0.5)
    assert len(split.train) == len(split.val) == 10 and isinstance(split.val, ImageData)
    assert torch.equal(split.val.mean, data.train.mean), "normalised with the whole training set's statistics"
    assert isinstance(split.to("cpu").val, ImageData)


def test_written_files_read_back(tmp_path):
    x, y = images(10, 4), np.arange(10) % 10
    folder = write_cifar(tmp_path, "cifar10", x, y, x[:4], y[:4])
    arrays = read_cifar(folder, "cifar10")
    assert np.array_equal(arrays["train_x"], x) and arrays["train_y"].tolist() == y.tolist()
    folder = make_cifar_like(tmp_path, "cifar100", num_train=200, num_test=100)
    arrays = read_cifar(folder, "cifar100")
    assert arrays["train_x"].shape == (200, 3, 32, 32) and len(arrays["classes"]) == 100
    assert np.bincount(arrays["train_y"], minlength=100).tolist() == [2] * 100  # balanced


# -- augmentation on the device ---------------------------------------------------------------------
def image_data(n: int = 6, augment: bool = True) -> ImageData:
    y = torch.arange(n) % 3
    return ImageData(
        torch.as_tensor(images(n, 5)),
        y,
        y.clone(),
        torch.zeros(n, dtype=torch.bool),
        mean=torch.tensor([0.5, 0.4, 0.3]),
        std=torch.tensor([0.2, 0.25, 0.3]),
        augment=augment,
    )


def test_crop_and_flip_against_numpy():
    data = image_data()
    x = data.x[:3]
    top, left, flip = torch.tensor([0, 4, 8]), torch.tensor([8, 4, 1]), torch.tensor([False, False, True])
    out = data.crop_and_flip(x, top, left, flip)
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (4, 4), (4, 4)))  # black border of 4
    for b in range(3):
        window = padded[b, :, top[b] : top[b] + 32, left[b] : left[b] + 32]
        expected = window[:, :, ::-1] if flip[b] else window
        assert np.array_equal(out[b].numpy(), expected)
    assert torch.equal(out[1], x[1])  # centred window, no flip: the image itself


def test_augmentation_is_seeded_per_sample_and_off_in_evaluation():
    data = image_data(n=10)

    def epoch(batch_size: int, seed: int) -> dict[int, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        return {
            int(i): xi for x, _, index in data.batches(batch_size, generator=g) for xi, i in zip(x, index, strict=True)
        }

    a, b, c = epoch(4, seed=0), epoch(3, seed=0), epoch(4, seed=1)
    assert all(a[i].shape == (3, 32, 32) and a[i].dtype == torch.float32 for i in a)
    # the same seed augments each sample the same way, whatever the batch it lands in
    assert all(torch.equal(a[i], b[i]) for i in range(10))
    assert any(not torch.equal(a[i], c[i]) for i in range(10))
    plain = torch.cat([x for x, _, _ in data.batches(4, shuffle=False)])
    assert torch.equal(plain, data.normalise(data.x))  # evaluation order: no augmentation
    unaugmented = image_data(n=10, augment=False)
    g = torch.Generator().manual_seed(0)
    for x, _, index in unaugmented.batches(4, generator=g):
        assert torch.equal(x, data.normalise(data.x[index]))


# -- ResNets -------------------------------------------------------------------------------------------
def resnet_parameters(depth: int, classes: int, w: int = 16) -> int:
    """Counted by hand: 3×3 convolutions without bias, BatchNorm (γ, β), option-A shortcuts (none)."""
    n = (depth - 2) // 6
    total = 3 * w * 9 + 2 * w  # stem conv + BN
    c_in = w
    for c in (w, 2 * w, 4 * w):
        for _ in range(n):
            total += c_in * c * 9 + c * c * 9 + 2 * (2 * c)  # two convs, two BNs
            c_in = c
    return total + 4 * w * classes + classes  # linear head


@pytest.mark.parametrize("depth", [20, 32, 56, 110])
def test_resnet_parameter_counts_and_shapes(depth):
    model = build_model(f"resnet{depth}", (3, 32, 32), 100)
    assert sum(p.numel() for p in model.parameters()) == resnet_parameters(depth, 100)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    assert model.channels_last  # the trainer stores it NHWC on CUDA


def test_resnet_known_sizes_and_bad_depth():
    # He et al. (2016) quote 0.27 M, 0.46 M, 0.85 M and 1.7 M parameters for CIFAR-10
    assert [resnet_parameters(d, 10) for d in (20, 32, 56, 110)] == [269_722, 464_154, 853_018, 1_727_962]
    narrow = build_model("resnet20", (3, 32, 32), 10, width=4)
    assert sum(p.numel() for p in narrow.parameters()) == resnet_parameters(20, 10, w=4)
    from lstsd_edu.models import CifarResNet

    with pytest.raises(ConfigError, match="depth must be 6n"):
        CifarResNet((3, 32, 32), 10, depth=21)


# -- the whole path, presets, memory ------------------------------------------------------------------
def test_one_epoch_of_lstsd_on_a_cifar_format_subset(tmp_path):
    make_cifar_like(tmp_path, "cifar10", num_train=60, num_test=20)
    data = load_cifar("cifar10", tmp_path, download=False)
    config = preset("cifar10", model="resnet20", width=4, epochs=2, batch_size=16, lag=1, device="cpu")
    run = train("lstsd", config, seed=0, data=data)
    assert run.history.epoch.tolist() == [1, 2]
    stamp = run.trainer.method.buffer.stamp
    assert stamp.max(0).values.tolist() == [1] * 60  # every sample recorded in epoch 1


def test_cifar_presets_are_the_usual_recipe():
    for name in ("cifar10", "cifar100"):
        c = PRESETS[name]
        assert (c.model, c.lr, c.momentum, c.weight_decay, c.batch_size, c.epochs) == (
            "resnet32",
            0.1,
            0.9,
            5e-4,
            128,
            200,
        )


def test_memory_table_matches_a_real_buffer():
    small = {"toy": (7, 12)}
    table = memory_table(lag=3, k=4, scales=small)
    for row in table.itertuples():
        buffer = SnapshotBuffer(7, 12, 3, row.mode, storage=row.storage, k=4)
        assert row.bytes == buffer.nbytes and row.slots == buffer.slots
    big = memory_table(lag=10, k=10).set_index(["problem", "storage", "mode"]).bytes
    assert big["CIFAR-100", "dense", "sliding"] == 50_000 * 11 * (100 * 2 + 2)
    assert big["ImageNet-1k", "topk", "phase"] == 1_281_167 * 3 * (10 * 4 + 2)


def test_memory_command_prints_the_table(capsys):
    assert main(["memory", "--lag", "5", "--k", "20"]) == 0
    out = capsys.readouterr().out
    assert "ImageNet-1k" in out and "CIFAR-100" in out and "GiB" in out
    assert main(["memory", "--k", "0"]) == 2


def test_train_command_on_a_cifar_format_folder(tmp_path, capsys):
    make_cifar_like(tmp_path, "cifar10", num_train=40, num_test=20)
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--dataset",
            "cifar10",
            "--data-root",
            str(tmp_path),
            "--model",
            "resnet20",
            "--width",
            "2",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--method",
            "lstsd",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0 and (out / "history.csv").exists() and (out / "summary.csv").exists()
    assert "1 rank(s)" in capsys.readouterr().out
    assert main(["train", "--dataset", "digits", "--data-root", str(tmp_path)]) == 2
    assert main(["train", "--dataset", "cifar10", "--method", "nope"]) == 2


# -- generated sets a reader recognises ---------------------------------------------------------------
def test_digit_images_show_the_labelled_digit_from_their_own_half(tmp_path):
    """Without pixel noise, each image is a handwritten digit of its label's class, from the half of
    sklearn's digits that its split draws from (train: even positions, test: odd), placed whole."""
    from sklearn.datasets import load_digits as sk_digits

    from lstsd_edu.data.cifar import DIGIT_SIZE

    folder = make_cifar_like(tmp_path, "cifar10", num_train=20, num_test=20, seed=1, noise=0.0, kind="digits")
    arrays = read_cifar(folder, "cifar10")
    assert arrays["classes"] == [str(c) for c in range(10)]
    assert np.bincount(arrays["train_y"], minlength=10).tolist() == [2] * 10

    bunch = sk_digits()
    glyphs = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0
    glyphs = torch.nn.functional.interpolate(glyphs, size=(DIGIT_SIZE, DIGIT_SIZE), mode="bicubic")
    glyphs = glyphs.clamp(0, 1).flatten(1)  # [1797, 576]
    glyphs = glyphs / glyphs.norm(dim=1, keepdim=True)
    room = 32 - DIGIT_SIZE + 1
    for part, parity in (("train", 0), ("test", 1)):
        for image, label in zip(arrays[f"{part}_x"], arrays[f"{part}_y"], strict=True):
            x = torch.as_tensor(image, dtype=torch.float32)  # [3, 32, 32]
            assert (x.amax(dim=(1, 2)) >= 150).all() and (x.amin(dim=(1, 2)) <= 90).all(), "dark ink, light paper"
            ink = (x.amax(dim=(1, 2), keepdim=True) - x).sum(0)  # [32, 32], 0 on the paper
            windows = ink.unfold(0, DIGIT_SIZE, 1).unfold(1, DIGIT_SIZE, 1).reshape(room * room, -1)  # [81, 576]
            windows = windows / windows.norm(dim=1, keepdim=True).clamp_min(1e-9)
            similarity = windows @ glyphs.T  # [81, 1797] cosine of every placement with every digit
            best = int(similarity.max(0).values.argmax())
            assert similarity.max() > 0.999, "the ink is one whole digit"
            assert bunch.target[best] == label and best % 2 == parity


def test_digit_images_are_reproducible_and_checked(tmp_path):
    a = read_cifar(make_cifar_like(tmp_path / "a", num_train=30, num_test=10, seed=2, kind="digits"), "cifar10")
    b = read_cifar(make_cifar_like(tmp_path / "b", num_train=30, num_test=10, seed=2, kind="digits"), "cifar10")
    assert all(np.array_equal(a[k], b[k]) for k in ("train_x", "train_y", "test_x", "test_y"))
    with pytest.raises(ConfigError, match="name must be 'cifar10'"):
        make_cifar_like(tmp_path, "cifar100", kind="digits")
    with pytest.raises(ConfigError, match="kind"):
        make_cifar_like(tmp_path, "cifar10", kind="faces")
