"""The `lstsd-edu` command (also `python -m lstsd_edu`), a thin layer over experiments.py.

    lstsd-edu compare --dataset mnist1d --noise 0.3 --methods ce,short,long,lstsd --seeds 0,1,2

prints mean ± std over seeds per method and writes `summary.csv`, `history.csv` and
`comparison.png` to `--out`.

    lstsd-edu train --dataset cifar100 --model resnet32 --method lstsd     # one run (also torchrun)
    lstsd-edu memory                                                       # buffer bytes at scale

`compare` and `train` take the same settings: one flag per `Config` field, generated from the
dataclass with the help text and limits of its metadata (`config.py`). A setting left out takes
the dataset's preset (`experiments.PRESETS`).

Every command that writes checks `--out` first, before any training, and writes its files
atomically. Long commands survive interruption: `compare` keeps each finished run in
`<out>/runs/` as it finishes, and the same command run again trains only the runs missing there,
giving the same files as a run never interrupted (`--fresh`: train them all again); `train`
keeps a checkpoint, `<out>/checkpoint.pt`, after every epoch and continues from it.

Exit codes (also in `--help`): 0 done; 2 bad input, one line naming the parameter, before any
training; 3 done and written, but a run diverged — its training loss became NaN or exploded
(see `trainer.py`), so it stopped early, and the table marks it and leaves it out of the means
(e.g. `lstsd-edu compare --lr 9.9 --methods ce,lstsd --seeds 0 --epochs 4` exits 3: a script
can tell a finished comparison from one with a broken run); 130 Ctrl-C, one line saying what is
kept and how to resume.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ConfigError, Range

EXIT_CODES = """exit codes:
  0    done: the files are written
  2    bad input (one line naming the parameter), before any training
  3    done and written, but at least one run diverged (training loss NaN or exploded): the
       run stopped early and the table marks it, leaving it out of the means
  130  interrupted (Ctrl-C): finished runs (compare) or epochs (train) are kept in --out;
       run the same command again to resume"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


THREADS = Range(1, 1024, integer=True)


def _int_list(name: str, text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip() != ""]
    except ValueError:
        values = []
    if not values:
        raise ConfigError(f"{name} must be a comma-separated list of integers such as 0,1,2; got {text!r}")
    return values


# -- the settings: one flag per Config field ------------------------------------------------------
def _flag_type(annotation: str) -> type:
    """The argparse type of a Config field from its annotation ('int | None' -> int)."""
    return int if "int" in annotation else float if "float" in annotation else str


def add_settings(parser: argparse.ArgumentParser) -> None:
    """One flag per `Config` field, grouped as the dataclass groups them; each defaults to None,
    which means "the dataset's preset" (except --dataset itself, mnist1d)."""
    from .config import settings

    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in settings():
        group = f.metadata["group"]
        if group not in groups:
            groups[group] = parser.add_argument_group(f"settings: {group}")
        rule = f.metadata["rule"]
        limits = f" [{rule}]" if rule is not None and f.name != "dataset" else ""
        default = " (default: mnist1d)" if f.name == "dataset" else ""
        groups[group].add_argument(
            "--" + f.name.replace("_", "-"),
            *f.metadata["flags"],
            dest=f.name,
            type=_flag_type(str(f.type)),
            default="mnist1d" if f.name == "dataset" else None,
            metavar=f.name.upper(),
            help=f"{f.metadata['help']}{limits}{default}",
        )


def config_from(args: argparse.Namespace, method: str | None = None):
    """The `Config` the settings flags describe: the dataset's preset, `method`'s tuned settings
    on it (`Method.tuned`), then the flags given."""
    from .config import settings
    from .experiments import FAST_EPOCHS, preset

    overrides = {f.name: getattr(args, f.name) for f in settings() if f.name != "dataset"}
    if getattr(args, "fast", False) and overrides["epochs"] is None:  # a benchmark's parser has no --fast
        overrides["epochs"] = FAST_EPOCHS
    return preset(args.dataset, method, **overrides)


def _methods(text: str) -> list[str]:
    from .methods import METHODS

    methods = [m.strip() for m in text.split(",") if m.strip()]
    return list(METHODS) if methods == ["all"] else methods  # `all`: every method


