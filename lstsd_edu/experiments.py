"""Presets, and `train()` / `compare()` / `sweep()`: whole experiments that return DataFrames.

    config = preset("mnist1d", "lstsd", noise=0.3)              # LSTSD's tuned settings + overrides
    configs = {m: preset("mnist1d", m, noise=0.3) for m in ("ce", "lstsd")}
    summary, history = compare(["ce", "lstsd"], configs, seeds=[0, 1, 2])
    grid = sweep("lstsd", config, {"lag": [5, 10, 20], "w_long": [0.2, 0.4]}, seeds=[0])
    held_out = cross_val_probs("ce", config, folds=5)            # out-of-sample probabilities

Each dataset has a starting point (`PRESETS`): the data, the model, the epoch budget, and
optimiser and LSTSD settings from the toolkit's first sweeps (benchmarks/results/archive: chosen
on test accuracy, hence superseded). It is the first trial of every method's search. What to
train with is `preset(dataset, method)`: the starting point with that method's own settings as
`lstsd-edu tune` chose them, with the same budget for every method and on validation only (each
method's `tuned`, written from the tuning files; all of them gathered in `TUNED`). The paper's
own values are not known to us (we hold only its abstract), so none are claimed.

Long commands survive: `compare` and `sweep` go through `runs.execute`, which with a `store`
keeps each run on disk as it finishes, skips the runs already there, and turns Ctrl-C into
`runs.Interrupted` (see runs.py). A run whose training loss explodes or becomes NaN stops early
and is marked (`diverged`, `diverged_epoch` in its summary; see trainer.py); `table` leaves it
out of the means and counts it.

Fast mode — the one place it is read: `LSTSD_EDU_FAST=1` in the environment (CI sets it) shortens
every preset to a few epochs (and its lag and ramp to fit in them), so notebooks and smoke tests
run in seconds. Results in fast mode are not meant to be read as accuracies.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import Config, build_method
from .data import Dataset, load_dataset
from .device import seed_everything
from .errors import Choice, ConfigError, check_range
from .methods import METHOD, METHODS, Method
from .models import build_model
from .runs import RunStore, execute, set_default_run
from .trainer import Trainer, as_seed

__all__ = [
    "PRESETS",
    "TUNED",
    "Config",
    "OutOfSample",
    "Run",
    "compare",
    "cross_val_probs",
    "fast_mode",
    "fit_predicting",
    "load_data",
    "make_trainer",
    "outcome",
    "preset",
    "sweep",
    "table",
    "train",
]


def fast_mode() -> bool:
    """True when `LSTSD_EDU_FAST` is set to 1/true/yes (the only place the variable is read)."""
    return os.environ.get("LSTSD_EDU_FAST", "").strip().lower() in ("1", "true", "yes")


# Each dataset's starting point: the first trial of every method's search (module docstring).
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
    # CIFAR: the usual ResNet recipe — SGD 0.1, momentum 0.9, weight decay 5e-4,
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
    # text: the generated task, 1-D CNN over embeddings; the starting point from the toolkit's first
    # sweep (benchmarks/results/archive/sweep_textsynth.md: chosen on test accuracy, hence superseded
    # by the tuned settings; lr 0.3 diverged on clean labels; 16 epochs for the CLI)
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


PRESET = Choice(tuple(PRESETS))

# dataset -> method -> the settings `lstsd-edu tune` chose: every method's `tuned`, gathered
TUNED: dict[str, dict[str, dict]] = {
    dataset: {name: cls.tuned[dataset] for name, cls in METHODS.items() if dataset in cls.tuned}
    for dataset in sorted({dataset for cls in METHODS.values() for dataset in cls.tuned})
}
DATA_SETTINGS = ("dataset", "noise", "noise_kind", "val_fraction")  # the Config fields `load_data` reads


def load_data(config: Config, root=None):
    """The data a run with `config` trains on: the dataset with its label noise (noise seed 0:
    the same noisy labels for every method and seed) and its validation split (split seed 0)."""
    return load_dataset(config.dataset, config.noise, config.noise_kind, val_fraction=config.val_fraction, root=root)


def preset(dataset: str, method: str | None = None, **overrides) -> Config:
    """The dataset's defaults, then `method`'s tuned settings on that dataset (`Method.tuned`, if any),
    then `overrides` (Config fields; None values are ignored); validated."""
    PRESET.check("dataset", dataset)
    if method is not None:
        METHOD.check("method", method)
    unknown = sorted(set(overrides) - set(Config.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"preset overrides must be Config fields; got {', '.join(unknown)}")
    tuned = METHODS[method].tuned.get(dataset, {}) if method is not None else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    config = replace(PRESETS[dataset], **{**tuned, **given})  # an override wins over a tuned value
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
        """One row: the run's settings, its accuracies (`selection`), its cost, and whether it
        diverged (`diverged`; `diverged_epoch`, the epoch it stopped in, NaN if it did not). A
        diverged run's accuracies are NaN here (its history keeps what was measured)."""
        c, method, diverged_epoch = self.config, self.trainer.method, self.trainer.diverged_epoch
        chosen = selection(self.history)
        if diverged_epoch is not None:  # no mean or selection can pick these up by accident
            chosen = dict.fromkeys(chosen, math.nan)
        return dict(
            method=self.method,
            seed=self.seed,
            dataset=c.dataset,
            model=c.model,
            noise=c.noise,
            noise_kind=c.noise_kind,
            epochs=c.epochs,
            settings=settings_text(type(method), c),
            **chosen,
            seconds_per_epoch=self.history.seconds.median(),
            buffer_bytes=method.state_bytes,
            extra_forward_passes=method.extra_forward_passes,
            diverged=diverged_epoch is not None,
            diverged_epoch=math.nan if diverged_epoch is None else diverged_epoch,
        )


