"""What does a top-k buffer cost in accuracy? LSTSD with dense records vs records that keep only
the k largest log-probabilities (the rest get probability 0, the k kept are renormalised).

    .venv/bin/python benchmarks/topk.py                          # both problems, defaults below
    .venv/bin/python benchmarks/topk.py --problems mnist1d --seeds 0,1,2,3,4 --workers 2

Two problems, both with 30% symmetric label noise, where distillation has something to fix:

* `mnist1d` — MNIST-1D (10 classes) with its preset (cnn1d, 60 epochs, lag 10); k in `--mnist1d-k`.
* `cifar`   — a generated set in CIFAR-100's own format (100 classes, `data.make_cifar_like`
  with pixel noise 150: `--cifar-train` images, 1 000 test), loaded through the CIFAR code path
  with its on-device augmentation; the CIFAR preset's optimiser, `--cifar-model` (default: an
  MLP of width 256, which a 2-core CPU trains in under a second per epoch; `resnet20` on a GPU),
  `--cifar-epochs` epochs, lag 10; k in `--cifar-k`. It is not CIFAR: it asks how much of the
  teacher's tail matters on a 100-class problem.

Each (problem, storage, seed) trains once; CE is trained alongside as the reference. The table
gives final and best test accuracy (mean ± std over seeds), the method's per-sample state
(`buffer`: `Method.state_bytes`, i.e. the records plus LSTSD's per-epoch table of teacher
mixtures; the records alone are in `lstsd-edu memory`), and the accuracy difference to dense
LSTSD. Writes the runs to CSV.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lstsd_edu.data import load_cifar, load_dataset, make_cifar_like, with_label_noise
from lstsd_edu.experiments import human_bytes, preset, train

NOISE = 0.3
DATA: dict = {}  # problem -> Dataset, filled before the workers fork


def work(job: tuple) -> dict:
    torch.set_num_threads(1)
    problem, method, storage, k, seed, overrides = job
    config = preset("mnist1d" if problem == "mnist1d" else "cifar100", noise=NOISE, storage=storage, k=k, **overrides)
    run = train(method, config, seed, data=DATA[problem])
    h = run.history
    label = "ce" if method == "ce" else ("dense" if storage == "dense" else f"topk k={k}")
    return dict(
        problem=problem,
        variant=label,
        seed=seed,
        final_test_acc=h.test_acc.iloc[-1],
        best_test_acc=h.test_acc.max(),
        buffer_bytes=run.trainer.method.state_bytes,
        sec_per_epoch=h.seconds.median(),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--problems", default="mnist1d,cifar")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--mnist1d-k", default="1,3")
    p.add_argument("--cifar-k", default="5,20")
    p.add_argument("--cifar-train", type=int, default=5000)
    p.add_argument("--cifar-epochs", type=int, default=40)
    p.add_argument("--cifar-model", default="mlp")
    p.add_argument("--cifar-width", type=int, default=256)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/topk.csv")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    problems = args.problems.split(",")
    jobs = []
    with tempfile.TemporaryDirectory() as root:
        if "mnist1d" in problems:
            DATA["mnist1d"] = load_dataset("mnist1d", NOISE)
            ks = [int(k) for k in args.mnist1d_k.split(",")]
            jobs += [
                ("mnist1d", m, s, k, seed, {})
                for seed in seeds
                for m, s, k in [("ce", "dense", 5), ("lstsd", "dense", 5)] + [("lstsd", "topk", k) for k in ks]
            ]
        if "cifar" in problems:
            make_cifar_like(root, "cifar100", num_train=args.cifar_train, num_test=1000, seed=0, noise=150.0)
            DATA["cifar"] = with_label_noise(load_cifar("cifar100", root, download=False), NOISE)
            ks = [int(k) for k in args.cifar_k.split(",")]
            cifar = dict(model=args.cifar_model, width=args.cifar_width, epochs=args.cifar_epochs, lag=10)
            jobs += [
                ("cifar", m, s, k, seed, cifar)
                for seed in seeds
                for m, s, k in [("ce", "dense", 5), ("lstsd", "dense", 5)] + [("lstsd", "topk", k) for k in ks]
            ]
        with mp.get_context("fork").Pool(args.workers) as pool:
            rows = []
            for i, row in enumerate(pool.imap(work, jobs)):
                rows.append(row)
                print(
                    f"[{i + 1}/{len(jobs)}] {row['problem']} {row['variant']} seed {row['seed']}: "
                    f"final {row['final_test_acc']:.3f}",
                    flush=True,
                )
    df = pd.DataFrame(rows)
    g = df.groupby(["problem", "variant"], sort=False)
    table = pd.DataFrame(
        {
            "final_acc": g.final_test_acc.mean(),
            "final_std": g.final_test_acc.std(ddof=0),
            "best_acc": g.best_test_acc.mean(),
            "buffer": g.buffer_bytes.first().map(human_bytes),
            "sec_per_epoch": g.sec_per_epoch.median(),
        }
    )
    dense = table.xs("dense", level="variant").final_acc
    table["vs_dense"] = table.final_acc - table.index.get_level_values("problem").map(dense).to_numpy()
    print(f"\nnoise {NOISE:g} symmetric · seeds {args.seeds} · torch {torch.__version__} · CPU")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