def add_run_options(parser: argparse.ArgumentParser, out: str) -> None:
    """Options of a command that trains, besides the settings."""
    parser.add_argument("--out", default=out, help=f"output folder (default: {out})")
    parser.add_argument(
        "--fresh", action="store_true", help="train everything again: ignore the runs or checkpoint kept in --out"
    )
    parser.add_argument("--fast", action="store_true", help="a few epochs only: a smoke run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch per process (default: 1 — the embedded models are too small to "
        "gain from more, and one thread does not stall when the machine is busy)",
    )


def build_parser() -> argparse.ArgumentParser:
    from .methods import METHODS

    layout = dict(epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser = _Parser(prog="lstsd-edu", description=__doc__.split("\n")[0], **layout)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser(
        "compare",
        help="train several methods over several seeds and compare them",
        description="Train several methods over several seeds and compare them. Each finished run is kept "
        "in <out>/runs/; run the same command again to resume after an interruption.",
        **layout,
    )
    c.add_argument(
        "--methods",
        default="ce,short,long,lstsd",
        help=f"comma-separated, from {','.join(METHODS)}, or all (default: ce,short,long,lstsd)",
    )
    c.add_argument("--seeds", default="0,1,2", help="comma-separated integers (default: 0,1,2)")
    c.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained at a time, each in its own process with --threads threads "
        "(default: 1; on a 2-core machine, 2 halves the wall time)",
    )
    add_run_options(c, "runs/compare")
    add_settings(c)

    # one model, one method — on one device, or on N under torchrun:
    #   torchrun --nproc_per_node=4 -m lstsd_edu train --dataset cifar100 --model resnet32 --method lstsd
    # Under torchrun every rank runs this; rank 0 alone prints and writes `history.csv` and
    # `summary.csv` to --out. `--batch-size` is the global batch, split over the ranks.
    t = sub.add_parser(
        "train",
        help="train one model with one method (under torchrun: on N GPUs with DDP)",
        description="Train one model with one method. In one process, a checkpoint is kept in "
        "<out>/checkpoint.pt after every epoch; the same command run again continues from it.",
        **layout,
    )
    t.add_argument("--method", default="lstsd", help="one method, e.g. ce or lstsd (default: lstsd)")
    t.add_argument("--seed", type=int, default=0, help="model and shuffling seed (default: 0)")
    t.add_argument(
        "--data-root",
        help="folder the dataset's files are kept in, e.g. cifar-10-batches-py/ (default: data/; "
        "downloaded there if absent)",
    )
    add_run_options(t, "runs/train")
    add_settings(t)

    u = sub.add_parser(
        "tune",
        help="tune several methods with the same budget on validation, then test them on fresh seeds",
        description="Tune several methods with one protocol (tuning.py): the same number of trials each, "
        "scored on the validation split with the test split removed, then each chosen setting trained with "
        "fresh seeds. Every run is kept in --store; the same command run again resumes.",
        **layout,
    )
    u.add_argument("--methods", default="all", help=f"comma-separated, from {','.join(METHODS)}, or all (default)")
    u.add_argument("--trials", type=int, default=24, help="settings tried per method (default: 24)")
    u.add_argument("--tuning-seeds", default="0", help="seeds of the search runs (default: 0)")
    u.add_argument(
        "--fresh-seeds", default="1000,1001,1002,1003,1004", help="seeds of the reported runs (default: 1000–1004)"
    )
    u.add_argument("--jobs", type=int, default=1, help="runs trained at a time, each in its own process (default: 1)")
    u.add_argument("--store", default="runs/store", help="folder keeping every finished run (default: runs/store)")
    add_run_options(u, "runs/tune")
    add_settings(u)

    m = sub.add_parser("memory", help="the buffer's memory for CIFAR-100 and ImageNet, dense vs topk")
    m.add_argument(
        "--lag", type=int, default=20, help="long-term lag L: sliding keeps L + 1 slots (default: 20, the presets' lag)"
    )
    m.add_argument("--k", type=int, default=10, help="classes a topk record keeps (default: 10)")
    m.add_argument("--out", help="also write the table to this CSV file")
    return parser


# -- compare ----------------------------------------------------------------------------------------
DIVERGED = 3  # the exit code of a command that finished but had a run diverge


