"""Every method side by side — accuracy and cost — on the same data, in the same trainer.

    .venv/bin/python benchmarks/peers.py                    # the full table: 60 epochs, seeds 0,1,2
    .venv/bin/python benchmarks/peers.py --quick            # a smoke run: 4 epochs, seed 0
    .venv/bin/python benchmarks/peers.py --epochs 20 --seeds 0,1

Settings: clean MNIST-1D, 30%-noisy MNIST-1D, 40%-noisy digits (symmetric noise, the presets of
`experiments.PRESETS`). Methods: all of `methods.METHODS` (ce, ls, short, long, lstsd and the peers
snapshot, born_again, pskd, te), each with its documented defaults; nothing here is tuned.

Per setting, `experiments.compare` trains every method for every seed (the accuracies), and
`benchmarks/cost.py`'s `measure` times them: fresh trainers of all methods taking turns one epoch
at a time, so that every method sees the same machine (a few percent is less than a shared
machine drifts between two whole runs). Reported per method:

* final-epoch test accuracy (clean test labels), mean ± std (ddof 0) over seeds;
* seconds per training epoch ÷ CE's in the same round, median over rounds and then over
  `--cost-repeats` repeats (Born-Again's epoch holds both generations, see `methods.BornAgain`);
* extra forward passes per step, and the per-sample/teacher state the method keeps (bytes).

Writes `<out>_runs.csv` (one row per run), `<out>_table.csv` (one row per setting × method) and
`<out>.md` (the README table, with the command and the machine). Runs in one process with
`--threads` torch threads (default 1: the timings are then not at the mercy of thread scheduling).
Each finished run is kept in `--store` (default `runs/store`, shared with the other benchmarks:
a run is stored under a hash of everything that decides it); after an interruption the same
command trains only the runs missing there (`--fresh`: all of them again).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cost import measure, summarise

from lstsd_edu.data import load_dataset
from lstsd_edu.experiments import compare, preset, table
from lstsd_edu.methods import METHODS
from lstsd_edu.runs import RunStore, command, output_folder, write_csv, write_text
from lstsd_edu.trainer import get_device

SETTINGS = (("mnist1d", 0.0), ("mnist1d", 0.3), ("digits", 0.4))
HEADLINE = "MNIST-1D 30%"  # where LSTSD is expected to beat every peer


def setting_name(dataset: str, noise: float) -> str:
    name = {"mnist1d": "MNIST-1D", "digits": "digits"}.get(dataset, dataset)
    return f"{name} {noise:.0%}" if noise else f"{name} clean"


def run_setting(
    dataset: str,
    noise: float,
    methods: list[str],
    seeds: list[int],
    epochs: int | None,
    progress: bool,
    cost_repeats: int,
    cost_rounds: int,
    store: RunStore,
    fresh: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-run summary, per-method table) for one dataset and noise rate."""
    config = preset(dataset, noise=noise, epochs=epochs)
    summary, _ = compare(methods, config, seeds, progress=progress, store=store, fresh=fresh)
    name = setting_name(dataset, noise)
    summary.insert(0, "setting", name)
    t = table(summary)
    timing = preset(dataset, noise=noise, epochs=cost_rounds)
    data = load_dataset(timing.dataset, timing.noise, timing.noise_kind)
    t["cost_vs_ce"] = summarise(measure(methods, timing, data, cost_repeats, cost_rounds), methods).ratio_to_ce
    t["extra_forward_passes"] = summary.groupby("method", sort=False).extra_forward_passes.first()
    t.insert(0, "setting", name)
    return summary, t.reset_index()


def markdown(tables: pd.DataFrame, header: list[str]) -> str:
    """One row per method: accuracy per setting, cost ÷ CE per setting, extra passes, state."""
    settings = list(tables.setting.unique())
    methods = list(tables.method.unique())
    by = tables.set_index(["setting", "method"])
    best = {s: by.loc[s].final_acc_mean.max() for s in settings}

    def acc(s, m):
        r = by.loc[(s, m)]
        cell = f"{r.final_acc_mean:.3f} ± {r.final_acc_std:.3f}"
        return f"**{cell}**" if r.final_acc_mean == best[s] else cell

    first = settings[0]
    columns = ["method", *settings, "s/epoch ÷ CE (same order)", "extra fwd / step", f"state ({first})"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for m in methods:
        cost = " / ".join(f"{by.loc[(s, m)].cost_vs_ce:.2f}" for s in settings)
        state = by.loc[(first, m)].buffer_bytes
        cells = [
            f"`{m}`",
            *[acc(s, m) for s in settings],
            cost,
            str(int(by.loc[(first, m)].extra_forward_passes)),
            f"{state / 1024:.0f} KiB" if state else "—",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*header, "", *lines, "", *verdict(tables)]) + "\n"


