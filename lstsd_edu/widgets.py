"""Interactive views: ipywidgets controls wired to the pure figures of `plots.py`.

Every view is the same small machine:

    controls (view.sliders)  --value changes-->  view.render(**values)  ->  (figure, html)
                                                 |                          |
                                     an Output area shows the figure,   an HTML widget the table

`render` calls a function of `plots.py` (and, for the playground, the trainer); the view keeps
the last figure (`view.figure`), the last result (`view.result`) and how long the update took
(`view.seconds`), so a test or a notebook cell can move a slider from Python

    view.sliders["lag"].value = 7        # observers fire: retrain if needed, redraw
    view.figure, view.result, view.seconds

and check what changed. Sliders use `continuous_update=False`: a view updates when the slider is
released, not on every pixel of a drag. Figures are drawn with the inline backend (no ipympl) and
closed after display, so nothing is shown twice.

A widget needs a running kernel; a notebook read on the web has none. So a chapter leaves a
static picture of the view's current state under the widget cell:

    view = Playground()
    view                                 # the live widget (needs a kernel)
    view.snapshot()                      # a PNG of what it shows now, kept in the notebook

    ScheduleView()                       01: the buffer's ring of slots for a lag and a mode
    DivergenceExplorer(divergences)      05: per-sample divergences, epoch slider, sample choice
    Playground()                         06: retrain CE and LSTSD live; `seed_map` over seeds

The playground keeps every run it trained (`train_histories`) and, on a machine with two cores
or more, trains two runs at a time: one in this process, one in a helper process.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Image, clear_output, display

from .buffer import LAG, MODES, buffer_bytes
from .data import Dataset, load_dataset
from .diagnostics import SCORES, milestones, mislabel_auc, seed_gain, teacher_schedule
from .errors import ConfigError, Range, check_choice
from .experiments import Config, check_config, fast_mode, preset, selection, train
from .plots import explorer_figure, memorisation_figure, schedule_figure
from .trainer import as_seed

WIDE = widgets.Layout(width="320px")
STYLE = {"description_width": "110px"}


class View:
    """Controls, an HTML table and an Output area holding the figure they drew.

    Subclasses define `render(**values) -> (figure or None, html)`; None keeps the old figure
    (e.g. when the settings are invalid and the table explains why).
    """

    def __init__(self, sliders: dict[str, widgets.ValueWidget]) -> None:
        self.sliders = sliders
        self.table = widgets.HTML()
        self.output = widgets.Output()
        self.figure: plt.Figure | None = None
        self.result = None
        self.seconds: float | None = None  # wall time of the last update, compute + draw
        controls = widgets.HBox(list(sliders.values()), layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox([controls, self.table, self.output])
        for control in sliders.values():
            control.observe(self._changed, names="value")
        self.update()

    def values(self) -> dict:
        return {name: control.value for name, control in self.sliders.items()}

    def render(self, **values) -> tuple[plt.Figure | None, str]:
        raise NotImplementedError

    def update(self) -> None:
        """Render with the controls' current values and show the result."""
        start = time.perf_counter()
        figure, html = self.render(**self.values())  # outside `with output`: errors propagate
        self.table.value = html
        if figure is not None:
            with self.output:
                clear_output(wait=True)
                display(figure)
            plt.close(figure)  # shown once, inside the Output; the object stays readable
            self.figure = figure
        self.seconds = time.perf_counter() - start

    def _changed(self, change) -> None:
        self.update()

    def snapshot(self, path: str | Path | None = None, dpi: int = 100) -> Image:
        """The figure the view shows now, as a PNG image (`IPython.display.Image`).

        Left as a cell's output under the widget, it is what a reader without a kernel sees (a
        notebook on the web); it needs no front end, so it renders in tests and in nbconvert too.
        With `path`, the PNG is also written there.
        """
        if self.figure is None:
            raise ConfigError("snapshot needs a figure; the view has none yet (see view.table for why)")
        png = io.BytesIO()
        self.figure.savefig(png, format="png", dpi=dpi, bbox_inches="tight")
        if path is not None:
            Path(path).write_bytes(png.getvalue())
        return Image(data=png.getvalue(), format="png")

    def _ipython_display_(self) -> None:
        display(self.widget)


