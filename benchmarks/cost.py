"""What does each method cost over plain CE? Seconds per training epoch, measured epoch by epoch.

    .venv/bin/python benchmarks/cost.py                                  # ce, short, long, lstsd
    .venv/bin/python benchmarks/cost.py --methods all --repeats 3        # the peers too

A 5% difference is smaller than the drift of a shared machine over a minute, so the methods are
not timed one training run after another. Instead, per repeat, every method gets its own trainer
(same data, same seed) and they take turns one epoch at a time, in an order that rotates each
epoch: whatever the machine does during a round, every method sees it. For each round we take
each method's epoch time ÷ CE's epoch time in that round; a repeat's ratio is the median over its
rounds (the first round, with one-off allocations, is left out), and the table reports the median
over repeats, a 95% bootstrap interval of that median, and the smallest and largest repeat.
Training only: evaluation is not timed.

`born_again` trains two generations; here its generation-1 teacher is an untrained copy of the
model (a forward pass costs the same, trained or not) and its epoch is counted as its own epoch
plus CE's epoch in the same round, the price of having trained generation 1.

Writes a CSV with one row per repeat × round × method; `--out` sets its path.

`--loss-only` times something narrower: each method's loss and its backward alone, on random
logits of one batch, 1000 steps in a row (best of 7) — the fixed per-step price of a method,
without the model. In a real epoch the model's own work runs between two such steps and evicts
their code and data from the caches, so they cost more there than here.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lstsd_edu.cli import add_settings, config_from
from lstsd_edu.experiments import Run, load_data, make_trainer
from lstsd_edu.methods import METHODS
from lstsd_edu.runs import command, output_file, write_csv


def fresh_trainer(method: str, config, seed: int, data):
    """A new trainer for `method`, and whether it trains another run first (`Method.prepare`, e.g.
    Born-Again's first generation). Such a run is not trained here: it gets an untrained model,
    and `measure` charges each of its epochs as the CE epoch of the same round."""
    pretrained = []

    def untrained(name: str, s: int) -> Run:
        pretrained.append(name)
        return Run(name, s, config, make_trainer(name, config, seed=s, data=data))

    return make_trainer(method, config, seed=seed, data=data, pretrain=untrained), bool(pretrained)


def measure(methods: list[str], config, data, repeats: int, epochs: int) -> pd.DataFrame:
    """Epoch seconds, one row per repeat × round × method (see the module docstring). `config` is
    one Config for every method or one per method (e.g. each method's tuned preset)."""
    methods = ["ce"] + [m for m in methods if m != "ce"]  # CE is the yardstick of every round
    configs = {m: config[m] if isinstance(config, Mapping) else config for m in methods}
    rows = []
    for repeat in range(repeats):
        trainers, pretrains = {}, {}
        for method in methods:
            trainers[method], pretrains[method] = fresh_trainer(method, configs[method], repeat, data)
        for round_ in range(epochs):
            shift = round_ % len(methods)
            seconds = {m: trainers[m].train_epoch()["seconds"] for m in methods[shift:] + methods[:shift]}
            for m in methods:
                if pretrains[m]:
                    seconds[m] += seconds["ce"]  # the epoch of the run it trained first
            rows += [
                dict(repeat=repeat, round=round_, method=m, seconds=s, ratio=s / seconds["ce"])
                for m, s in seconds.items()
            ]
    return pd.DataFrame(rows)


def loss_only(methods: list[str], config, data, steps: int = 1000, repeats: int = 7) -> pd.Series:
    """Microseconds per step of `method.loss` + backward on random logits (see the module docstring)."""
    out = {}
    for method in methods:
        trainer, _ = fresh_trainer(method, config, 0, data)
        # epoch 1: in epoch 0 nobody teaches yet and LSTSD's loss is CE's own. Whether samples have
        # records yet does not change the work from epoch 1 on.
        trainer.method.start_epoch(1)  # LSTSD's table
        x, y, index = next(data.train.batches(config.batch_size, generator=torch.Generator().manual_seed(0)))
        logits = torch.randn(len(y), data.num_classes, requires_grad=True)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps):
                trainer.method.loss(logits, (x, y, index), 1).backward()
            best = min(best, (time.perf_counter() - start) / steps)
            getattr(trainer.method, "taken", []).clear()  # LSTSD's kept records: not the point here
        out[method] = best * 1e6
    return pd.Series(out, name="us_per_step")


def summarise(df: pd.DataFrame, methods: list[str], resamples: int = 10_000) -> pd.DataFrame:
    """Per method: median epoch seconds, and the ratio to CE: median over repeats, a 95% bootstrap
    interval of that median (repeats drawn with replacement, fixed seed), smallest and largest."""
    timed = df[df["round"] > 0]
    per_repeat = timed.groupby(["method", "repeat"]).ratio.median().unstack("repeat")
    draws = np.random.default_rng(0).integers(0, per_repeat.shape[1], (resamples, per_repeat.shape[1]))
    medians = np.median(per_repeat.to_numpy()[:, draws], axis=2)  # [methods, resamples]
    out = pd.DataFrame(
        {
            "sec_per_epoch": timed.groupby("method").seconds.median(),
            "ratio_to_ce": per_repeat.median(axis=1),
            "ci95_low": np.quantile(medians, 0.025, axis=1),
            "ci95_high": np.quantile(medians, 0.975, axis=1),
            "ratio_min": per_repeat.min(axis=1),
            "ratio_max": per_repeat.max(axis=1),
        },
        index=per_repeat.index,
    )
    return out.loc[["ce"] + [m for m in methods if m != "ce"]]


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's own options, then every Config field as a flag, as `lstsd-edu train` takes
    them. `--epochs` (default 12) is the run length the schedule is built for and the number of
    timed rounds per repeat, so that LSTSD's teachers appear within the rounds as in a real run."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="--epochs (default 12) is also the number of timed rounds per repeat; --noise defaults to 0.3.",
    )
    p.add_argument("--methods", default="ce,short,long,lstsd", help=f"comma-separated, or all ({','.join(METHODS)})")
    p.add_argument("--repeats", type=int, default=8, help="fresh trainers, seeds 0 … repeats − 1 (default 8)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--loss-only", action="store_true", help="time loss + backward alone, per step")
    p.add_argument("--tuned", action="store_true", help="each method with its tuned preset (its `tuned`)")
    p.add_argument("--out", default="benchmarks/results/cost.csv")
    add_settings(p)
    p.set_defaults(noise=0.3, epochs=12)
    return p


