"""Presets, and `compare()` / `sweep()`: whole experiments that return DataFrames.

    config = preset("mnist1d", noise=0.3)                       # documented defaults + overrides
    summary, history = compare(["ce", "lstsd"], config, seeds=[0, 1, 2])
    grid = sweep("lstsd", config, {"lag": [5, 10, 20], "w_long": [0.2, 0.4]}, seeds=[0])

Each dataset has documented defaults (`PRESETS`): the model, the optimiser settings and the LSTSD
hyperparameters. The LSTSD defaults for MNIST-1D were chosen by the sweeps recorded in
`benchmarks/results/sweep_mnist1d.md` (commands and tables there); the paper's own values are not
known to us (we hold only its abstract), so none are claimed.

Fast mode — the one place it is read: `LSTSD_EDU_FAST=1` in the environment (CI sets it) shortens
every preset to a few epochs (and its lag and ramp to fit in them), so notebooks and smoke tests
run in seconds. Results in fast mode are not meant to be read as accuracies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import pandas as pd

from .data import load_dataset
from .errors import ConfigError, check_choice, check_range
from .methods import METHODS, BornAgain, SampleDistillation, build_method
from .models import build_model
from .trainer import Trainer, seed_everything


def fast_mode() -> bool:
    """True when `LSTSD_EDU_FAST` is set to 1/true/yes (the only place the variable is read)."""
    return os.environ.get("LSTSD_EDU_FAST", "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Config:
    """Everything one training run needs besides the method name and the seed."""

    dataset: str = "mnist1d"
    model: str = "cnn1d"
    noise: float = 0.0
    noise_kind: str = "symmetric"
    epochs: int = 60
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    # LSTSD (also used by `short` and `long`, see methods.py)
    lag: int = 10
    long_mode: str = "sliding"
    w_long: float = 0.4
    w_short: float = 0.4
    temperature: float = 1.0
    ramp: int = 0  # epochs over which the distillation weights grow linearly from 0
    storage: str = "dense"  # buffer records: dense (all C classes) or topk (the k largest), buffer.py
    k: int = 5  # classes a topk record keeps
    width: int | None = None  # channels of a CNN, hidden units of the MLP (None: the model's own)
    label_smoothing: float = 0.1
    device: str = "auto"

    def validate(self) -> Config:
        from .data import LOADERS, NOISE_KINDS
        from .models import MODELS
        from .trainer import DEVICES

        check_choice("dataset", self.dataset, tuple(LOADERS))
        check_choice("model", self.model, tuple(MODELS))
        check_range("noise", self.noise, 0.0, 1.0, high_inclusive=False)
        check_choice("noise_kind", self.noise_kind, NOISE_KINDS)
        check_range("epochs", self.epochs, 1, 100_000, integer=True)
        check_range("batch_size", self.batch_size, 1, 1 << 20, integer=True)
        check_choice("device", self.device, DEVICES)
        check_choice("storage", self.storage, ("dense", "topk"))
        check_range("k", self.k, 1, 1_000_000, integer=True)
        # builds (and so validates) the LSTSD hyperparameters even if only `ce` will run
        SampleDistillation(self.w_long, self.w_short, self.lag, self.long_mode, self.temperature, ramp=self.ramp)
        return self


# Documented defaults per dataset; see the module docstring for how they were chosen.
PRESETS: dict[str, Config] = {
    "mnist1d": Config(
        dataset="mnist1d",
        model="cnn1d",
        epochs=60,
        batch_size=128,
        lr=0.1,
        weight_decay=5e-4,
        lag=20,
        long_mode="sliding",
        w_long=0.3,
        w_short=0.5,
        temperature=2.0,
        ramp=20,
    ),
    "digits": Config(
        dataset="digits",
        model="cnn2d",
        epochs=60,
        batch_size=64,
        lr=0.05,
        weight_decay=5e-4,
        lag=20,
        long_mode="sliding",
        w_long=0.3,
        w_short=0.5,
        temperature=2.0,
        ramp=20,
    ),
    # CIFAR (issue #7): the usual ResNet recipe — SGD 0.1, momentum 0.9, weight decay 5e-4,
    # batch 128, 200 epochs, the trainer's cosine schedule; on CUDA the trainer adds bf16 autocast
    # and channels_last. The LSTSD values are MNIST-1D's, not tuned on CIFAR (no GPU run yet).
    "cifar10": Config(
        dataset="cifar10",
        model="resnet32",
        epochs=200,
        batch_size=128,
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        lag=20,
        long_mode="sliding",
        w_long=0.3,
        w_short=0.5,
        temperature=2.0,
        ramp=20,
    ),
    "cifar100": Config(
        dataset="cifar100",
        model="resnet32",
        epochs=200,
        batch_size=128,
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        lag=20,
        long_mode="sliding",
        w_long=0.3,
        w_short=0.5,
        temperature=2.0,
        ramp=20,
    ),
    # text (issue #6): the generated task, 1-D CNN over embeddings; chosen by the sweep in
    # benchmarks/results/sweep_textsynth.md (lr 0.3 diverged on clean labels; 16 epochs for the CLI)
    "textsynth": Config(
        dataset="textsynth",
        model="textcnn",
        epochs=16,
        batch_size=128,
        lr=0.2,
        weight_decay=5e-4,
        lag=8,
        long_mode="sliding",
        w_long=0.6,
        w_short=0.2,
        temperature=1.0,
        ramp=8,
    ),
}
# real corpora (need a connection once): textsynth's recipe, shorter; a starting point, not tuned
PRESETS.update(
    {
        name: replace(PRESETS["textsynth"], dataset=name, epochs=10, lag=3, ramp=4)
        for name in ("ag_news", "sst2", "imdb")
    }
)
FAST_EPOCHS = 4


def preset(dataset: str, **overrides) -> Config:
    """The dataset's defaults with `overrides` applied (None values are ignored); validated."""
    check_choice("dataset", dataset, tuple(PRESETS))
    config = replace(PRESETS[dataset], **{k: v for k, v in overrides.items() if v is not None})
    if fast_mode() and overrides.get("epochs") is None:
        # a few epochs, with lag and ramp shrunk to fit, so that both teachers still appear
        config = replace(
            config,
            epochs=min(config.epochs, FAST_EPOCHS),
            lag=overrides.get("lag") or min(config.lag, FAST_EPOCHS // 2),
            ramp=overrides.get("ramp") if overrides.get("ramp") is not None else min(config.ramp, FAST_EPOCHS // 2),
        )
    return config.validate()


@dataclass
class Run:
    """The outcome of one training run."""

    method: str
    seed: int
    config: Config
    trainer: Trainer = field(repr=False)

    @property
    def history(self) -> pd.DataFrame:
        return self.trainer.history

    def summary(self) -> dict:
        h = self.trainer.history
        c = self.config
        return dict(
            method=self.method,
            seed=self.seed,
            dataset=c.dataset,
            model=c.model,
            noise=c.noise,
            noise_kind=c.noise_kind,
            epochs=c.epochs,
            final_test_acc=h.test_acc.iloc[-1],
            best_test_acc=h.test_acc.max(),
            seconds_per_epoch=h.seconds.median(),
            buffer_bytes=self.trainer.method.state_bytes,
            extra_forward_passes=self.trainer.method.extra_forward_passes,
        )


def make_trainer(
    method: str,
    config: Config,
    seed: int = 0,
    *,
    data=None,
    teacher=None,
    progress: bool = False,
    diagnostics: bool = False,
) -> Trainer:
    """The `Trainer` `train` would run (model initialised with `seed`), not yet trained.

    `born_again` needs its generation-1 model as `teacher` (`train` trains one first).
    """
    check_choice("method", method, METHODS)
    if data is None:
        data = load_dataset(config.dataset, config.noise, config.noise_kind)
    seed_everything(seed)
    model = build_model(
        config.model, data.input_shape, data.num_classes, **({"width": config.width} if config.width else {})
    )
    built = build_method(
        method,
        w_long=config.w_long,
        w_short=config.w_short,
        lag=config.lag,
        long_mode=config.long_mode,
        temperature=config.temperature,
        ramp=config.ramp,
        label_smoothing=config.label_smoothing,
        storage=config.storage,
        k=config.k,
    )
    if teacher is not None:
        built.set_teacher(teacher)
    return Trainer(
        model,
        built,
        data,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        device=config.device,
        seed=seed,
        progress=progress,
        diagnostics=diagnostics,
    )


def train(
    method: str, config: Config, seed: int = 0, *, progress: bool = False, diagnostics: bool = False, data=None
) -> Run:
    """Train one model with one method; the data's label noise is drawn with the noise seed 0
    (the same noisy labels for every method and seed), the model and shuffling with `seed`."""
    check_choice("method", method, METHODS)
    if data is None:
        data = load_dataset(config.dataset, config.noise, config.noise_kind)
    # Born-Again trains twice (methods.BornAgain): generation 1 is this seed's CE run; generation 2,
    # trained below, starts from a fresh initialisation drawn with another seed and learns from it.
    first = train("ce", config, seed, progress=progress, data=data) if method == "born_again" else None
    init_seed = seed if first is None else BornAgain.second_generation_seed(seed)
    trainer = make_trainer(
        method,
        config,
        init_seed,
        data=data,
        progress=progress,
        diagnostics=diagnostics,
        teacher=None if first is None else first.trainer.model,
    )
    if first is not None:
        trainer.method.first_generation = first
    trainer.fit()
    if first is not None:  # Born-Again's price per epoch of budget: generation 1's epoch + generation 2's
        for row, first_row in zip(trainer.rows, first.trainer.rows):
            row["seconds"] += first_row["seconds"]
    return Run(method, seed, config, trainer)


def compare(
    methods: list[str], config: Config, seeds: list[int] = (0, 1, 2), *, progress: bool = True, jobs: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train every method with every seed on the same data. Returns (summary, history).

    Runs go seed by seed, method by method inside a seed, so that methods being compared are
    timed side by side under the same machine load. `jobs` > 1 trains that many runs at a time,
    each in its own process with this process's number of torch threads: the same numbers,
    sooner, on a machine with that many cores (the runs then share the machine with each other,
    which their `seconds` include).
    """
    for m in methods:
        check_choice("method", m, METHODS)
    if not methods:
        raise ConfigError("methods must name at least one method; got none")
    check_range("jobs", jobs, 1, 1024, integer=True)
    from tqdm.auto import tqdm

    runs = [(m, seed) for seed in seeds for m in methods]
    data = load_dataset(config.dataset, config.noise, config.noise_kind)  # and cached, before any worker reads it
    if jobs == 1:
        results = [
            _outcome(train(m, config, seed, data=data)) for m, seed in tqdm(runs, desc="runs", disable=not progress)
        ]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        import torch

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_train_in_worker, m, config, seed, torch.get_num_threads()) for m, seed in runs]
            for _ in tqdm(as_completed(futures), total=len(futures), desc="runs", disable=not progress):
                pass
            results = [future.result() for future in futures]  # in the order of `runs`
    history = pd.concat([h for _, h in results], ignore_index=True)
    history = history[["method", "seed"] + [c for c in history.columns if c not in ("method", "seed")]]
    return pd.DataFrame([summary for summary, _ in results]), history


def _outcome(run: Run) -> tuple[dict, pd.DataFrame]:
    """What `compare` keeps of a run: its summary row and its history."""
    return run.summary(), run.history.assign(method=run.method, seed=run.seed)


def _train_in_worker(method: str, config: Config, seed: int, threads: int) -> tuple[dict, pd.DataFrame]:
    """One run of `compare(jobs > 1)`, in a worker process."""
    import torch

    torch.set_num_threads(threads)
    return _outcome(train(method, config, seed))


def table(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds per method, plus seconds per epoch relative to `ce` if present."""
    g = summary.groupby("method", sort=False)
    out = pd.DataFrame(
        {
            "final_acc_mean": g.final_test_acc.mean(),
            "final_acc_std": g.final_test_acc.std(ddof=0),
            "best_acc_mean": g.best_test_acc.mean(),
            "sec_per_epoch": g.seconds_per_epoch.median(),
            "buffer_bytes": g.buffer_bytes.first(),
        }
    )
    if "ce" in out.index:
        # the ratio of medians is taken per seed (same-run pairs), then its median over seeds
        per_seed = summary.pivot_table(index="seed", columns="method", values="seconds_per_epoch")
        out["cost_vs_ce"] = (per_seed.div(per_seed["ce"], axis=0)).median()
    return out


# ---------------------------------------------------------------------------------------------
# Buffer memory at scale (issue #7)
# ---------------------------------------------------------------------------------------------
# A dense record is C fp16 values; the buffer keeps one per sample per slot — L + 1 slots in
# `sliding` mode, 3 in `phase` mode — so N · slots · (2C + 2) bytes with the int16 stamp. A
# `topk` record keeps k values and k int16 class ids: N · slots · (4k + 2) bytes. Under DDP
# every rank holds the whole buffer (distributed.py), so these are bytes *per GPU*.
SCALES = {"CIFAR-100": (50_000, 100), "ImageNet-1k": (1_281_167, 1000)}


def memory_table(lag: int = 10, k: int = 10, scales: dict[str, tuple[int, int]] = SCALES) -> pd.DataFrame:
    """Buffer bytes for each problem (N samples, C classes) and layout, by `buffer.buffer_bytes`.

    Layouts: dense and top-k storage, each with `sliding` (lag + 1 slots) and `phase` (3 slots).
    `vs_dense_sliding` is the fraction of the dense sliding buffer a layout needs.
    """
    from .buffer import SnapshotBuffer, buffer_bytes

    rows = []
    for problem, (n, c) in scales.items():
        for storage in ("dense", "topk"):
            for mode in ("sliding", "phase"):
                slots = SnapshotBuffer(1, 2, lag, mode).slots  # the buffer's own slot rule
                rows.append(
                    dict(
                        problem=problem,
                        samples=n,
                        classes=c,
                        storage=storage,
                        k=k if storage == "topk" else c,
                        mode=mode,
                        slots=slots,
                        bytes=buffer_bytes(n, c, slots, storage, k),
                    )
                )
    table = pd.DataFrame(rows)
    dense_sliding = table[(table.storage == "dense") & (table["mode"] == "sliding")].set_index("problem").bytes
    table["vs_dense_sliding"] = table.bytes / table.problem.map(dense_sliding)
    table["memory"] = table.bytes.map(human_bytes)
    return table


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; binary units."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def sweep(
    method: str, config: Config, grid: dict[str, list], seeds: list[int] = (0,), *, progress: bool = True
) -> pd.DataFrame:
    """Train `method` at every point of `grid` (Config field -> values), once per seed.

    Returns one row per point × seed: the grid values and the run's summary.
    """
    import itertools

    from tqdm.auto import tqdm

    data = load_dataset(config.dataset, config.noise, config.noise_kind)
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    rows = []
    for point, seed in tqdm([(p, s) for p in points for s in seeds], desc="sweep", disable=not progress):
        run = train(method, replace(config, **point).validate(), seed, data=data)
        rows.append({**point, **run.summary()})
    return pd.DataFrame(rows)
