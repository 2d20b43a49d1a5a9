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
gives test accuracy after the last epoch and at the epoch chosen on the noisy validation split (10% of
the training set, noisy like it; mean ± std over seeds), the method's per-sample state
(`buffer`: `Method.state_bytes`, i.e. the records plus LSTSD's per-epoch table of teacher
mixtures; the records alone are in `lstsd-edu memory`), and the accuracy difference to dense
LSTSD. Writes the runs to CSV. Runs go through `runs.execute` (`--workers` at a time), each kept
in `--store` as it finishes (default `runs/store`, shared with the other benchmarks), so the
same command after an interruption trains only what is missing (`--fresh`: everything again).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lstsd_edu.buffer import human_bytes
from lstsd_edu.data import load_cifar, load_dataset, make_cifar_like, with_label_noise, with_validation_split
from lstsd_edu.experiments import preset
from lstsd_edu.runs import command, execute, output_file, write_csv

NOISE = 0.3


def variants(ks: list[int]) -> list[tuple[str, str, int]]:
    """(method, storage, k) per variant: CE, dense LSTSD, then LSTSD with each top-k."""
    return [("ce", "dense", 5), ("lstsd", "dense", 5)] + [("lstsd", "topk", k) for k in ks]


def label(method: str, storage: str, k: int) -> str:
    return "ce" if method == "ce" else ("dense" if storage == "dense" else f"topk k={k}")


def run_problem(problem: str, data, ks: list[int], seeds: list[int], overrides: dict, args) -> list[dict]:
    """Every variant × seed on one problem, through `runs.execute` (stored, resumable)."""
    base = "mnist1d" if problem == "mnist1d" else "cifar100"
    jobs = [(seed, *v) for seed in seeds for v in variants(ks)]
    tasks = [(m, preset(base, noise=NOISE, storage=storage, k=k, **overrides), seed) for seed, m, storage, k in jobs]
    outcomes = execute(tasks, data, store=args.store, jobs=args.workers, fresh=args.fresh, desc=problem)
    return [
        dict(
            problem=problem,
            variant=label(m, storage, k),
            seed=seed,
            final_test_acc=summary["final_test_acc"],
            selected_test_acc=summary["selected_test_acc"],
            buffer_bytes=summary["buffer_bytes"],
            sec_per_epoch=summary["seconds_per_epoch"],
        )
        for (seed, m, storage, k), (summary, _) in zip(jobs, outcomes)
    ]


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
    p.add_argument("--store", default="runs/store", help="finished runs, kept for a rerun (default: runs/store)")
    p.add_argument("--fresh", action="store_true", help="train every run again, ignoring the store")
    p.add_argument("--out", default="benchmarks/results/topk.csv")
    args = p.parse_args()
    output_file(args.out)  # before any training
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    problems = args.problems.split(",")
    rows = []
    if "mnist1d" in problems:
        data = load_dataset("mnist1d", NOISE, val_fraction=0.1)
        rows += run_problem("mnist1d", data, [int(k) for k in args.mnist1d_k.split(",")], seeds, {}, args)
    if "cifar" in problems:
        with tempfile.TemporaryDirectory() as root:
            make_cifar_like(root, "cifar100", num_train=args.cifar_train, num_test=1000, seed=0, noise=150.0)
            data = with_validation_split(with_label_noise(load_cifar("cifar100", root, download=False), NOISE))
            cifar = dict(model=args.cifar_model, width=args.cifar_width, epochs=args.cifar_epochs, lag=10)
            rows += run_problem("cifar", data, [int(k) for k in args.cifar_k.split(",")], seeds, cifar, args)
    df = pd.DataFrame(rows)
    g = df.groupby(["problem", "variant"], sort=False)
    table = pd.DataFrame(
        {
            "final_acc": g.final_test_acc.mean(),
            "final_std": g.final_test_acc.std(ddof=0),
            "selected_acc": g.selected_test_acc.mean(),
            "selected_std": g.selected_test_acc.std(ddof=0),
            "buffer": g.buffer_bytes.first().map(human_bytes),
            "sec_per_epoch": g.sec_per_epoch.median(),
        }
    )
    dense = table.xs("dense", level="variant").final_acc
    table["vs_dense"] = table.final_acc - table.index.get_level_values("problem").map(dense).to_numpy()
    print(f"\nnoise {NOISE:g} symmetric · seeds {args.seeds} · torch {torch.__version__} · CPU")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    write_csv(df, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(command("topk.py", main))