def settings_text(method: type[Method], config: Config) -> str:
    """The settings a method is tuned on (its `search_space`), as `name=value` pairs."""
    return " ".join(
        f"{name}={getattr(config, name):.4g}"
        if isinstance(getattr(config, name), float)
        else f"{name}={getattr(config, name)}"
        for name in method.search_space
    )


def selection(history: pd.DataFrame) -> dict:
    """What a run's history says, with the epoch chosen on validation only.

        final_test_acc        test accuracy after the last epoch
        selected_epoch        the epoch of best validation accuracy (the first, if tied): early
                              stopping as a user without clean labels would do it
        selected_val_acc      that validation accuracy (noisy labels, like the training labels)
        selected_test_acc     test accuracy at that epoch: the test set is read, not chosen on
        oracle_best_test_acc  the best test accuracy of any epoch — chosen by looking at the test
                              set, so an oracle: for reference, never a result

    Without a validation split the selected columns are NaN.
    """
    has_val = history.val_acc.notna().any()
    best = int(history.val_acc.to_numpy().argmax()) if has_val else None  # argmax: the first maximum
    return dict(
        final_test_acc=history.test_acc.iloc[-1],
        selected_epoch=history.epoch.iloc[best] if has_val else math.nan,
        selected_val_acc=history.val_acc.iloc[best] if has_val else math.nan,
        selected_test_acc=history.test_acc.iloc[best] if has_val else math.nan,
        oracle_best_test_acc=history.test_acc.max(),
    )


def make_trainer(
    method: str,
    config: Config,
    seed: int = 0,
    *,
    data=None,
    pretrain: Callable[[str, int], Run] | None = None,
    progress: bool = False,
    diagnostics: bool = False,
) -> Trainer:
    """The `Trainer` that `train` would run, not yet trained.

    The method is built from `config` and prepared first (`Method.prepare`): a method that needs
    another run before its own (Born-Again's first generation) gets it from `pretrain(method,
    seed)`, by default a full `train` on the same data and settings. Then everything random is
    seeded with the method's model seed (`Method.model_seed`, usually `seed`) and the model built.
    """
    METHOD.check("method", method)
    check_config(config)
    seed = as_seed("seed", seed)
    if data is None:
        data = load_data(config)
    elif not isinstance(data, Dataset):
        raise ConfigError(f"data must be a Dataset (or None: the config's dataset); got {type(data).__name__}")
    built = build_method(method, config)
    built.prepare(pretrain or (lambda name, s: train(name, config, s, progress=progress, data=data)), seed)
    model_seed = built.model_seed(seed)
    seed_everything(model_seed)
    model = build_model(
        config.model, data.input_shape, data.num_classes, **({"width": config.width} if config.width else {})
    )
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
        seed=model_seed,
        progress=progress,
        diagnostics=diagnostics,
        name=f"{method} seed {seed}",
    )


