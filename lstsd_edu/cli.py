"""The `lstsd-edu` command (also `python -m lstsd_edu`), a thin layer over experiments.py.

    lstsd-edu compare --dataset mnist1d --noise 0.3 --methods ce,short,long,lstsd --seeds 0,1,2

prints mean ± std over seeds per method and writes `summary.csv`, `history.csv` and
`comparison.png` to `--out`. Options left out take the dataset's preset (`experiments.PRESETS`).
Bad input ends with one line on stderr and exit code 2.
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
    c.add_argument("--dataset", default="mnist1d", help="mnist1d (default) or digits")
    c.add_argument("--model", help="mlp, cnn1d, cnn2d (default: the dataset's preset)")
    c.add_argument("--noise", type=float, help="fraction of training labels flipped, in [0, 1)")
    c.add_argument("--noise-kind", help="symmetric (default) or pairflip")
    c.add_argument("--methods", default="ce,short,long,lstsd",
                   help=f"comma-separated, from {','.join(METHODS)} (default: ce,short,long,lstsd)")
    c.add_argument("--seeds", default="0,1,2", help="comma-separated integers (default: 0,1,2)")
    c.add_argument("--epochs", type=int)
    c.add_argument("--batch-size", type=int)
    c.add_argument("--lr", type=float)
    c.add_argument("--lag", type=int, help="long-term lag L in epochs")
    c.add_argument("--long-mode", help="sliding or phase")
    c.add_argument("--long-weight", type=float, help="w_long")
    c.add_argument("--short-weight", type=float, help="w_short (w_long + w_short <= 1)")
    c.add_argument("--temperature", type=float, help="τ > 0")
    c.add_argument("--device", help="auto (default), cpu, cuda or mps")
    c.add_argument("--out", default="runs/compare", help="output folder (default: runs/compare)")
    c.add_argument("--fast", action="store_true", help="a few epochs only: a smoke run")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run_compare(args: argparse.Namespace) -> None:
    from .experiments import FAST_EPOCHS, compare, preset, table
    from .plots import comparison_figure

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = _int_list("seeds", args.seeds)
    epochs = args.epochs if args.epochs is not None else (FAST_EPOCHS if args.fast else None)
    config = preset(args.dataset, model=args.model, noise=args.noise, noise_kind=args.noise_kind,
                    epochs=epochs, batch_size=args.batch_size, lr=args.lr, lag=args.lag,
                    long_mode=args.long_mode, w_long=args.long_weight, w_short=args.short_weight,
                    temperature=args.temperature, device=args.device)
    summary, history = compare(methods, config, seeds, progress=not args.no_progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "summary.csv", index=False)
    history.to_csv(out / "history.csv", index=False)
    fig = comparison_figure(history, title=f"{config.dataset}, {config.model}, noise {config.noise:g} "
                                           f"({config.noise_kind}), {len(seeds)} seed(s)")
    fig.savefig(out / "comparison.png", dpi=120, bbox_inches="tight")
    t = table(summary)
    print(f"\n{config.dataset} · {config.model} · noise {config.noise:g} {config.noise_kind} · "
          f"{config.epochs} epochs · seeds {','.join(map(str, seeds))} · lag {config.lag} "
          f"{config.long_mode} · w_long {config.w_long} · w_short {config.w_short} · τ {config.temperature}")
    print(format_table(t))
    print(f"\nwrote {out / 'summary.csv'}, {out / 'history.csv'}, {out / 'comparison.png'}")


def format_table(t) -> str:
    """Plain-text table: method, final accuracy mean ± std, best, seconds/epoch, cost, buffer."""
    lines = [f"{'method':<8} {'final acc':>15} {'best acc':>9} {'s/epoch':>8} {'× ce':>6} {'buffer':>10}"]
    for method, r in t.iterrows():
        ratio = f"{r['cost_vs_ce']:.3f}" if "cost_vs_ce" in t.columns else "—"
        lines.append(f"{method:<8} {r['final_acc_mean']:>8.3f} ± {r['final_acc_std']:.3f} "
                     f"{r['best_acc_mean']:>9.3f} {r['sec_per_epoch']:>8.3f} {ratio:>6} "
                     f"{r['buffer_bytes'] / 1024:>7.0f} KiB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "compare":
            run_compare(args)
    except ConfigError as error:
        print(f"lstsd-edu: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