def main() -> None:
    args = build_parser().parse_args()
    output_file(args.out)  # before any training
    torch.set_num_threads(args.threads)
    methods = list(METHODS) if args.methods == "all" else args.methods.split(",")
    config = config_from(args)  # the dataset's starting point and the flags given
    configs = {m: config_from(args, m) if args.tuned else config for m in methods}
    shown = configs[methods[0]]
    data = load_data(shown)
    if args.loss_only:
        print(
            f"loss + backward per step, batch {config.batch_size}, {data.num_classes} classes, "
            f"{torch.get_num_threads()} thread(s), microseconds (best of 7 × 1000 steps):"
        )
        print(loss_only(methods, config, data).to_string(float_format=lambda v: f"{v:.1f}"))
        return
    df = measure(methods, configs, data, args.repeats, shown.epochs)
    print(
        f"{shown.dataset} (noise {shown.noise:g}), {shown.model} (width {shown.width or 'default'}), "
        f"batch {shown.batch_size}, {'tuned presets, ' if args.tuned else ''}"
        f"{shown.epochs} rounds × {args.repeats} repeats, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.2f} at the end"
    )
    print(summarise(df, methods).to_string(float_format=lambda v: f"{v:.4f}"))
    write_csv(df, args.out)


if __name__ == "__main__":
    sys.exit(command("cost.py", main))
