"""CIFAR-10 / CIFAR-100: 32×32 colour images, read from their own format, augmented on the device.

CIFAR is read from its own on-disk format: Python pickles of dicts whose `data` is a uint8
array [n, 3072] (1024 red, 1024 green, 1024 blue values, each a 32×32 image in row order).

  CIFAR-10   cifar-10-batches-py/  data_batch_1 … data_batch_5, test_batch, batches.meta
             labels under `labels`, class names under `label_names`
  CIFAR-100  cifar-100-python/     train, test, meta
             labels under `fine_labels`, class names under `fine_label_names`

torchvision downloads these folders (on a machine with a connection) into `data/`; the files
are then read here without torchvision. They are pickles: load only files you trust.
`write_cifar` writes the same format, and `make_cifar_like` a small learnable set in it (smooth
colour patterns, or coloured handwritten digits that a reader recognises), so tests, chapters and
benchmarks run the real reading code offline.

The whole set stays as uint8 on the training device (CIFAR's 50 000 training images are 150 MB),
and each batch is augmented there — the standard recipe of He et al. (2016):

  pad 4 pixels of black on each side → crop a random 32×32 window → flip left-right with p = ½
  → scale to [0, 1] and normalise each channel: (x − mean_c) / std_c

The crop offsets and flips of an epoch are drawn for *every sample index* at once, on the
CPU, from the trainer's shuffling generator. So a sample is augmented the same way whichever
batch, device or rank (`distributed.py`) it lands in, and the same seed gives the same epoch.
No DataLoader workers: with the data on a GPU, a batch costs a handful of small kernels.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, check_choice
from .cache import data_dir
from .tensors import Dataset, TensorData

CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
CIFAR_LAYOUT = {  # name -> (train files, test files, meta file, label key, class-name key)
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta", "labels", "label_names"),
    "cifar100": (["train"], ["test"], "meta", "fine_labels", "fine_label_names"),
}
CIFAR_CLASSES = {"cifar10": 10, "cifar100": 100}


@dataclass
class ImageData(TensorData):
    """uint8 images [N, 3, H, W] that are normalised — and, if `augment`, cropped and flipped —
    batch by batch on their own device. Evaluation (`shuffle=False`) never augments.
    `to` and `subset` (the validation split) keep these fields."""

    mean: torch.Tensor = None  # [3] per-channel mean of the training images, in [0, 1]
    std: torch.Tensor = None  # [3] per-channel standard deviation
    augment: bool = False  # random crop (zero padding `padding`) and horizontal flip in training
    padding: int = 4

    def batches(
        self, batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """`TensorData.batches`, with x augmented (training) and normalised, as float32."""
        crops = self.draw_crops(generator) if (self.augment and shuffle) else None
        for x, y, index in super().batches(batch_size, shuffle, generator):
            if crops is not None:
                x = self.crop_and_flip(x, *(c[index] for c in crops))
            yield self.normalise(x), y, index

    def draw_crops(self, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One epoch's augmentation for every sample index: (top [N], left [N], flip [N] bool)."""
        n, span = len(self), 2 * self.padding + 1
        top = torch.randint(span, (n,), generator=generator)
        left = torch.randint(span, (n,), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5
        return tuple(t.to(self.x.device, non_blocking=True) for t in (top, left, flip))

    def crop_and_flip(self, x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        """Pad x [B, 3, H, W] with zeros, then take for sample b the window at (top_b, left_b),
        mirrored left-right where flip_b: one gather for the whole batch."""
        b, c, h, w = x.shape
        p = self.padding
        padded = torch.nn.functional.pad(x, (p, p, p, p))  # [B, 3, H + 2p, W + 2p], black border
        i, j = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
        rows = top[:, None] + i  # [B, H]   source row of output row i
        # source column of output column j: left + j, or left + (W − 1 − j) when flipped
        cols = left[:, None] + torch.where(flip[:, None], w - 1 - j, j)  # [B, W]
        batch = torch.arange(b, device=x.device)[:, None, None, None]
        channel = torch.arange(c, device=x.device)[None, :, None, None]
        return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]  # [B, 3, H, W]

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 3, H, W] -> float32 (x / 255 − mean_c) / std_c."""
        return (x.float() / 255.0 - self.mean[:, None, None]) / self.std[:, None, None]


def _unpickle(path: Path) -> dict:
    """One CIFAR file: a pickled dict whose keys are bytes (it was written by Python 2)."""
    with open(path, "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


def read_cifar(folder: Path | str, name: str) -> dict:
    """Read a CIFAR folder in its own format. Returns numpy arrays `train_x` [N, 3, 32, 32] uint8,
    `train_y` [N] int64, `test_x`, `test_y`, and `classes` (the class names, in label order)."""
    check_choice("dataset", name, tuple(CIFAR_LAYOUT))
    folder = Path(folder)
    train_files, test_files, meta_file, label_key, names_key = CIFAR_LAYOUT[name]
    missing = [f for f in train_files + test_files + [meta_file] if not (folder / f).exists()]
    if missing:
        raise ConfigError(
            f"{name} folder {folder} must hold {', '.join(train_files + test_files)} and "
            f"{meta_file}; missing {', '.join(missing)}"
        )

    def split(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = [_unpickle(folder / f) for f in files]
        x = np.concatenate([np.asarray(p["data"], dtype=np.uint8) for p in parts])  # [N, 3072]
        y = np.concatenate([np.asarray(p[label_key], dtype=np.int64) for p in parts])  # [N]
        return x.reshape(-1, 3, 32, 32), y  # 3072 = 3 channels × 32 rows × 32 columns

    train_x, train_y = split(train_files)
    test_x, test_y = split(test_files)
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in _unpickle(folder / meta_file)[names_key]]
    return dict(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y, classes=classes)


def load_cifar(name: str, root: Path | str | None = None, download: bool = True, augment: bool = True) -> Dataset:
    """CIFAR-10 or CIFAR-100 from `root` (default `data/`), downloaded by torchvision if absent.

    Training images are augmented (random crop with padding 4, horizontal flip) unless
    `augment=False`; both splits are normalised with the training set's per-channel mean/std.
    """
    check_choice("dataset", name, tuple(CIFAR_LAYOUT))
    root = data_dir(root)
    folder = root / CIFAR_FOLDERS[name]
    if not folder.exists() and download:
        import torchvision

        try:  # one archive holds both splits
            getattr(torchvision.datasets, name.upper())(str(root), train=True, download=True)
        except OSError as error:  # no connection, no disk space, …
            raise ConfigError(
                f"{name} is not in {folder} and could not be downloaded there "
                f"({error}); copy {CIFAR_FOLDERS[name]}/ into {root}"
            ) from error
    arrays = read_cifar(folder, name)
    if len(arrays["classes"]) != CIFAR_CLASSES[name]:
        raise ConfigError(
            f"{name} must have {CIFAR_CLASSES[name]} classes in its meta file; got {len(arrays['classes'])} in {folder}"
        )
    return cifar_dataset(name, arrays["train_x"], arrays["train_y"], arrays["test_x"], arrays["test_y"], augment)


def cifar_dataset(
    name: str, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, augment: bool = True
) -> Dataset:
    """A CIFAR-shaped `Dataset` from uint8 images [N, 3, H, W] and labels, normalised with the
    training images' per-channel mean and standard deviation."""
    pixels = torch.as_tensor(train_x).float().div_(255.0)  # [N, 3, H, W] in [0, 1]
    mean, std = pixels.mean(dim=(0, 2, 3)), pixels.std(dim=(0, 2, 3))  # [3], [3]

    def images(x: np.ndarray, y: np.ndarray, augment: bool) -> ImageData:
        return ImageData.clean(torch.as_tensor(x), y, mean=mean, std=std, augment=augment)

    return Dataset(
        name,
        images(train_x, train_y, augment),
        images(test_x, test_y, False),
        num_classes=CIFAR_CLASSES[name],
        input_shape=tuple(int(d) for d in train_x.shape[1:]),
    )