def _slider(kind, description: str, value, low, high, step) -> widgets.ValueWidget:
    return kind(
        value=value,
        min=low,
        max=high,
        step=step,
        description=description,
        continuous_update=False,
        layout=WIDE,
        style=STYLE,
    )


def _html_table(frame: pd.DataFrame, caption: str = "") -> str:
    head = f"<b>{caption}</b>" if caption else ""
    return head + frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0)


# ---------------------------------------------------------------------------------------------
# 01 — the ring of slots
# ---------------------------------------------------------------------------------------------
class ScheduleView(View):
    """The buffer's slots over `epochs` epochs for a lag and a long-term mode, with its memory
    for a training set of `num_samples` × `num_classes` (fp16 dense records)."""

    def __init__(
        self, lag: int = 3, mode: str = "sliding", epochs: int = 12, num_samples: int = 4000, num_classes: int = 10
    ) -> None:
        LAG.check("lag", lag)
        check_choice("mode", mode, MODES)
        Range(1, 1000, integer=True).check("epochs", epochs)
        Range(1, 1 << 40, integer=True).check("num_samples", num_samples)
        Range(2, 1 << 30, integer=True).check("num_classes", num_classes)
        self.epochs, self.num_samples, self.num_classes = epochs, num_samples, num_classes
        super().__init__(
            {
                "lag": _slider(widgets.IntSlider, "lag", lag, 1, max(8, lag), 1),
                "mode": widgets.Dropdown(
                    options=["sliding", "phase"], value=mode, description="mode", layout=WIDE, style=STYLE
                ),
            }
        )

    def render(self, lag: int, mode: str) -> tuple[plt.Figure, str]:
        schedule = teacher_schedule(lag, mode, self.epochs)
        slots = int(schedule.slot.max()) + 1
        self.result = schedule
        memory = buffer_bytes(self.num_samples, self.num_classes, slots)
        html = (
            f"{mode}, lag {lag}: <b>{slots} slots</b>; for {self.num_samples:,} samples × "
            f"{self.num_classes} classes that is <b>{memory:,} bytes</b>"
        )
        return schedule_figure(schedule, title=f"{mode} mode, lag {lag}"), html


