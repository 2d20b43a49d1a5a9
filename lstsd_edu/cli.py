"""The `lstsd-edu` command (also `python -m lstsd_edu`), a thin layer over experiments.py.

    lstsd-edu compare --dataset mnist1d --noise 0.3 --methods ce,short,long,lstsd --seeds 0,1,2

prints mean ± std over seeds per method and writes `summary.csv`, `history.csv` and
`comparison.png` to `--out`. Options left out take the dataset's preset (`experiments.PRESETS`).
Bad input ends with one line on stderr and exit code 2.

    lstsd-edu train --dataset cifar100 --model resnet32 --method lstsd     # one run (also torchrun)
    lstsd-edu memory                                                       # buffer bytes at scale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ConfigError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_list(name: str, text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip() != ""]
    except ValueError:
        values = []
    if not values:
        raise ConfigError(f"{name} must be a comma-separated list of integers such as 0,1,2; got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    from .methods import METHODS

    parser = _Parser(prog="lstsd-edu", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    c = sub.add_parser("compare", help="train several methods over several seeds and compare them")
    c.add_argument("--dataset", default="mnist1d", help="mnist1d (default), digits, textsynth, …")
    c.add_argument("--model", help="mlp, cnn1d, cnn2d, textbag, textcnn, … (default: the dataset's preset)")
    c.add_argument("--noise", type=float, help="fraction of training labels flipped, in [0, 1)")
    c.add_argument("--noise-kind", help="symmetric (default) or pairflip")
    c.add_argument(
        "--methods",
        default="ce,short,long,lstsd",
        help=f"comma-separated, from {','.join(METHODS)}, or all (default: ce,short,long,lstsd)",
    )
    c.add_argument("--seeds", default="0,1,2", help="comma-separated integers (default: 0,1,2)")
    c.add_argument("--epochs", type=int)
    c.add_argument("--batch-size", type=int)
    c.add_argument("--lr", type=float)
    c.add_argument("--lag", type=int, help="long-term lag L in epochs")
    c.add_argument("--long-mode", help="sliding or phase")
    c.add_argument("--long-weight", type=float, help="w_long")
    c.add_argument("--short-weight", type=float, help="w_short (w_long + w_short <= 1)")
    c.add_argument("--temperature", type=float, help="τ > 0")
    c.add_argument("--ramp", type=int, help="epochs over which both weights grow from 0 (0: none)")
    c.add_argument("--device", help="auto (default), cpu, cuda or mps")
    c.add_argument("--out", default="runs/compare", help="output folder (default: runs/compare)")
    c.add_argument("--fast", action="store_true", help="a few epochs only: a smoke run")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default: 1 — the embedded models are too small to "
        "gain from more, and one thread does not stall when the machine is busy)",
    )
    c.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained at a time, each in its own process with --threads threads "
        "(default: 1; on a 2-core machine, 2 halves the wall time)",
    )
    add_train_parser(sub)  # `train`: one run, also under torchrun (DDP)
    add_memory_parser(sub)  # `memory`: the buffer's bytes at CIFAR-100 and ImageNet scale
    return parser


def run_compare(args: argparse.Namespace) -> None:
    import torch

    from .errors import check_range
    from .experiments import FAST_EPOCHS, METHODS, compare, preset, table
    from .plots import comparison_figure

    check_range("threads", args.threads, 1, 1024, integer=True)
    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    methods = list(METHODS) if methods == ["all"] else methods  # `--methods all`: every method
    seeds = _int_list("seeds", args.seeds)
    epochs = args.epochs if args.epochs is not None else (FAST_EPOCHS if args.fast else None)
    config = preset(
        args.dataset,
        model=args.model,
        noise=args.noise,
        noise_kind=args.noise_kind,
        epochs=epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lag=args.lag,
        long_mode=args.long_mode,
        w_long=args.long_weight,
        w_short=args.short_weight,
        temperature=args.temperature,
        ramp=args.ramp,
        device=args.device,
    )
    summary, history = compare(methods, config, seeds, progress=not args.no_progress, jobs=args.jobs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "summary.csv", index=False)
    history.to_csv(out / "history.csv", index=False)
    fig = comparison_figure(
        history,
        title=f"{config.dataset}, {config.model}, noise {config.noise:g} ({config.noise_kind}), {len(seeds)} seed(s)",
    )
    fig.savefig(out / "comparison.png", dpi=120, bbox_inches="tight")
    t = table(summary)
    print(
        f"\n{config.dataset} · {config.model} · noise {config.noise:g} {config.noise_kind} · "
        f"{config.epochs} epochs · seeds {','.join(map(str, seeds))} · lag {config.lag} "
        f"{config.long_mode} · w_long {config.w_long} · w_short {config.w_short} · τ {config.temperature} · "
        f"ramp {config.ramp}"
    )
    print(format_table(t))
    print(f"\nwrote {out / 'summary.csv'}, {out / 'history.csv'}, {out / 'comparison.png'}")


def format_table(t) -> str:
    """Plain-text table: method, final accuracy mean ± std, best, seconds/epoch, cost, buffer."""
    lines = [f"{'method':<11} {'final acc':>15} {'best acc':>9} {'s/epoch':>8} {'× ce':>6} {'buffer':>10}"]
    for method, r in t.iterrows():
        ratio = f"{r['cost_vs_ce']:.3f}" if "cost_vs_ce" in t.columns else "—"
        lines.append(
            f"{method:<11} {r['final_acc_mean']:>8.3f} ± {r['final_acc_std']:.3f} "
            f"{r['best_acc_mean']:>9.3f} {r['sec_per_epoch']:>8.3f} {ratio:>6} "
            f"{r['buffer_bytes'] / 1024:>7.0f} KiB"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# `train`: one model, one method — on one device, or on N under torchrun (issue #7)
# ---------------------------------------------------------------------------------------------
#   lstsd-edu train --dataset cifar100 --model resnet32 --method lstsd
#   torchrun --nproc_per_node=4 -m lstsd_edu train --dataset cifar100 --model resnet32 --method lstsd
# Under torchrun every rank runs this; rank 0 alone prints and writes `history.csv` and
# `summary.csv` to --out. `--batch-size` is the global batch, split over the ranks.
TRAIN_OVERRIDES = [  # (flag, type, Config field, help); left out: the dataset's preset
    ("--model", str, "model", "mlp, cnn1d, cnn2d, resnet20, resnet32, resnet56, resnet110, …"),
    ("--noise", float, "noise", "fraction of training labels flipped, in [0, 1)"),
    ("--noise-kind", str, "noise_kind", "symmetric or pairflip"),
    ("--epochs", int, "epochs", "training epochs"),
    ("--batch-size", int, "batch_size", "global batch size (split over the ranks under torchrun)"),
    ("--lr", float, "lr", "peak learning rate of the cosine schedule"),
    ("--momentum", float, "momentum", "SGD momentum"),
    ("--weight-decay", float, "weight_decay", "SGD weight decay"),
    ("--lag", int, "lag", "long-term lag L in epochs"),
    ("--long-mode", str, "long_mode", "sliding or phase"),
    ("--long-weight", float, "w_long", "w_long"),
    ("--short-weight", float, "w_short", "w_short (w_long + w_short <= 1)"),
    ("--temperature", float, "temperature", "τ > 0"),
    ("--storage", str, "storage", "buffer records: dense or topk"),
    ("--k", int, "k", "classes a topk record keeps"),
    ("--width", int, "width", "model width (ResNets: channels of the first stage)"),
    ("--device", str, "device", "auto (default), cpu, cuda or mps"),
]


def add_train_parser(sub) -> None:
    t = sub.add_parser("train", help="train one model with one method (under torchrun: on N GPUs with DDP)")
    t.add_argument("--dataset", default="mnist1d", help="mnist1d (default), digits, cifar10, cifar100, …")
    t.add_argument("--method", default="lstsd", help="one method, e.g. ce or lstsd (default: lstsd)")
    t.add_argument("--seed", type=int, default=0, help="model and shuffling seed (default: 0)")
    for flag, kind, field, text in TRAIN_OVERRIDES:
        t.add_argument(flag, type=kind, dest=field, help=text)
    t.add_argument(
        "--data-root",
        help="folder holding cifar-10-batches-py/ or cifar-100-python/ (default: data/; downloaded there if absent)",
    )
    t.add_argument("--out", default="runs/train", help="output folder (default: runs/train)")
    t.add_argument("--fast", action="store_true", help="a few epochs only: a smoke run")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_train(args: argparse.Namespace) -> None:
    import pandas as pd

    from . import distributed
    from .errors import check_choice
    from .experiments import FAST_EPOCHS, METHODS, human_bytes, preset
    from .trainer import get_device

    check_choice("method", args.method, METHODS)
    overrides = {field: getattr(args, field) for _, _, field, _ in TRAIN_OVERRIDES}
    if args.fast and overrides["epochs"] is None:
        overrides["epochs"] = FAST_EPOCHS
    config = preset(args.dataset, **overrides)
    rank, world = distributed.init(get_device(config.device))
    try:
        distributed.check_method(args.method)
        history, summary = _train_once(args, config, progress=rank == 0 and not args.no_progress)
    finally:
        distributed.teardown()  # the trainer (and its DDP wrapper) is gone by now
    if rank == 0:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        history.to_csv(out / "history.csv", index=False)
        pd.DataFrame([{**summary, "ranks": world}]).to_csv(out / "summary.csv", index=False)
        print(
            f"\n{config.dataset} · {config.model} · {args.method} · {config.epochs} epochs · "
            f"batch {config.batch_size} on {world} rank(s) · seed {args.seed} · buffer "
            f"{config.storage} {human_bytes(summary['buffer_bytes'])}"
        )
        print(history.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(f"\nwrote {out / 'history.csv'}, {out / 'summary.csv'}")


def _train_once(args: argparse.Namespace, config, progress: bool):
    """Load the data, train, and keep only the results, so that no trainer outlives the call."""
    from .data import CIFAR_LAYOUT, LOADERS, load_dataset, with_label_noise
    from .experiments import train

    if args.data_root is None:
        data = load_dataset(config.dataset, config.noise, config.noise_kind)
    elif config.dataset in CIFAR_LAYOUT:
        data = with_label_noise(LOADERS[config.dataset](root=args.data_root), config.noise, config.noise_kind)
    else:
        raise ConfigError(f"data-root applies to {', '.join(CIFAR_LAYOUT)}; got dataset {config.dataset!r}")
    run = train(args.method, config, args.seed, progress=progress, data=data)
    return run.history, run.summary()


def add_memory_parser(sub) -> None:
    m = sub.add_parser("memory", help="the buffer's memory for CIFAR-100 and ImageNet, dense vs topk")
    m.add_argument(
        "--lag", type=int, default=20, help="long-term lag L: sliding keeps L + 1 slots (default: 20, the presets' lag)"
    )
    m.add_argument("--k", type=int, default=10, help="classes a topk record keeps (default: 10)")
    m.add_argument("--out", help="also write the table to this CSV file")


def run_memory(args: argparse.Namespace) -> None:
    from .errors import check_range
    from .experiments import memory_table

    check_range("lag", args.lag, 1, 1000, integer=True)
    check_range("k", args.k, 1, 1000, integer=True)
    table = memory_table(lag=args.lag, k=args.k)
    shown = table.assign(
        k=table.k.where(table.storage == "topk", "—"), vs_dense_sliding=table.vs_dense_sliding.map(lambda v: f"{v:.3f}")
    )
    print(f"Buffer memory per rank (fp16 values, int16 stamps; topk adds int16 class ids), lag {args.lag}")
    print(
        shown[
            ["problem", "samples", "classes", "storage", "k", "mode", "slots", "bytes", "memory", "vs_dense_sliding"]
        ].to_string(index=False)
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
        print(f"\nwrote {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "compare":
            run_compare(args)
        elif args.command == "train":
            run_train(args)
        elif args.command == "memory":
            run_memory(args)
    except ConfigError as error:
        print(f"lstsd-edu: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
