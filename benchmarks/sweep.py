"""Sweep LSTSD hyperparameters on one dataset: a grid, every point trained with every seed.

To look at how a setting behaves, not to choose one: settings are chosen by `lstsd-edu tune`
(tuning.py), on validation only, with the same budget for every method. (The first presets were
chosen with this script by test accuracy; benchmarks/results/archive/ keeps that record.)

    python benchmarks/sweep.py --noise 0.3 --seeds 0,1 --out benchmarks/results/sweep_mnist1d.csv \
        --grid "lag=5,10,20 long_mode=sliding,phase w_long=0.3,0.45 w_short=0.3,0.45 temperature=1,2"

Each grid point trains `lstsd` once per seed (baselines ce/short/long once per seed with the
same hyperparameters, with `--methods`). Runs go through `runs.execute`: `--jobs` worker
processes (default 2, one thread each, for 2 cores), each finished run kept in `--store`
(default `runs/store`, shared with the other benchmarks), so that an interrupted sweep, run
again, trains only the runs it had not finished (`--fresh`: all of them again).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lstsd_edu.cli import add_settings, config_from
from lstsd_edu.config import Config
from lstsd_edu.errors import ConfigError
from lstsd_edu.runs import command, execute, output_file, write_csv, write_text


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_grid(text: str) -> list[dict]:
    axes = {}
    for item in text.split():
        key, values = item.split("=")
        axes[key] = [parse_value(v) for v in values.split(",")]
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def build_parser() -> argparse.ArgumentParser:
    """The sweep's own options, then every Config field as a flag (the settings every point shares,
    as `lstsd-edu train` takes them; `--noise` defaults to 0.3)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0")
    p.add_argument("--methods", default="lstsd")
    p.add_argument("--grid", required=True, help='the axes, e.g. "lag=5,10,20 w_long=0.3,0.45"')
    p.add_argument("--base", default="", help="more shared settings in the grid's syntax (flags come first)")
    p.add_argument("--jobs", type=int, default=2, help="runs side by side (default: 2)")
    p.add_argument("--store", default="runs/store", help="finished runs, kept for a rerun (default: runs/store)")
    p.add_argument("--fresh", action="store_true", help="train every run again, ignoring the store")
    p.add_argument("--out", required=True)
    add_settings(p)
    p.set_defaults(noise=0.3)
    return p


def main() -> None:
    args = build_parser().parse_args()
    output_file(args.out)  # before any training
    torch.set_num_threads(1)
    flags = config_from(args)  # the dataset's starting point and the flags given
    base = parse_grid(args.base)[0] if args.base else {}
    points = [{**base, **g, "noise": flags.noise} for g in parse_grid(args.grid)]
    unknown = sorted({key for point in points for key in point} - set(Config.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"--grid and --base take Config fields; got {', '.join(unknown)}")
    labels = [(m, int(s), pt) for pt in points for s in args.seeds.split(",") for m in args.methods.split(",")]
    tasks = [(m, replace(flags, **pt).validate(), s) for m, s, pt in labels]
    outcomes = execute(tasks, None, store=args.store, jobs=args.jobs, fresh=args.fresh, desc="sweep")
    df = pd.DataFrame([{**pt, **summary} for (_, _, pt), (summary, _) in zip(labels, outcomes)])
    write_csv(df, args.out)
    # a markdown table beside the CSV: mean (std) final test accuracy over seeds per point × method
    keys = [k for k in points[0] if k != "noise"]
    table = (
        df.groupby([*keys, "method"], sort=False)
        .final_test_acc.agg(lambda a: f"{a.mean():.3f} ({a.std(ddof=0):.3f})")
        .unstack("method")
    )
    command_line = "python benchmarks/sweep.py " + " ".join(
        f'{a} "{v}"' if " " in v else f"{a} {v}" for a, v in zip(sys.argv[1::2], sys.argv[2::2])
    )
    write_text(
        f"`{command_line}`\n\nfinal test accuracy, mean (std) over seeds {args.seeds}; "
        f"noise {flags.noise}\n\n{table.to_markdown()}\n",
        Path(args.out).with_suffix(".md"),
    )
    print(table.to_string())


if __name__ == "__main__":
    sys.exit(command("sweep.py", main))