# ---------------------------------------------------------------------------------------------
# 05 — the per-sample divergence explorer
# ---------------------------------------------------------------------------------------------
class DivergenceExplorer(View):
    """Epoch slider, sample number and score over `Trainer.divergences` (see `explorer_figure`).

    The table shows the chosen sample at the chosen epoch, and each score's mislabel ROC AUC at
    that epoch. `milestones` (from `diagnostics.milestones(config)`) are marked over the epochs.
    """

    def __init__(
        self,
        divergences: pd.DataFrame,
        sample: int | None = None,
        epoch: int | None = None,
        score: str = "nll_long",
        milestones: dict[str, int] | None = None,
    ) -> None:
        needed = ["epoch", "index", "label", "clean_label", "flipped", "student_agrees"]
        if not isinstance(divergences, pd.DataFrame):
            got = type(divergences).__name__
        elif divergences.empty or not set(needed) <= set(divergences):
            got = f"{len(divergences)} rows with columns {', '.join(map(str, divergences.columns)) or 'none'}"
        else:
            got = None
        if got is not None:
            raise ConfigError(
                "divergences must be the frame of Trainer.divergences (train with diagnostics=True): rows with "
                f"columns {', '.join(needed)} and the scores; got {got}"
            )
        self.divergences, self.milestones = divergences, milestones
        self.auc = mislabel_auc(divergences)
        epochs = sorted(divergences.epoch.unique())
        flipped = divergences.loc[divergences.flipped, "index"]
        if sample is None:  # start on a flipped sample: the interesting kind
            sample = int(flipped.iloc[0]) if len(flipped) else 0
        scores = [s for s in SCORES if s in divergences.columns]
        check_choice("score", score, scores)
        Range(0, int(divergences["index"].max()), integer=True).check("sample", sample)
        if epoch is not None:
            Range(int(epochs[0]), int(epochs[-1]), integer=True).check("epoch", epoch)
        super().__init__(
            {
                "epoch": _slider(widgets.IntSlider, "epoch", epoch or epochs[-1], epochs[0], epochs[-1], 1),
                "sample": widgets.BoundedIntText(
                    value=sample,
                    min=0,
                    max=int(divergences["index"].max()),
                    description="sample",
                    continuous_update=False,
                    layout=WIDE,
                    style=STYLE,
                ),
                "score": widgets.Dropdown(options=scores, value=score, description="score", layout=WIDE, style=STYLE),
            }
        )

    def render(self, epoch: int, sample: int, score: str) -> tuple[plt.Figure, str]:
        frame = self.divergences
        row = frame[(frame.epoch == epoch) & (frame["index"] == sample)]
        columns = ["label", "clean_label", "flipped", *[s for s in SCORES if s in frame.columns], "student_agrees"]
        self.result = row[["epoch", "index", *columns]]
        auc = self.auc[self.auc.epoch == epoch][["score", "auc"]].set_index("score").T
        html = _html_table(self.result, f"sample {sample} at epoch {epoch}") + _html_table(
            auc, "mislabel ROC AUC at this epoch"
        )
        return explorer_figure(frame, epoch, sample, score, self.milestones), html


# ---------------------------------------------------------------------------------------------
# 06 — the playground
# ---------------------------------------------------------------------------------------------
PLAYGROUND_TRAIN_SIZE = 2000  # training samples the playground's own setting trains on
FAST_PLAYGROUND_TRAIN_SIZE = 500  # the same in fast mode: a run in a fraction of a second


def playground_train_size() -> int:
    """How many training samples the playground's own setting trains on: `PLAYGROUND_TRAIN_SIZE`,
    or in fast mode (`experiments.fast_mode`) `FAST_PLAYGROUND_TRAIN_SIZE`, so that a chapter's
    seed map of a few dozen runs stays short under CI and the browser test."""
    return FAST_PLAYGROUND_TRAIN_SIZE if fast_mode() else PLAYGROUND_TRAIN_SIZE


def playground_config() -> Config:
    """The playground's own setting: 30 %-noisy MNIST-1D, the preset's 1-D CNN, 30 epochs, lag 8,
    ramp 8 (on the first `playground_train_size()` training samples, see `Playground`).

    Chosen by measuring, so that the effect shows at once and a slider change retrains in seconds
    on one CPU core: on 2,000 samples CE memorises the flipped labels (train accuracy near 1) and
    its test accuracy falls from its epoch chosen on validation to its last, while LSTSD's does
    not. In fast mode (`experiments.fast_mode`) it is the preset's short run instead.
    """
    if fast_mode():  # the preset's few epochs, lag and ramp shrunk to fit
        return preset("mnist1d", noise=0.3)
    return preset("mnist1d", noise=0.3, epochs=30, lag=8, ramp=8)


@lru_cache(maxsize=8)
def _dataset(name: str, noise: float, noise_kind: str, val_fraction: float, train_size: int | None) -> Dataset:
    data = load_dataset(name, noise, noise_kind, val_fraction=val_fraction)
    if train_size is not None and train_size < len(data.train):  # the set's order is already random
        data = replace(data, train=data.train.subset(torch.arange(train_size)))
    return data


_HISTORIES: dict[tuple, pd.DataFrame] = {}  # every run trained here: (method, config, seed, train_size)
_HELPER: ProcessPoolExecutor | None = None  # one more process to train in, started on first need


