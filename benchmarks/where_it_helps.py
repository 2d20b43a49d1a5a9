"""Where does LSTSD help? Every (dataset, label noise) cell tuned with one protocol, LSTSD against
the best tuned baseline.

    .venv/bin/python benchmarks/where_it_helps.py                 # the map: 3 data sets × 4 noise settings
    .venv/bin/python benchmarks/where_it_helps.py --quick         # a smoke run of the mechanics
    .venv/bin/python benchmarks/where_it_helps.py --clean         # clean MNIST-1D: does any setting help?

The map. For each data set (MNIST-1D, digits, textsynth) and label noise (clean; 20% and 40%
symmetric; 30% pair-flip), `tuning.tune` gives LSTSD and the baselines (CE, label smoothing, GCE,
ELR) the same number of random-search trials each (`--trials`, 4 by default: the starting point
and three draws, a sixth of the main tunings' budget, so that the 12 cells fit in about 70 minutes
on 2 cores), scored on the noisy validation split with the test split removed, and trains each
chosen setting on fresh seeds (`--fresh-seeds`, 3 by default). The baseline LSTSD is compared with
is the one with the best mean *validation* accuracy on those fresh seeds (choosing it by test
accuracy would flatter it); the cell shows LSTSD's test accuracy at the epoch chosen on validation
minus that baseline's, paired by seed, with a 95% t-interval. An interval that holds 0 is a tie,
drawn grey. With so small a budget the starting point weighs heavily: it holds LSTSD's settings
from the toolkit's first sweeps on noisy MNIST-1D, and the optimiser settings every method starts
from; read the map as a coarse survey, and the main tunings (`lstsd-edu tune`, 24 trials) as the
careful measurement.

The clean study (`--clean`). The paper's abstract reports gains on clean data; on clean MNIST-1D
tuned CE and label smoothing may leave no room. So the same protocol (CE, label smoothing,
LSTSD) runs on variations where self-distillation has been reported to matter: a small training
set (1000 samples), a wider model (width 64), a longer run (120 epochs), and LSTSD restricted to
the paper's `phase` mode or to no ramp. Whatever it finds is written down.

Every run is cached in `--store` (default runs/store): an interrupted run resumes where it
stopped, and the results files are rewritten after every finished cell (or variant), so an
interrupted map shows the cells it has, and names the ones still missing. Results: `<out>.csv`,
`<out>.md` and `<out>.png` (the map), `<out>_clean.csv/.md`.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lstsd_edu.experiments import load_data, preset
from lstsd_edu.runs import RunStore, command, output_folder, save_figure, write_csv, write_text
from lstsd_edu.tuning import differences, fresh_table, tune

DATASETS = ("mnist1d", "digits", "textsynth")
NOISES = ((0.0, "symmetric"), (0.2, "symmetric"), (0.4, "symmetric"), (0.3, "pairflip"))
BASELINES = ("ce", "ls", "gce", "elr")
FRESH_SEEDS = (1000, 1001, 1002, 1003, 1004)


def noise_name(noise: float, kind: str) -> str:
    return "clean" if noise == 0 else f"{noise:.0%} {'pair-flip' if kind == 'pairflip' else 'symmetric'}"


def compare_cell(result, baselines) -> dict:
    """LSTSD against the baseline with the best mean validation accuracy on the fresh seeds."""
    val = result.fresh.groupby("method").selected_val_acc.mean()
    best = max(baselines, key=lambda m: val[m])
    gap = differences(result, "lstsd").loc[best]
    test = fresh_table(result)
    return dict(
        best_baseline=best,
        lstsd=test.loc["lstsd", "mean"],
        lstsd_std=test.loc["lstsd", "std"],
        baseline=test.loc[best, "mean"],
        baseline_std=test.loc[best, "std"],
        difference=gap.difference,
        low=gap.low,
        high=gap.high,
        verdict=gap.verdict,
        **{f"{m}_test": test.loc[m, "mean"] for m in test.index},
    )


def run_map(args, store, report) -> pd.DataFrame:
    """Every cell in turn; `report(rows so far)` after each."""
    rows = []
    for dataset in args.datasets:
        for noise, kind in NOISES:
            base = preset(dataset, noise=noise, noise_kind=kind, **({"epochs": 2} if args.quick else {}))
            start = time.time()
            result = tune(
                ["lstsd", *BASELINES],
                base,
                trials=args.trials,
                fresh_seeds=FRESH_SEEDS[: args.fresh_seeds],
                store=store,
                jobs=args.jobs,
                progress=not args.no_progress,
            )
            row = dict(dataset=dataset, noise=noise, noise_kind=kind, **compare_cell(result, BASELINES))
            rows.append(row)
            report(pd.DataFrame(rows))
            print(
                f"{dataset:<9} {noise_name(noise, kind):<15} LSTSD {row['lstsd']:.3f} vs {row['best_baseline']} "
                f"{row['baseline']:.3f}: {row['difference']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}] "
                f"{row['verdict']} ({time.time() - start:.0f} s)",
                flush=True,
            )
    return pd.DataFrame(rows)


def map_figure(frame: pd.DataFrame, seeds: int):
    """Datasets × noise settings; colour = LSTSD − best baseline where the interval excludes 0,
    grey where it holds 0 (a tie); each cell names the baseline and the interval."""
    import matplotlib.pyplot as plt

    columns = [noise_name(n, k) for n, k in NOISES]
    fig, ax = plt.subplots(figsize=(10, 1.2 + 1.1 * len(DATASETS)))
    datasets = list(dict.fromkeys(frame.dataset))
    limit = max(0.02, float(np.nanmax(np.abs(frame.difference))))
    cmap = plt.get_cmap("RdBu")
    for i, dataset in enumerate(datasets):
        for j, (noise, kind) in enumerate(NOISES):
            cell = frame[(frame.dataset == dataset) & (frame.noise == noise) & (frame.noise_kind == kind)]
            if cell.empty:
                continue
            r = cell.iloc[0]
            tie = r.verdict == "tie"
            colour = "0.85" if tie else cmap(0.5 + 0.5 * r.difference / limit)
            ax.add_patch(plt.Rectangle((j, i), 1, 1, color=colour))
            ax.text(
                j + 0.5,
                i + 0.5,
                f"{r.difference:+.3f}\n[{r.low:+.3f}, {r.high:+.3f}]\nvs {r.best_baseline}" + ("\ntie" if tie else ""),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if not tie and abs(r.difference) > 0.6 * limit else "black",  # legible on dark cells
            )
    ax.set(xlim=(0, len(NOISES)), ylim=(len(datasets), 0), xticks=np.arange(len(NOISES)) + 0.5, yticks=[])
    ax.set_xticklabels(columns)
    ax.set_yticks(np.arange(len(datasets)) + 0.5)
    ax.set_yticklabels(datasets)
    ax.set_title(
        "LSTSD − best tuned baseline, test accuracy at the epoch chosen on validation\n"
        f"(mean over {seeds} fresh seeds, paired; 95% interval; grey: the interval holds 0, a tie)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


CLEAN_VARIANTS = {  # name -> (Config overrides, LSTSD settings held fixed, training samples kept); cheapest first
    "preset": ({}, {}, None),
    "1000 training samples": ({}, {}, 1000),
    "LSTSD in phase mode": ({}, {"long_mode": "phase"}, None),
    "LSTSD without ramp": ({}, {"ramp": 0}, None),
    "width 64": ({"width": 64}, {}, None),
    "120 epochs": ({"epochs": 120}, {}, None),
}


def run_clean(args, store, report) -> pd.DataFrame:
    """Every variant in turn; `report(rows so far)` after each."""
    rows = []
    for name, (overrides, fixed, keep) in CLEAN_VARIANTS.items():
        base = preset("mnist1d", noise=0.0, **{**overrides, **({"epochs": 2} if args.quick else {})})
        data = load_data(base)
        if keep is not None:  # the first `keep` training samples: a smaller training set, same validation split
            data = replace(data, train=data.train.subset(torch.arange(keep)))
        start = time.time()
        result = tune(
            ["lstsd", "ce", "ls"],
            base,
            trials=args.trials,
            fresh_seeds=FRESH_SEEDS[: args.fresh_seeds],
            data=data,
            fixed={"lstsd": fixed},
            store=store,
            jobs=args.jobs,
            progress=not args.no_progress,
        )
        row = dict(variant=name, **compare_cell(result, ("ce", "ls")))
        rows.append(row)
        report(pd.DataFrame(rows))
        print(
            f"{name:<24} LSTSD {row['lstsd']:.3f} vs {row['best_baseline']} {row['baseline']:.3f}: "
            f"{row['difference']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}] {row['verdict']} "
            f"({time.time() - start:.0f} s)",
            flush=True,
        )
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame, key: list[str], command: str, title: str, args, missing: list[str]) -> str:
    lines = [
        f"# {title}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch thread(s) per run, "
        f"torch {torch.__version__}.  ",
        f"Protocol: {args.trials} random-search trials per method (the starting point first), scored on the "
        "validation split (its labels as noisy as the training labels) with the test split removed; the chosen "
        "settings trained with fresh seeds "
        f"{', '.join(map(str, FRESH_SEEDS[: args.fresh_seeds]))}; test accuracy at the epoch chosen on validation. "
        "The best baseline is the one with the best mean validation accuracy on the fresh seeds.",
        "",
        "| "
        + " | ".join([*key, "LSTSD", "best baseline (by validation)", "LSTSD − baseline [95% CI]", "verdict"])
        + " |",
        "|" + "---|" * (len(key) + 4),
    ]
    for _, r in frame.iterrows():
        cells = [str(r[k]) if k != "noise" else noise_name(r.noise, r.noise_kind) for k in key]
        lines.append(
            "| "
            + " | ".join(
                [
                    *cells,
                    f"{r.lstsd:.3f} ± {r.lstsd_std:.3f}",
                    f"`{r.best_baseline}` {r.baseline:.3f} ± {r.baseline_std:.3f}",
                    f"{r.difference:+.3f} [{r.low:+.3f}, {r.high:+.3f}]",
                    r.verdict,
                ]
            )
            + " |"
        )
    if missing:
        lines += ["", f"Not run yet (the command resumes where it stopped): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clean", action="store_true", help="the clean-data study instead of the map")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 epochs, 3 trials, 2 fresh seeds")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated (default: all three)")
    parser.add_argument("--trials", type=int, default=4, help="trials per method and cell (default: 4)")
    parser.add_argument("--fresh-seeds", type=int, default=3, help="fresh seeds per chosen setting (default: 3)")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (default: 2)")
    parser.add_argument("--store", default="runs/store", help="cache of finished runs (default: runs/store)")
    parser.add_argument("--out", default="benchmarks/results/where_it_helps", help="output prefix")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.fresh_seeds = 3, 2
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    torch.set_num_threads(1)
    out = Path(args.out)
    output_folder(out.parent)  # before any training
    store = RunStore(args.store)
    command_line = "python benchmarks/where_it_helps.py " + " ".join(sys.argv[1:])
    if args.clean:

        def report_clean(frame: pd.DataFrame) -> None:
            missing = [name for name in CLEAN_VARIANTS if name not in set(frame.variant)]
            title = "Clean MNIST-1D: LSTSD against tuned CE and label smoothing"
            write_csv(frame, f"{out}_clean.csv")
            write_text(markdown(frame, ["variant"], command_line, title, args, missing), f"{out}_clean.md")

        run_clean(args, store, report_clean)
        print(f"wrote {out}_clean.csv, {out}_clean.md")
        return

    def report_map(frame: pd.DataFrame) -> None:
        done = set(zip(frame.dataset, frame.noise, frame.noise_kind))
        missing = [f"{d} {noise_name(n, k)}" for d in args.datasets for n, k in NOISES if (d, n, k) not in done]
        title = "Where LSTSD helps: LSTSD against the best tuned baseline"
        write_csv(frame, f"{out}.csv")
        write_text(markdown(frame, ["dataset", "noise"], command_line, title, args, missing), f"{out}.md")
        save_figure(map_figure(frame, args.fresh_seeds), f"{out}.png", dpi=120, bbox_inches="tight")

    run_map(args, store, report_map)
    print(f"wrote {out}.csv, {out}.md, {out}.png")


if __name__ == "__main__":
    sys.exit(command("where_it_helps.py", main))
