"""Every method side by side — accuracy and cost — each with its own tuned settings.

    .venv/bin/python benchmarks/peers.py                 # the table: every tuned setting, cost timed
    .venv/bin/python benchmarks/peers.py --quick         # a smoke run of the timing: 3 rounds, 1 repeat

Accuracy is not trained again here: it is read from `lstsd-edu tune`'s fresh-seed runs
(`benchmarks/results/tuning_<dataset>/fresh.csv`), where every method got the same budget of trials
on the validation split and its chosen setting was trained with five seeds never used in the
search. Reported per setting: test accuracy at the epoch chosen on validation, mean ± std over those
seeds, LSTSD in bold and every other method marked against it, paired by seed with a 95%
t-interval: ahead (▲), behind (▼) or a tie (≈, the interval holds 0).

Cost is timed here: fresh trainers of all methods, each with its tuned preset, taking turns one
epoch at a time (`benchmarks/cost.py`'s `measure`), so that every method sees the same machine;
seconds per training epoch ÷ CE's in the same round, median over rounds and then over repeats
(Born-Again's epoch holds both generations). Also: extra forward passes per step, and the state the
method keeps (per-sample records or a teacher copy).

Writes `<out>_table.csv` (one row per setting × method) and `<out>.md` (the README table).
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

from lstsd_edu.experiments import load_data, preset
from lstsd_edu.methods import METHODS
from lstsd_edu.runs import command, output_folder, write_csv, write_text
from lstsd_edu.tuning import interval

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = {  # name -> (dataset, the tuning results folder)
    "MNIST-1D 30%": ("mnist1d", RESULTS / "tuning_mnist1d"),
    "digits 40%": ("digits", RESULTS / "tuning_digits"),
    "textsynth 30%": ("textsynth", RESULTS / "tuning_textsynth"),
}


def accuracy(fresh: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean and std of the validation-chosen test accuracy over the fresh seeds, and how
    it compares with LSTSD's, paired by seed: `ahead` or `behind` LSTSD when the 95% t-interval of
    the difference leaves 0 out, `tie` when it holds 0."""
    by_seed = fresh.pivot_table(index="seed", columns="method", values="selected_test_acc")
    mean, std = by_seed.mean(), by_seed.std(ddof=1)
    versus = {}
    for m in by_seed:
        low, high = interval((by_seed[m] - by_seed["lstsd"]).dropna().to_numpy())
        versus[m] = "" if m == "lstsd" else ("ahead" if low > 0 else "behind" if high < 0 else "tie")
    state = fresh.groupby("method").buffer_bytes.first()
    passes = fresh.groupby("method").extra_forward_passes.first()
    return pd.DataFrame(
        dict(mean=mean, std=std, versus_lstsd=pd.Series(versus), state=state, extra_forward_passes=passes)
    )


MARKS = {"ahead": "▲ ", "behind": "▼ ", "tie": "≈ ", "": ""}  # against LSTSD, paired by seed


def markdown(table: pd.DataFrame, header: list[str]) -> str:
    settings = list(dict.fromkeys(table.setting))
    methods = [m for m in METHODS if m in set(table.method)]
    by = table.set_index(["setting", "method"])
    columns = ["method", *settings, "s/epoch ÷ CE (same order)", "extra fwd / step", f"state ({settings[0]})"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for m in methods:
        cells = [f"`{m}`"]
        for s in settings:
            r = by.loc[(s, m)]
            cell = f"{r['mean']:.3f} ± {r['std']:.3f}"
            cells.append(f"**{cell}**" if m == "lstsd" else MARKS[r.versus_lstsd] + cell)
        cells.append(" / ".join(f"{by.loc[(s, m)].cost_vs_ce:.2f}" for s in settings))
        first = by.loc[(settings[0], m)]
        cells += [str(int(first.extra_forward_passes)), f"{first.state / 1024:.0f} KiB" if first.state else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*header, "", *lines]) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run of the timing: 1 repeat × 3 rounds")
    p.add_argument("--cost-repeats", type=int, default=4, help="timing repeats per setting (default 4)")
    p.add_argument("--cost-rounds", type=int, default=8, help="timed epochs per repeat (default 8)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--out", default="benchmarks/results/peers", help="output path prefix")
    args = p.parse_args()
    output_folder(Path(args.out).parent)  # before any timing
    torch.set_num_threads(args.threads)
    repeats, rounds = (1, 3) if args.quick else (args.cost_repeats, args.cost_rounds)
    out = Path(args.out + ("_quick" if args.quick else ""))
    start = time.perf_counter()
    tables = []
    for name, (dataset, folder) in SETTINGS.items():
        fresh = pd.read_csv(folder / "fresh.csv")
        t = accuracy(fresh)
        methods = [m for m in METHODS if m in t.index]
        # the tuned presets, cut to `rounds` epochs: the schedule over which a teacher arrives
        configs = {m: preset(dataset, m, noise=fresh.noise.iloc[0], epochs=rounds) for m in methods}
        timed = summarise(measure(methods, configs, load_data(configs["ce"]), repeats, rounds), methods)
        t["cost_vs_ce"] = timed.ratio_to_ce
        tables.append(t.reset_index(names="method").assign(setting=name))
        print(f"{name} ({time.perf_counter() - start:.0f} s so far)", flush=True)
    table = pd.concat(tables, ignore_index=True)
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    header = [
        f"Command: `python benchmarks/peers.py {' '.join(sys.argv[1:])}`".replace(" `", "`").strip()
        + f" — {(time.perf_counter() - start) / 60:.1f} min; accuracy from `lstsd-edu tune` "
        "(`benchmarks/results/tuning_<dataset>/`).",
        f"Machine: {machine}.",
        "Accuracy: test accuracy at the epoch chosen on validation, mean ± std over the 5 fresh seeds of each "
        "method's tuned setting; **bold**: LSTSD; against it, paired by seed with a 95% interval: ▲ ahead, "
        "▼ behind, ≈ a tie (the interval holds 0). Cost: seconds per training epoch ÷ CE's, methods taking "
        f"turns epoch by epoch, median of {repeats} repeat(s) × {rounds} rounds, each method with its tuned "
        "preset; `born_again` counts both generations. State: per-sample records or teacher copy.",
    ]
    write_csv(table, f"{out}_table.csv")
    text = markdown(table, header)
    write_text(text, f"{out}.md")
    print("\n" + text)
    print(f"wrote {out}_table.csv, {out}.md")


if __name__ == "__main__":
    sys.exit(command("peers.py", main))
