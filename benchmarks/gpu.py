"""CIFAR-100 ResNet-32 on one GPU: seconds per epoch for CE and LSTSD, their ratio, images per
second and peak GPU memory. The data live on the GPU (augmented there, per batch), the model is
channels_last and runs under bf16 autocast — the trainer's CUDA path.

    .venv/bin/python benchmarks/gpu.py                         # CIFAR-100 from data/ if there, else synthetic
    .venv/bin/python benchmarks/gpu.py --data real --download --epochs 6 --repeats 3

Each run trains `--epochs` epochs (default 5); the first `--warmup` (default 1: allocations,
cuDNN's algorithm search) are not counted, the median of the rest is the run's seconds per epoch
(training only, evaluation excluded). Methods alternate order across repeats, and the ratio
LSTSD ÷ CE is taken within each repeat, then its median. `--data synthetic` uses random
images of the dataset's shape (50 000 + 10 000): the timing does not depend on the pixels, and
nothing needs downloading. Every Config field is a flag, as `lstsd-edu train` takes them
(defaults here: `--dataset cifar100 --model resnet32 --device cuda`; `--dataset cifar10` works
too); label noise and the validation split are applied to the data as `load_dataset` applies
them. Refuses to run without CUDA. Prints a table, writes CSV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lstsd_edu.buffer import human_bytes
from lstsd_edu.cli import add_settings, config_from
from lstsd_edu.data import (
    CIFAR_CLASSES,
    CIFAR_FOLDERS,
    DATA_DIR,
    cifar_dataset,
    load_cifar,
    with_label_noise,
    with_validation_split,
)
from lstsd_edu.errors import check_choice, check_range
from lstsd_edu.experiments import train
from lstsd_edu.runs import command, output_file, write_csv

TARGET_RATIO, TARGET_SECONDS = 1.02, 5.0  # the targets: LSTSD ≤ 1.02 × CE, an epoch ≤ 5 s on an H100


def synthetic_cifar(name: str, seed: int = 0):
    """Random images and labels in the shape of CIFAR-10 or CIFAR-100."""
    rng = np.random.default_rng(seed)
    classes = CIFAR_CLASSES[name]
    draw = lambda n: (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, classes, n))  # noqa: E731
    return cifar_dataset(name, *draw(50_000), *draw(10_000))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--data",
        choices=("auto", "real", "synthetic"),
        default="auto",
        help="the real set (from --data-root, or --download), synthetic images, or auto: real if there",
    )
    p.add_argument("--data-root", default=str(DATA_DIR))
    p.add_argument("--download", action="store_true", help="let torchvision download the CIFAR set")
    p.add_argument("--methods", default="ce,lstsd")
    p.add_argument("--warmup", type=int, default=1, help="leading epochs of each run not counted (default: 1)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/gpu.csv")
    add_settings(p)
    p.set_defaults(dataset="cifar100", model="resnet32", device="cuda", epochs=5)
    return p


def main() -> None:
    args = build_parser().parse_args()
    config = config_from(args)  # bad settings fail here, on any machine
    check_choice("dataset", config.dataset, tuple(CIFAR_FOLDERS))
    check_choice("device", config.device, ("cuda", "auto"))
    check_range("warmup", args.warmup, 0, config.epochs - 1, integer=True)
    output_file(args.out)  # before any training
    if not torch.cuda.is_available():
        print(
            "benchmarks/gpu.py measures the CUDA path and needs a CUDA GPU; "
            "torch.cuda.is_available() is False here, so nothing was measured.",
            file=sys.stderr,
        )
        sys.exit(2)

    name = config.dataset
    real = (Path(args.data_root) / CIFAR_FOLDERS[name]).exists() or args.download
    source = name if args.data == "real" or (args.data == "auto" and real) else "synthetic"
    data = load_cifar(name, args.data_root, download=args.download) if source == name else synthetic_cifar(name)
    data = with_label_noise(data, config.noise, config.noise_kind, 0)  # as load_dataset: noise seed 0,
    data = with_validation_split(data, config.val_fraction, 0)  # split seed 0
    data = data.to("cuda")  # once: every run shares the GPU-resident set
    methods = args.methods.split(",")
    n = len(data.train)
    rows = []
    for repeat in range(args.repeats):
        for method in methods if repeat % 2 == 0 else methods[::-1]:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            run = train(method, config, seed=repeat, data=data)
            seconds = run.history.seconds.iloc[args.warmup :].median()
            rows.append(
                dict(
                    repeat=repeat,
                    method=method,
                    sec_per_epoch=seconds,
                    images_per_s=n / seconds,
                    peak_gpu_bytes=torch.cuda.max_memory_allocated(),
                    buffer_bytes=run.trainer.method.state_bytes,
                    final_test_acc=run.history.test_acc.iloc[-1],
                )
            )
            del run
    df = pd.DataFrame(rows)
    per_repeat = df.pivot(index="repeat", columns="method", values="sec_per_epoch")
    ratio = per_repeat.div(per_repeat[methods[0]], axis=0)
    g = df.groupby("method")
    table = pd.DataFrame(
        {
            "sec_per_epoch": g.sec_per_epoch.median(),
            "images_per_s": g.images_per_s.median(),
            f"ratio_to_{methods[0]}": ratio.median(),
            "peak_gpu": g.peak_gpu_bytes.max().map(human_bytes),
            "buffer": g.buffer_bytes.first().map(human_bytes),
        }
    ).loc[methods]

    device = torch.cuda.get_device_name()
    print(
        f"{device} · torch {torch.__version__} · {source} {name} ({n} train images, on the GPU) · "
        f"{config.model} · batch {config.batch_size} · bf16 autocast · channels_last · "
        f"{config.epochs - args.warmup} measured epochs after {args.warmup} warm-up × {args.repeats} repeats"
    )
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    if "ce" in methods and "lstsd" in methods:
        r, s = ratio["lstsd"].median(), per_repeat.median().max()
        print(
            f"\nLSTSD / CE seconds per epoch: {r:.3f} (target ≤ {TARGET_RATIO}: "
            f"{'met' if r <= TARGET_RATIO else 'NOT met'}); slowest method's epoch: {s:.2f} s "
            f"(target ≤ {TARGET_SECONDS:g} s on an H100: {'met' if s <= TARGET_SECONDS else 'NOT met'})"
        )
    write_csv(df.assign(device=device, data=source, model=config.model, batch_size=config.batch_size), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(command("gpu.py", main))