def _train_one(method: str, config: Config, seed: int, train_size: int | None) -> pd.DataFrame:
    data = _dataset(config.dataset, config.noise, config.noise_kind, config.val_fraction, train_size)
    run = train(method, config, seed, data=data, diagnostics=True)
    return run.history.assign(method=method, seed=seed)


def _helper() -> ProcessPoolExecutor | None:
    """A second process that trains runs next to this one, on a machine with two cores or more
    (None on one core); it trains on one thread and lives as long as this process.

    On Linux it is forked: it starts at once, shares what this process has loaded, and never
    re-runs the calling script. Elsewhere it is spawned (a fresh interpreter, Python's default
    there), so a script, unlike a notebook, needs the usual `if __name__ == "__main__":` guard.
    """
    global _HELPER
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if _HELPER is None and cores >= 2:
        start = "fork" if sys.platform.startswith("linux") else "spawn"
        context = multiprocessing.get_context(start)
        _HELPER = ProcessPoolExecutor(1, mp_context=context, initializer=torch.set_num_threads, initargs=(1,))
    return _HELPER


def train_histories(tasks: list[tuple], desc: str | None = None) -> list[pd.DataFrame]:
    """Histories of the runs `tasks` = [(method, config, seed, train_size), ...], with the
    memorisation columns (`diagnostics=True`); `train_size` keeps the first that many training
    samples (None: all).

    Every run is kept, so a setting seen before is instant (`Config` is a frozen dataclass: its
    own key). Runs not seen before are shared between this process and a helper process
    (`_helper`), each on one thread: a slider that retrains CE and LSTSD waits for about one run,
    not two. `desc` shows a progress bar with that label.
    """
    from tqdm.auto import tqdm

    global _HELPER
    missing = [task for task in dict.fromkeys(tasks) if task not in _HISTORIES]
    helper = _helper() if len(missing) > 1 else None
    bar = tqdm(total=len(missing), desc=desc, disable=desc is None or not missing, leave=False)
    threads = torch.get_num_threads()
    if helper is not None:
        torch.set_num_threads(1)  # two processes on one thread each: no core is oversubscribed
    try:
        futures = {task: helper.submit(_train_one, *task) for task in missing[1::2]} if helper else {}
        for task in missing:
            if task not in futures:
                _HISTORIES[task] = _train_one(*task)
                bar.update()
        for task, future in futures.items():
            try:
                _HISTORIES[task] = future.result()
            except BrokenProcessPool:  # the helper died (out of memory, killed): train it here
                _HISTORIES[task] = _train_one(*task)
                _HELPER = None  # and start a new one next time
            bar.update()
    finally:
        torch.set_num_threads(threads)
        bar.close()
    return [_HISTORIES[task] for task in tasks]


def train_history(method: str, config: Config, seed: int = 0, train_size: int | None = None) -> pd.DataFrame:
    """History of one run, from the cache or trained (see `train_histories`)."""
    return train_histories([(method, config, seed, train_size)])[0]


def runs_trained() -> int:
    """How many runs the cache holds: a setting seen before adds none."""
    return len(_HISTORIES)


def _summary(history: pd.DataFrame) -> dict:
    chosen = selection(history)
    return dict(
        method=history.method.iloc[0],
        selected_epoch=chosen["selected_epoch"],
        selected_test_acc=chosen["selected_test_acc"],
        final_test_acc=chosen["final_test_acc"],
        final_train_acc=history.train_acc.iloc[-1],
        final_flipped_as_given=history.flipped_as_given.iloc[-1],
    )