def check_config(config) -> Config:
    if not isinstance(config, Config):
        raise ConfigError(f"config must be a Config, e.g. preset('mnist1d'); got {type(config).__name__}")
    return config.validate()


def train(
    method: str, config: Config, seed: int = 0, *, progress: bool = False, diagnostics: bool = False, data=None
) -> Run:
    """Train one model with one method; the data's label noise is drawn with the noise seed 0
    (the same noisy labels for every method and seed), the model and shuffling with `seed`."""
    trainer = make_trainer(method, config, seed, data=data, progress=progress, diagnostics=diagnostics)
    trainer.fit()
    return Run(method, seed, config, trainer)


def fit_predicting(trainer: Trainer, split) -> torch.Tensor:
    """Train `trainer` to its last epoch, predicting every sample of `split` after each epoch.

    Returns log-probabilities (τ = 1) [E, N, C] on the CPU, row e after epoch e + 1. Predicting is
    done in eval mode and draws no random numbers, so the training is exactly `trainer.fit()`'s.
    """
    split = split.to(trainer.device)
    predictions = []
    while trainer.epoch < trainer.epochs:
        trainer.fit(trainer.epoch + 1)
        predictions.append(torch.log_softmax(trainer.predict(split), dim=1).cpu())  # [N, C]
    return torch.stack(predictions)


@dataclass
class OutOfSample:
    """Predicted probabilities for every training sample from a model that never trained on it."""

    probs: np.ndarray  # [N, C] each fold's model at its epoch chosen on validation
    last_probs: np.ndarray  # [N, C] each fold's model after its last epoch
    fold: np.ndarray  # [N] the fold sample i was held out in: its model trained on all the others
    selected_epochs: list[int]  # per fold, 1-based
    seconds: float  # training seconds of all the fold models (their histories' `seconds`, summed)


def cross_val_probs(method: str, config: Config, data=None, folds: int = 5, seed: int = 0) -> OutOfSample:
    """Out-of-sample probabilities on the training split by K-fold cross-validation (K = `folds`).

    The training split is cut into K folds, stratified by the given labels (sklearn's
    `StratifiedKFold`, shuffled with `seed`, as cleanlab's own cross-validation does). For each
    fold a model is trained with `method` and `config` (seed `seed`) on the other K − 1 folds,
    and predicts the held-out fold after every epoch; the prediction kept is the one at the
    epoch of best accuracy on the noisy validation split (`selection`, as for any run), and the
    last epoch's is kept beside it. Cost: K trainings on (K − 1)/K of the data. The validation
    and test splits are the data's own, unchanged.
    """
    from sklearn.model_selection import StratifiedKFold

    check_range("folds", folds, 2, 100, integer=True)
    if data is None:
        data = load_data(config)
    labels = data.train.y.cpu().numpy()  # [N]
    probs = np.zeros((len(labels), data.num_classes))
    last_probs, fold = probs.copy(), np.full(len(labels), -1)
    selected, seconds = [], 0.0
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
    for k, (trained_on, held_out) in enumerate(splits):
        index = torch.as_tensor(trained_on, device=data.train.y.device)
        trainer = make_trainer(method, config, seed, data=replace(data, train=data.train.subset(index)))
        held = data.train.subset(torch.as_tensor(held_out, device=data.train.y.device))
        log_probs = fit_predicting(trainer, held)  # [E, n_k, C]
        chosen = selection(trainer.history)["selected_epoch"]
        epoch = trainer.epochs if math.isnan(chosen) else int(chosen)  # no validation split: the last
        # softmax of log-probabilities, in float64: rows that sum to 1 to the last digit
        probs[held_out] = log_probs[epoch - 1].double().softmax(1).numpy()
        last_probs[held_out] = log_probs[-1].double().softmax(1).numpy()
        fold[held_out] = k
        selected.append(epoch)
        seconds += float(trainer.history.seconds.sum())
    return OutOfSample(probs, last_probs, fold, selected, seconds)