def run_compare(args: argparse.Namespace) -> int:
    import torch

    from .experiments import compare, settings_text, table
    from .methods import METHOD, METHODS
    from .runs import RunStore, output_folder, save_figure, write_csv

    THREADS.check("threads", args.threads)
    Range(1, 1024, integer=True).check("jobs", args.jobs)
    torch.set_num_threads(args.threads)
    methods = _methods(args.methods)
    seeds = _int_list("seeds", args.seeds)
    for m in methods:
        METHOD.check("method", m)
    configs = {m: config_from(args, m) for m in methods}  # each method's tuned preset, then the flags
    config = configs[methods[0]]
    out = output_folder(args.out)  # before any training
    summary, history = compare(
        methods,
        configs,
        seeds,
        progress=not args.no_progress,
        jobs=args.jobs,
        store=RunStore(out / "runs"),
        fresh=args.fresh,
    )
    write_csv(summary, out / "summary.csv")
    write_csv(history, out / "history.csv")
    from .diagnostics import milestones
    from .plots import comparison_figure  # (matplotlib and seaborn: imported once needed)

    title = f"{config.dataset}, {config.model}, noise {config.noise:g} ({config.noise_kind}), {len(seeds)} seed(s)"
    marks = milestones(configs["lstsd"]) if "lstsd" in configs else None  # where its teachers arrive
    if marks:
        title += "\n(dashed lines: LSTSD's milestones)"
    fig = comparison_figure(history, title=title, milestones=marks)
    save_figure(fig, out / "comparison.png", dpi=120, bbox_inches="tight")
    t = table(summary)
    print(
        f"\n{config.dataset} · {config.model} · noise {config.noise:g} {config.noise_kind} · "
        f"{config.epochs} epochs · seeds {','.join(map(str, seeds))} · validation {config.val_fraction:.0%}"
    )
    print(format_table(t))
    print("\nsettings (each method's tuned preset, then the flags given):")
    for m in methods:
        print(f"  {m:<11} {settings_text(METHODS[m], configs[m])}")
    diverged = summary[summary.diverged]
    if len(diverged):
        runs = ", ".join(f"{r.method} seed {r.seed} (epoch {int(r.diverged_epoch)})" for r in diverged.itertuples())
        print(
            f"\n{len(diverged)} run(s) diverged — the training loss became NaN or exploded — and stopped early: "
            f"{runs}. They are left out of the means (column 'diverged'); a smaller --lr may help."
        )
    print(f"\nwrote {out / 'summary.csv'}, {out / 'history.csv'}, {out / 'comparison.png'}")
    return DIVERGED if len(diverged) else 0


def format_table(t) -> str:
    """Plain-text table: test accuracy at the epoch chosen on validation and at the last epoch
    (mean ± std over seeds, diverged runs left out), the validation accuracy it was chosen by,
    seconds per epoch, cost, state, and how many runs diverged."""
    lines = [
        f"{'method':<11} {'selected acc':>15} {'final acc':>15} {'val acc':>8} {'s/epoch':>8} {'× ce':>6} "
        f"{'state':>10} {'diverged':>9}"
    ]
    for method, r in t.iterrows():
        ratio = f"{r['cost_vs_ce']:.3f}" if "cost_vs_ce" in t.columns else "—"
        diverged = f"{int(r['diverged'])} of {int(r['seeds'])}" if r["diverged"] else "—"
        lines.append(
            f"{method:<11} {r['selected_acc_mean']:>8.3f} ± {r['selected_acc_std']:.3f} "
            f"{r['final_acc_mean']:>8.3f} ± {r['final_acc_std']:.3f} {r['val_acc_mean']:>8.3f} "
            f"{r['sec_per_epoch']:>8.3f} {ratio:>6} {r['buffer_bytes'] / 1024:>6.0f} KiB {diverged:>9}"
        )
    return "\n".join(lines)


