"""What does LSTSD cost over plain CE? Seconds per training epoch, measured side by side.

    .venv/bin/python benchmarks/cost.py --repeats 5 --epochs 8

For each repeat, CE and every other method train the same model on the same data for `--epochs`
epochs, in alternating order (so slow drifts of the machine hit all methods alike). The table
reports the median seconds per epoch (training only, evaluation excluded) and, per repeat, the
ratio to CE's time in that same repeat; its median is the number to quote. Writes a CSV too.
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lstsd_edu.data import load_dataset  # noqa: E402
from lstsd_edu.experiments import preset, train  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mnist1d")
    p.add_argument("--methods", default="ce,short,long,lstsd")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument("--out", default="benchmarks/results/cost.csv")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = args.methods.split(",")
    config = preset(args.dataset, noise=0.3, epochs=args.epochs)
    data = load_dataset(config.dataset, config.noise, config.noise_kind)
    rows = []
    for repeat in range(args.repeats):
        order = methods if repeat % 2 == 0 else methods[::-1]
        for method in order:
            history = train(method, config, seed=repeat, data=data).history
            # the first epoch includes one-off warm-up (allocations, kernel selection)
            rows.append(dict(repeat=repeat, method=method, sec_per_epoch=history.seconds.iloc[1:].median()))
    df = pd.DataFrame(rows)
    per_repeat = df.pivot(index="repeat", columns="method", values="sec_per_epoch")
    ratio = per_repeat.div(per_repeat["ce"], axis=0)
    out = pd.DataFrame({"sec_per_epoch_median": per_repeat.median(), "ratio_to_ce_median": ratio.median(),
                        "ratio_min": ratio.min(), "ratio_max": ratio.max()}).loc[methods]
    print(f"{args.dataset}, {config.model}, batch {config.batch_size}, {args.epochs} epochs × "
          f"{args.repeats} repeats, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}")
    print(out.to_string(float_format=lambda v: f"{v:.4f}"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