def compare(
    methods: Sequence[str],
    config: Config | Mapping[str, Config],
    seeds: Sequence[int] = (0, 1, 2),
    data: Dataset | None = None,
    *,
    progress: bool = True,
    jobs: int = 1,
    store: RunStore | str | Path | None = None,
    fresh: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train every method with every seed on the same data. Returns (summary, history).

    `config` is one Config for every method, or one per method (e.g. each method's tuned preset,
    `{m: preset(dataset, m) for m in methods}`), which must then agree on the data settings.
    `data` is the config's dataset (`load_data`) unless given (your own `Dataset`). Runs go seed
    by seed, method by method inside a seed, so that methods being compared are timed side by side
    under the same machine load. `jobs` > 1 trains that many runs at a time, each in its own
    process with this process's number of torch threads: the same numbers, sooner, on a machine
    with that many cores (the runs then share the machine with each other, which their `seconds`
    include). With a `store` (a folder or `runs.RunStore`), each run is kept there as it
    finishes, and the runs already there are not trained again (`fresh=True`: they are);
    Ctrl-C raises `runs.Interrupted`. See runs.py.
    """
    if isinstance(methods, str) or not isinstance(methods, Sequence):
        raise ConfigError(f"methods must be a list of method names such as ['ce', 'lstsd']; got {methods!r}")
    if not methods:
        raise ConfigError("methods must name at least one method; got none")
    for m in methods:
        METHOD.check("method", m)
    repeated = sorted({m for m in methods if list(methods).count(m) > 1})
    if repeated:
        raise ConfigError(f"methods must name each method once; got {', '.join(repeated)} more than once")
    if isinstance(config, Mapping) and set(methods) - set(config):
        missing = ", ".join(m for m in methods if m not in config)
        raise ConfigError(f"config must be one Config, or one per method; got none for {missing}")
    configs = {m: check_config(config[m] if isinstance(config, Mapping) else config) for m in methods}
    seeds = check_seeds(seeds)
    first = configs[methods[0]]
    differ = [f for f in DATA_SETTINGS if any(getattr(c, f) != getattr(first, f) for c in configs.values())]
    if differ:
        raise ConfigError(f"config must give every method the same data; the methods' configs differ in {differ}")
    check_range("jobs", jobs, 1, 1024, integer=True)
    if data is None:
        data = load_data(first)  # once, for every run (and, with jobs > 1, sent to each worker once)
    tasks = [(m, configs[m], seed) for seed in seeds for m in methods]
    results = execute(tasks, data, store=store, jobs=jobs, progress=progress, fresh=fresh)
    return pd.DataFrame([summary for summary, _ in results]), pd.concat([h for _, h in results], ignore_index=True)


def check_seeds(seeds) -> list[int]:
    """`seeds` as a list of distinct seeds, else a ConfigError naming `seeds`."""
    if isinstance(seeds, str) or not isinstance(seeds, Sequence) or not seeds:
        raise ConfigError(f"seeds must be a non-empty list of integers such as [0, 1, 2]; got {seeds!r}")
    seeds = [as_seed("seeds", s) for s in seeds]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ConfigError(f"seeds must be distinct; got {', '.join(map(str, repeated))} more than once")
    return seeds


def outcome(method: str, config: Config, seed: int, data: Dataset | None = None) -> tuple[dict, pd.DataFrame]:
    """Train one run and keep what a comparison needs: its summary row and its history (with
    `method` and `seed` as its first columns). What `runs.execute` calls for each run."""
    run = train(method, config, seed, data=data)
    history = run.history
    history.insert(0, "seed", seed)
    history.insert(0, "method", method)
    return run.summary(), history


set_default_run(outcome)  # how runs.execute trains a task (tuning.tune's runs too)


def table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per method, over seeds: mean and sample standard deviation (0 for one seed) of the test
    accuracy at the epoch chosen on validation (`selected_acc_*`) and after the last epoch
    (`final_acc_*`), the mean selected validation accuracy, the median seconds per epoch, and
    those seconds relative to `ce` if it ran.

    Diverged runs (`diverged` in the summary) are left out of the accuracy means and standard
    deviations — a diverged run's accuracy says nothing about the method at sane settings — and
    counted in `diverged`; a method whose every run diverged gets NaN accuracies."""
    diverged = summary["diverged"].astype(bool) if "diverged" in summary else pd.Series(False, index=summary.index)
    accuracies = ["selected_test_acc", "final_test_acc", "selected_val_acc"]
    kept = summary.assign(diverged=diverged)
    kept.loc[diverged, accuracies] = math.nan
    g = kept.groupby("method", sort=False)

    def std(column):
        return g[column].std(ddof=1).fillna(0.0).where(g[column].count() > 0)

    out = pd.DataFrame(
        {
            "selected_acc_mean": g.selected_test_acc.mean(),
            "selected_acc_std": std("selected_test_acc"),
            "final_acc_mean": g.final_test_acc.mean(),
            "final_acc_std": std("final_test_acc"),
            "val_acc_mean": g.selected_val_acc.mean(),
            "seeds": g.seed.nunique(),
            "diverged": g.diverged.sum().astype(int),
            "sec_per_epoch": g.seconds_per_epoch.median(),
            "buffer_bytes": g.buffer_bytes.first(),
        }
    )
    if "ce" in out.index:
        # the ratio of medians is taken per seed (same-run pairs), then its median over seeds
        per_seed = summary.pivot_table(index="seed", columns="method", values="seconds_per_epoch")
        out["cost_vs_ce"] = (per_seed.div(per_seed["ce"], axis=0)).median()
    return out


def sweep(
    method: str,
    config: Config,
    grid: dict[str, Sequence],
    seeds: Sequence[int] = (0,),
    data: Dataset | None = None,
    *,
    progress: bool = True,
    jobs: int = 1,
    store: RunStore | str | Path | None = None,
    fresh: bool = False,
) -> pd.DataFrame:
    """Train `method` at every point of `grid` (Config field -> values), once per seed.

    Returns one row per point × seed: the grid values and the run's summary. Every run trains on
    `data` if given; otherwise on its own config's dataset, so a grid may vary the data settings
    (`noise`, `val_fraction`, …). `jobs`, `store` and `fresh` as for `compare`.
    """
    import itertools

    METHOD.check("method", method)
    config, seeds = check_config(config), check_seeds(seeds)
    check_range("jobs", jobs, 1, 1024, integer=True)
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"grid must map Config fields to lists of values, e.g. {{'lag': [5, 10]}}; got {grid!r}")
    for name, values in grid.items():
        if name not in Config.__dataclass_fields__:
            raise ConfigError(f"grid keys must be Config fields; got {name!r}")
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise ConfigError(f"grid[{name!r}] must be a non-empty list of values; got {values!r}")
    varied = [name for name in grid if name in DATA_SETTINGS]
    if data is not None and varied:
        raise ConfigError(f"grid cannot vary {', '.join(varied)} when data is given: every run trains on that data")
    if data is None and not varied:
        data = load_data(config)  # the same for every point: loaded once
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    configs = [replace(config, **point).validate() for point in points]
    tasks = [(method, c, seed) for c in configs for seed in seeds]
    results = execute(tasks, data, store=store, jobs=jobs, progress=progress, desc="sweep", fresh=fresh)
    at = [point for point in points for _ in seeds]  # the grid point of each task
    return pd.DataFrame([{**point, **summary} for point, (summary, _) in zip(at, results)])


def train_and_report(method: str, config: Config, seed: int = 0, data=None) -> dict:
    """`train` in this process (one rank of many under `distributed.spawn` or torchrun, or alone);
    returns what a comparison of runs needs: history, the buffer's records and the model's parameters."""
    run = train(method, config, seed, data=data)
    trainer = run.trainer
    return {
        "history": run.history,
        "buffer": {k: v.cpu() for k, v in trainer.method.state_dict().get("buffer", {}).items()},
        "model": {k: v.cpu() for k, v in trainer.model.state_dict().items()},
        "rank": trainer.replicas.rank,
    }