def verdict(tables: pd.DataFrame) -> list[str]:
    """The two checks, computed: LSTSD's cost, and who wins on 30%-noisy MNIST-1D."""
    lines = []
    by = tables.set_index(["setting", "method"])
    if "lstsd" in tables.method.values:
        costs = ", ".join(f"{s}: {by.loc[(s, 'lstsd')].cost_vs_ce:.3f}" for s in tables.setting.unique())
        lines.append(f"- LSTSD seconds per epoch ÷ CE's — {costs} (target ≤ 1.05).")
    if HEADLINE in tables.setting.values and "lstsd" in tables.method.values:
        head = by.loc[HEADLINE]
        above = head[head.final_acc_mean > head.loc["lstsd"].final_acc_mean].index.tolist()
        lines.append(
            f"- {HEADLINE}: LSTSD {head.loc['lstsd'].final_acc_mean:.3f}; methods with a higher "
            f"mean accuracy: {', '.join(f'{m} ({head.loc[m].final_acc_mean:.3f})' for m in above) or 'none'}."
        )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, help="epochs per run (default: each preset's, 60)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated (default: 0,1,2)")
    p.add_argument("--methods", default="all", help=f"comma-separated from {','.join(METHODS)}, or all")
    p.add_argument(
        "--settings",
        default=",".join(f"{d}:{n:g}" for d, n in SETTINGS),
        help="dataset:noise pairs (default: mnist1d:0,mnist1d:0.3,digits:0.4)",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 4 epochs, seed 0, to <out>_quick*")
    p.add_argument("--cost-repeats", type=int, default=4, help="timing repeats per setting (default 4)")
    p.add_argument("--cost-rounds", type=int, default=8, help="timed epochs per repeat (default 8)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--out", default="benchmarks/results/peers", help="output path prefix")
    p.add_argument("--store", default="runs/store", help="finished runs, kept for a rerun (default: runs/store)")
    p.add_argument("--fresh", action="store_true", help="train every run again, ignoring the store")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    output_folder(Path(args.out).parent)  # before any training
    torch.set_num_threads(args.threads)
    methods = list(METHODS) if args.methods == "all" else args.methods.split(",")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    epochs = 4 if args.quick and args.epochs is None else args.epochs
    cost_repeats, cost_rounds = (1, 3) if args.quick else (args.cost_repeats, args.cost_rounds)
    out = Path(args.out + ("_quick" if args.quick else ""))

    start = time.perf_counter()
    runs, tables = [], []
    settings = [(item.split(":")[0], float(item.split(":")[1])) for item in args.settings.split(",")]
    for dataset, noise in settings:
        summary, t = run_setting(
            dataset,
            noise,
            methods,
            seeds,
            epochs,
            not args.no_progress,
            cost_repeats,
            cost_rounds,
            RunStore(args.store),
            args.fresh,
        )
        runs.append(summary)
        tables.append(t)
        print(f"\n{setting_name(dataset, noise)}  ({time.perf_counter() - start:.0f} s so far)")
        print(t.drop(columns="setting").to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    runs, tables = pd.concat(runs, ignore_index=True), pd.concat(tables, ignore_index=True)
    minutes = (time.perf_counter() - start) / 60

    command = "python benchmarks/peers.py " + " ".join(sys.argv[1:])
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device "
        f"{get_device('auto').type}"
    )
    epochs_text = epochs if epochs is not None else "preset (60)"
    header = [
        f"Command: `{command.strip()}` — {epochs_text} epochs, seeds {','.join(map(str, seeds))}, "
        f"{minutes:.1f} min in all.",
        f"Machine: {machine}.",
        "Settings: symmetric label noise on the training labels (0%, 30%, 40%). "
        "Accuracy: final-epoch test accuracy, mean ± std over seeds (best per column in bold). "
        f"Cost: seconds per training epoch ÷ CE's, all methods taking turns epoch by epoch "
        f"(`benchmarks/cost.py`), median of {cost_repeats} repeats × {cost_rounds} rounds; "
        "`born_again` counts both generations. State: per-sample records or teacher copy.",
    ]
    write_csv(runs, f"{out}_runs.csv")
    write_csv(tables, f"{out}_table.csv")
    text = markdown(tables, header)
    write_text(text, f"{out}.md")
    print("\n" + text)
    print(f"wrote {out}_runs.csv, {out}_table.csv, {out}.md")


if __name__ == "__main__":
    sys.exit(command("peers.py", main))
