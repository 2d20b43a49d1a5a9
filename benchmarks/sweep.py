"""Sweep LSTSD hyperparameters on one dataset; the table behind the presets in experiments.py.

    python benchmarks/sweep.py --noise 0.3 --seeds 0,1 --out benchmarks/results/sweep_mnist1d.csv \
        --grid "lag=5,10,20 long_mode=sliding,phase w_long=0.3,0.45 w_short=0.3,0.45 temperature=1,2"

Each grid point trains `lstsd` once per seed (baselines ce/short/long once per seed with the
same hyperparameters). Runs go to two worker processes with one thread each (2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lstsd_edu.experiments import preset, train


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


def work(job):
    torch.set_num_threads(1)
    method, seed, overrides = job
    run = train(method, preset(JOB_DATASET, **overrides), seed)
    return {**overrides, **run.summary()}


JOB_DATASET = "mnist1d"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="mnist1d")
    p.add_argument("--noise", type=float, default=0.3)
    p.add_argument("--seeds", default="0")
    p.add_argument("--methods", default="lstsd")
    p.add_argument("--grid", required=True)
    p.add_argument("--base", default="", help="fixed overrides, same syntax as --grid")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    global JOB_DATASET
    JOB_DATASET = args.dataset  # read by the (forked) workers
    base = parse_grid(args.base)[0] if args.base else {}
    points = [{**base, **g, "noise": args.noise} for g in parse_grid(args.grid)]
    jobs = [(m, int(s), pt) for pt in points for s in args.seeds.split(",") for m in args.methods.split(",")]
    with mp.get_context("fork").Pool(2) as pool:
        rows = []
        for i, row in enumerate(pool.imap(work, jobs)):
            rows.append(row)
            print(
                f"[{i + 1}/{len(jobs)}]",
                {k: row[k] for k in [*list(points[0]), "method", "seed", "final_test_acc", "best_test_acc"]},
                flush=True,
            )
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    # a markdown table beside the CSV: mean (std) final test accuracy over seeds per point × method
    keys = [k for k in points[0] if k != "noise"]
    table = (
        df.groupby([*keys, "method"], sort=False)
        .final_test_acc.agg(lambda a: f"{a.mean():.3f} ({a.std(ddof=0):.3f})")
        .unstack("method")
    )
    command = "python benchmarks/sweep.py " + " ".join(
        f'{a} "{v}"' if " " in v else f"{a} {v}" for a, v in zip(sys.argv[1::2], sys.argv[2::2])
    )
    Path(args.out).with_suffix(".md").write_text(
        f"`{command}`\n\nfinal test accuracy, mean (std) over seeds {args.seeds}; "
        f"noise {args.noise}\n\n{table.to_markdown()}\n"
    )
    print(table.to_string())


if __name__ == "__main__":
    main()