class Playground(View):
    """Sliders for lag, long weight, short weight, temperature, ramp, epochs and noise rate; each
    change trains CE and LSTSD with those settings (or finds the runs in the cache) and draws
    `memorisation_figure`: how much of the label noise each model predicts, and its test accuracy,
    with the teachers' milestones.

    `config` None: the playground's own setting (`playground_config()`) on the first
    `playground_train_size()` training samples, unless `train_size` says otherwise (None with a
    config of your own: all of them). The lag slider stays below the epochs slider (a lag at
    or past the run length means no long-term teacher ever appears) and the ramp at most at it:
    moving epochs moves their limits.

    `result` is a one-row-per-method frame (the epoch chosen on validation and its test accuracy,
    the last epoch's test accuracy, train accuracy and share of flipped samples predicted as
    their given label); `retrained` says whether the last update had to train. CE does not
    depend on LSTSD's settings, so moving them retrains LSTSD only; epochs and noise rate retrain
    both, side by side on two cores (`train_histories`). `sweep` and `seed_map` fill the same
    cache and share their runs between the two cores the same way.
    """

    LSTSD_SETTINGS = ("lag", "w_long", "w_short", "temperature", "long_mode", "ramp")

    def __init__(self, config: Config | None = None, seed: int = 0, train_size: int | None = None) -> None:
        if config is None:
            config, train_size = playground_config(), train_size or playground_train_size()
        if train_size is not None:
            Range(1, 1 << 40, integer=True).check("train_size", train_size)
        self.config, self.seed, self.train_size = check_config(config), as_seed("seed", seed), train_size
        self.retrained = False
        self._holding = False  # True while epochs moves the limits of lag and ramp
        super().__init__(
            {
                "lag": _slider(widgets.IntSlider, "lag", config.lag, 1, max(1, config.epochs - 1), 1),
                "w_long": _slider(widgets.FloatSlider, "long weight", config.w_long, 0.0, 1.0, 0.05),
                "w_short": _slider(widgets.FloatSlider, "short weight", config.w_short, 0.0, 1.0, 0.05),
                "temperature": _slider(widgets.FloatSlider, "temperature", config.temperature, 0.5, 8.0, 0.5),
                "ramp": _slider(widgets.IntSlider, "ramp", config.ramp, 0, config.epochs, 1),
                "epochs": _slider(widgets.IntSlider, "epochs", config.epochs, 2, max(60, config.epochs), 1),
                "noise": _slider(widgets.FloatSlider, "noise rate", config.noise, 0.0, 0.8, 0.05),
            }
        )

    def _changed(self, change) -> None:
        if self._holding:  # a limit moved a value: the update after it sees the new value
            return
        if change.owner is self.sliders["epochs"]:
            self._holding = True
            try:
                self.sliders["lag"].max = max(1, change.new - 1)
                self.sliders["ramp"].max = change.new
            finally:
                self._holding = False
        self.update()

    def settings(self, **values) -> Config:
        """`config` with the sliders' values (validated: raises ConfigError)."""
        return replace(self.config, **values).validate()

    def baseline(self, config: Config) -> Config:
        """The CE run for `config`: LSTSD's own settings reset, so that all share one cache entry."""
        return replace(config, **{name: getattr(self.config, name) for name in self.LSTSD_SETTINGS})

    def histories(self, config: Config, seed: int | None = None) -> pd.DataFrame:
        seed = self.seed if seed is None else seed
        before = runs_trained()
        runs = train_histories(
            [("ce", self.baseline(config), seed, self.train_size), ("lstsd", config, seed, self.train_size)]
        )
        self.retrained = runs_trained() > before
        return pd.concat(runs, ignore_index=True)

    def render(self, **values) -> tuple[plt.Figure | None, str]:
        values = {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
        try:
            config = self.settings(**values)
        except ConfigError as error:
            return None, f"<b style='color:#b00'>Not trained: {error}</b>"
        history = self.histories(config)
        self.result = pd.DataFrame([_summary(h) for _, h in history.groupby("method", sort=False)])
        setting = (
            f"lag {config.lag}, w_long {config.w_long:g}, w_short {config.w_short:g}, "
            f"τ {config.temperature:g}, ramp {config.ramp}, noise {config.noise:g}"
        )
        gain = self.result.selected_test_acc.iloc[1] - self.result.selected_test_acc.iloc[0]
        html = _html_table(self.result, f"{setting}: LSTSD − CE, test accuracy at the chosen epoch {gain:+.3f}")
        samples = f"{self.train_size:,} training samples, " if self.train_size else ""
        title = f"{setting} ({samples}{config.epochs} epochs, seed {self.seed})"
        return memorisation_figure(history, milestones(config), title), html

    def sweep(self, lags: list[int], long_weights: list[float], **fixed) -> pd.DataFrame:
        """Train LSTSD on the lag × long-weight grid (other settings from `config`, or `fixed`).

        Returns one row per cell: lag, w_long, final_test_acc, selected_test_acc, and the CE
        baseline's final test accuracy in `ce_final_test_acc` (the same for every cell). Cells
        whose weights sum above 1 are left out.
        """
        base = replace(self.config, **fixed)
        cells = []
        for lag in lags:
            for w_long in long_weights:
                try:
                    cells.append(replace(base, lag=lag, w_long=w_long).validate())
                except ConfigError:
                    continue
        ce, *runs = train_histories(
            [("ce", self.baseline(base), self.seed, self.train_size)]
            + [("lstsd", config, self.seed, self.train_size) for config in cells]
        )
        ce, rows = _summary(ce), []
        for config, history in zip(cells, runs):
            summary = _summary(history)
            rows.append(
                dict(
                    lag=config.lag,
                    w_long=config.w_long,
                    final_test_acc=summary["final_test_acc"],
                    selected_test_acc=summary["selected_test_acc"],
                    ce_final_test_acc=ce["final_test_acc"],
                )
            )
        return pd.DataFrame(rows)

    def seed_map(
        self,
        lags: list[int],
        weights: list[float],
        seeds: list[int] = (0, 1, 2),
        weight: str = "w_long",
        progress: bool = True,
        **fixed,
    ) -> pd.DataFrame:
        """LSTSD − CE over `seeds` for every cell of the lag × `weight` grid (`w_long` or
        `w_short`; other settings from `config`, or `fixed`), for `plots.seed_map_figure`.

        Each seed's LSTSD run is compared with the CE run of the same seed, on the test accuracy
        at the epoch each run chose on validation. One row per cell: lag, `weight`, the columns of
        `diagnostics.seed_gain` (gain, spread, seeds, low, high, ratio, tie) and the means over
        seeds `ce` and `lstsd`. Cells whose weights sum above 1 are left out.
        """
        check_choice("weight", weight, ("w_long", "w_short"))
        seeds = list(seeds)
        if len(set(seeds)) < 2:
            raise ConfigError(f"seeds must name at least 2 different seeds, to have a spread; got {seeds}")
        base = replace(self.config, **fixed)
        cells = []
        for lag in lags:
            for value in weights:
                try:
                    cells.append(replace(base, lag=lag, **{weight: value}).validate())
                except ConfigError:
                    continue
        pairs = [(config, seed) for config in cells for seed in seeds]
        tasks = [
            task
            for config, seed in pairs
            for task in (("ce", self.baseline(config), seed, self.train_size), ("lstsd", config, seed, self.train_size))
        ]
        histories = train_histories(tasks, desc="seed map" if progress else None)
        rows = []
        for (config, seed), ce, lstsd in zip(pairs, histories[::2], histories[1::2]):
            ce, lstsd = _summary(ce)["selected_test_acc"], _summary(lstsd)["selected_test_acc"]
            rows.append({"lag": config.lag, weight: getattr(config, weight), "seed": seed, "ce": ce, "lstsd": lstsd})
        runs = pd.DataFrame(rows).assign(gain=lambda r: r.lstsd - r.ce)
        means = runs.groupby(["lag", weight], as_index=False)[["ce", "lstsd"]].mean()
        return seed_gain(runs, ["lag", weight]).merge(means, on=["lag", weight])