def load_cifar10(root: Path | str | None = None, download: bool = True) -> Dataset:
    return load_cifar("cifar10", root, download)


def load_cifar100(root: Path | str | None = None, download: bool = True) -> Dataset:
    return load_cifar("cifar100", root, download)


def write_cifar(
    root: Path | str,
    name: str,
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    classes: list[str] | None = None,
) -> Path:
    """Write images (uint8 [N, 3, 32, 32]) and labels in CIFAR's own format under `root`;
    returns the folder. CIFAR-10's training set is split over five batch files, as the original."""
    check_choice("dataset", name, tuple(CIFAR_LAYOUT))
    train_files, test_files, meta_file, label_key, names_key = CIFAR_LAYOUT[name]
    folder = Path(root) / CIFAR_FOLDERS[name]
    folder.mkdir(parents=True, exist_ok=True)
    num_classes = CIFAR_CLASSES[name]
    classes = classes or [f"class_{c}" for c in range(num_classes)]

    def dump(file: str, record: dict) -> None:
        with open(folder / file, "wb") as f:
            pickle.dump({k.encode(): v for k, v in record.items()}, f, protocol=2)

    for files, x, y in ((train_files, train_x, train_y), (test_files, test_x, test_y)):
        for file, xs, ys in zip(files, np.array_split(x, len(files)), np.array_split(y, len(files)), strict=True):
            record = {
                "batch_label": file.encode(),
                "data": xs.reshape(len(xs), -1).astype(np.uint8),
                label_key: [int(v) for v in ys],
                "filenames": [f"{i}.png".encode() for i in range(len(xs))],
            }
            if name == "cifar100":
                record["coarse_labels"] = [int(v) // 5 for v in ys]  # 20 superclasses of 5
            dump(file, record)
    meta = {names_key: [c.encode() for c in classes]}
    if name == "cifar100":
        meta["coarse_label_names"] = [f"superclass_{c}".encode() for c in range(num_classes // 5)]
    dump(meta_file, meta)
    return folder


CIFAR_LIKE_KINDS = ("patterns", "digits")


def make_cifar_like(
    root: Path | str,
    name: str = "cifar10",
    num_train: int = 1000,
    num_test: int = 500,
    seed: int = 0,
    noise: float = 60.0,
    kind: str = "patterns",
) -> Path:
    """Generate a small, learnable set of 32×32 colour images and write it in CIFAR's format.

    `kind` says what the images show:

      patterns  each class c has a smooth random colour pattern (a 4×4×3 grid of colours,
                upsampled); an image of class c is that pattern shifted by up to 4 pixels.
      digits    (10 classes: cifar10 only) class c is the handwritten digit c: one of sklearn's
                bundled 8×8 digits of that class, upscaled to 24×24, in dark ink of a random
                colour on light paper of another, at a random place on the 32×32 canvas. A
                reader recognises them, and a digit is not symmetric, so crops and flips show.
                Training and test images are drawn from disjoint halves of sklearn's digits
                (other writers' hands in the test set).

    Both add Gaussian pixel noise of standard deviation `noise` (on the 0–255 scale). For tests,
    notebooks and benchmarks that must run offline; it is not CIFAR, and its accuracies say
    nothing about CIFAR's.
    """
    check_choice("dataset", name, tuple(CIFAR_LAYOUT))
    check_choice("kind", kind, CIFAR_LIKE_KINDS)
    num_classes = CIFAR_CLASSES[name]
    if kind == "digits" and num_classes != 10:
        raise ConfigError(f"kind 'digits' draws the 10 digits, so name must be 'cifar10'; got {name!r}")
    g = torch.Generator().manual_seed(seed)
    draw_images = _digit_images(g) if kind == "digits" else _pattern_images(num_classes, g)

    def draw(n: int, part: str) -> tuple[np.ndarray, np.ndarray]:
        y = torch.arange(n) % num_classes  # balanced classes
        y = y[torch.randperm(n, generator=g)]
        x = draw_images(y, part)  # [n, 3, 32, 32] floats on the 0–255 scale
        x = x + noise * torch.randn(x.shape, generator=g)
        return x.round().clamp(0, 255).to(torch.uint8).numpy(), y.numpy()

    train_x, train_y = draw(num_train, "train")
    test_x, test_y = draw(num_test, "test")
    classes = [str(c) for c in range(10)] if kind == "digits" else None
    return write_cifar(root, name, train_x, train_y, test_x, test_y, classes)


def _pattern_images(num_classes: int, g: torch.Generator):
    """`draw(y, part)` -> [n, 3, 32, 32]: class y's smooth colour pattern, shifted by up to 4 pixels."""
    coarse = torch.rand(num_classes, 3, 4, 4, generator=g) * 255.0  # [C, 3, 4, 4]
    patterns = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)

    def draw(y: torch.Tensor, part: str) -> torch.Tensor:
        x = patterns[y]  # [n, 3, 32, 32]
        shifts = torch.randint(-4, 5, (len(y), 2), generator=g)
        return torch.stack([xi.roll(tuple(s.tolist()), dims=(1, 2)) for xi, s in zip(x, shifts, strict=True)])

    return draw


DIGIT_SIZE = 24  # pixels of the upscaled 8×8 digit, on the 32×32 canvas


def _digit_images(g: torch.Generator):
    """`draw(y, part)` -> [n, 3, 32, 32]: for each label a handwritten digit of that class, drawn
    from `part`'s half of sklearn's digits (train: even positions, test: odd), in dark ink on
    light paper, both of random colours, at a random offset."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    glyphs = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0  # [1797, 1, 8, 8] in [0, 1]
    glyphs = torch.nn.functional.interpolate(glyphs, size=(DIGIT_SIZE, DIGIT_SIZE), mode="bicubic", align_corners=False)
    glyphs = glyphs.clamp(0.0, 1.0)  # [1797, 1, 24, 24] ink coverage
    labels = torch.as_tensor(bunch.target)
    halves = {"train": torch.arange(0, len(labels), 2), "test": torch.arange(1, len(labels), 2)}

    def draw(y: torch.Tensor, part: str) -> torch.Tensor:
        n, room = len(y), 32 - DIGIT_SIZE
        pool = halves[part]
        chosen = torch.empty(n, dtype=torch.long)
        for c in range(10):  # a random digit of class c from this part's half, for each sample of class c
            of_class = pool[labels[pool] == c]
            at = (y == c).nonzero().squeeze(1)
            chosen[at] = of_class[torch.randint(len(of_class), (len(at),), generator=g)]
        paper = 150.0 + 105.0 * torch.rand(n, 3, 1, 1, generator=g)  # light: 150–255 per channel
        ink = 90.0 * torch.rand(n, 3, 1, 1, generator=g)  # dark: 0–90 per channel
        canvas = torch.zeros(n, 1, 32, 32)
        tops = torch.randint(room + 1, (n,), generator=g)
        lefts = torch.randint(room + 1, (n,), generator=g)
        for i, (top, left) in enumerate(zip(tops.tolist(), lefts.tolist(), strict=True)):
            canvas[i, :, top : top + DIGIT_SIZE, left : left + DIGIT_SIZE] = glyphs[chosen[i]]
        return paper + (ink - paper) * canvas  # [n, 3, 32, 32]: ink where the digit is

    return draw