# -- train --------------------------------------------------------------------------------------------
def run_train(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch

    from . import distributed
    from .buffer import human_bytes
    from .device import get_device
    from .methods import METHOD
    from .runs import output_folder, write_csv

    METHOD.check("method", args.method)
    THREADS.check("threads", args.threads)
    torch.set_num_threads(args.threads)
    config = config_from(args, args.method)
    out = output_folder(args.out)  # before any training
    rank, world = distributed.init(get_device(config.device))
    try:
        history, summary = _train_once(args, config, out, rank, world)
    finally:
        distributed.teardown()  # the trainer (and its DDP wrapper) is gone by now
    if rank == 0:
        write_csv(history, out / "history.csv")
        write_csv(pd.DataFrame([{**summary, "ranks": world}]), out / "summary.csv")
        print(
            f"\n{config.dataset} · {config.model} · {args.method} · {config.epochs} epochs · "
            f"batch {config.batch_size} on {world} rank(s) · seed {args.seed} · buffer "
            f"{config.storage} {human_bytes(summary['buffer_bytes'])}"
        )
        print(history.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        if summary["diverged"]:
            print(
                f"\ndiverged in epoch {summary['diverged_epoch']}: the training loss became NaN or exploded; "
                "training stopped there (a smaller --lr may help)"
            )
        print(f"\nwrote {out / 'history.csv'}, {out / 'summary.csv'}")
    return DIVERGED if summary["diverged"] else 0


def _train_once(args: argparse.Namespace, config, out: Path, rank: int, world: int):
    """Load the data, train, and keep only the results, so that no trainer outlives the call.

    In one process the trainer writes `<out>/checkpoint.pt` after every epoch and, unless
    `--fresh`, continues from the one it finds there (refused if it is from other settings)."""
    from .experiments import Run, load_data, make_trainer
    from .runs import Interrupted

    data = load_data(config, root=args.data_root)
    trainer = make_trainer(args.method, config, args.seed, data=data, progress=rank == 0 and not args.no_progress)
    checkpoint = out / "checkpoint.pt" if world == 1 else None  # under DDP: no checkpoint
    if checkpoint is not None and checkpoint.exists() and not args.fresh:
        trainer.load_checkpoint(checkpoint)
    try:
        trainer.fit(checkpoint=checkpoint)
    except KeyboardInterrupt:
        kept = (
            f"the first {trainer.epoch} epoch(s) are kept in {checkpoint}; run the same command again to resume"
            if checkpoint is not None and trainer.epoch
            else "nothing is kept"
        )
        raise Interrupted(f"interrupted in epoch {trainer.epoch + 1} of {trainer.epochs}: {kept}") from None
    run = Run(args.method, args.seed, config, trainer)
    return run.history, run.summary()


# -- memory -------------------------------------------------------------------------------------------
def run_memory(args: argparse.Namespace) -> None:
    from .buffer import LAG, memory_table
    from .runs import output_file, write_csv

    LAG.check("lag", args.lag)
    Range(1, 1000, integer=True).check("k", args.k)
    if args.out:
        output_file(args.out)
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
        write_csv(table, args.out)
        print(f"\nwrote {args.out}")


# -- tune -----------------------------------------------------------------------------------------------
def run_tune(args: argparse.Namespace) -> int:
    import shlex

    import torch

    from .methods import METHOD
    from .runs import RunStore, output_folder, write_csv, write_text
    from .tuning import report, tune

    THREADS.check("threads", args.threads)
    Range(1, 1024, integer=True).check("jobs", args.jobs)
    torch.set_num_threads(args.threads)
    methods = _methods(args.methods)
    for m in methods:
        METHOD.check("method", m)
    base = config_from(args)  # the preset and the flags: the first trial of every method
    out = output_folder(args.out)  # before any training
    result = tune(
        methods,
        base,
        trials=args.trials,
        tuning_seeds=tuple(_int_list("tuning-seeds", args.tuning_seeds)),
        fresh_seeds=tuple(_int_list("fresh-seeds", args.fresh_seeds)),
        store=RunStore(args.store),
        jobs=args.jobs,
        progress=not args.no_progress,
    )
    command = "lstsd-edu " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    text = report(result, command)
    write_text(text, out / "tuning.md")
    write_csv(result.trials, out / "trials.csv")
    write_csv(result.fresh, out / "fresh.csv")
    print(text)
    print(f"wrote {out / 'tuning.md'}, {out / 'trials.csv'}, {out / 'fresh.csv'}")
    return DIVERGED if result.fresh.diverged.any() else 0


COMMANDS = {"compare": run_compare, "train": run_train, "tune": run_tune, "memory": run_memory}


def main(argv: list[str] | None = None) -> int:
    """Run the command; its exit code (see EXIT_CODES): bad input, Ctrl-C and warnings are one
    line each on stderr, never a traceback (`runs.command`)."""
    from .runs import command

    args = build_parser().parse_args(argv)
    return command("lstsd-edu", lambda: COMMANDS[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
